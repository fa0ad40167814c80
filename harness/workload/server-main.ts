// The built-in server process: started by the run over IPC (messages.ts),
// it runs a BuiltinServer (server.ts) on its own event loop, never shared
// with the client; stops when told to, on SIGTERM, or when left by the run.
import { errnoCode } from '../../lib/errors.ts';
import type { FromChild, ToChild } from '../messages.ts';
import { BuiltinServer } from './server.ts';
import { stopStallWatch, startStallWatch } from './stall-watch.ts';

let server: BuiltinServer | null = null;
let stopped = false;
const send = (m: FromChild): void => void process.send?.(m);

async function stop(): Promise<void> {
  if (stopped || server === null) return;
  stopped = true;
  await server.stop();
  stopStallWatch();
}

process.on('SIGINT', () => {}); // the run decides when its children stop
process.on('SIGTERM', () => void stop().then(() => process.exit(0)));
process.on('disconnect', () => void stop().then(() => process.exit(0)));
process.on('message', (m: ToChild) => {
  if (m.type === 'start' && server === null) {
    const s = (server = new BuiltinServer(m));
    startStallWatch(m.runDir, 'server', BigInt(m.t0), m.config.probeIntervalNs);
    s.listen().then(
      ({ port, fd }) => send({ type: 'listening', port, fd, notes: s.startNotes }),
      (err: Error) => {
        const code = errnoCode(err);
        const message =
          code === 'EADDRINUSE'
            ? `port ${m.config.port} is in use: choose another --port, or omit it to use a free one`
            : code === 'EACCES'
              ? `port ${m.config.port} needs privileges: choose a port above 1023`
              : err.message;
        send({ type: 'failed', message, code });
        void stop().then(() => process.disconnect());
      },
    );
  } else if (m.type === 'accept-delay' && server !== null) server.acceptDelayNs = m.ns;
  else if (m.type === 'stop') void stop().then(() => process.disconnect());
});
