// The client process: started by the run over IPC (messages.ts), it runs a
// Client (client.ts) on its own event loop, never shared with the server;
// exits when done, told to stop, or left by the run.
import type { FromChild, ToChild } from '../messages.ts';
import { Client } from './client.ts';
import { stopStallWatch, startStallWatch } from './stall-watch.ts';

let client: Client | null = null;
let closed = false;

process.on('SIGINT', () => {}); // the run decides when its children stop
process.on('disconnect', () => {
  if (closed) return;
  // the run went away: keep what was recorded, then leave
  closed = true;
  client?.close();
  stopStallWatch();
  process.exit(1);
});
process.on('message', (m: ToChild) => {
  if (m.type === 'start' && client === null) {
    const c = (client = new Client(m, (x: FromChild) => process.send?.(x)));
    startStallWatch(m.runDir, 'client', BigInt(m.t0), m.config.probeIntervalNs);
    c.finishedAll.then(() => {
      if (closed) return;
      closed = true;
      const done = c.close();
      stopStallWatch();
      process.send?.(done, () => process.disconnect());
    });
    c.start();
    // the workload's time starts now: fault windows are measured from here
    process.send?.({ type: 'started' });
  } else if (m.type === 'stop') client?.stop();
});
