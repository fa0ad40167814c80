// The built-in server: accepts, answers, closes per --close, and records
// every connection. Its process is server-main.ts; the class itself runs
// anywhere, so tests drive it in-process.
import { createServer, Socket, type Server } from 'node:net';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { runClock } from '../../lib/clock.ts';
import { SRV, SRV_MAGIC } from '../../lib/records.ts';
import type { RunConfig } from '../../lib/types.ts';
import type { StartMessage } from '../messages.ts';
import { fdOf, native, nativeUnavailable } from '../../lib/native.ts';
import { patternBuffer } from './payload.ts';
import { RecordFile } from '../../lib/record-file.ts';
import { ServerConn, type ConnHost } from './server-conn.ts';

const EAGAIN = -11;

export class BuiltinServer implements ConnHost {
  readonly config: RunConfig;
  readonly now: () => number;
  readonly recorder: RecordFile;
  readonly pattern: Buffer;
  resetEach = false;
  private readonly conns = new Set<ServerConn>();
  private server: Server | null = null;
  private listenFd = -1;
  private stopping = false;
  private readonly notes: string[] = [];
  /** Changed by an accept-delay fault's window. */
  acceptDelayNs: number;

  constructor(m: StartMessage) {
    this.config = m.config;
    this.now = runClock(BigInt(m.t0));
    this.recorder = new RecordFile(join(m.runDir, m.file), SRV_MAGIC, SRV.size, m.config.exchanges);
    this.pattern = patternBuffer(Math.max(m.config.responseBytes, m.config.requestBytes));
    this.acceptDelayNs = m.config.acceptDelayNs;
  }

  closed(c: ServerConn): void {
    this.conns.delete(c);
  }

  private serve(sock: Socket): void {
    if (this.stopping) return void sock.destroy();
    sock.setNoDelay(this.config.nodelay);
    this.conns.add(new ServerConn(sock, this));
  }

  async listen(): Promise<{ port: number; fd: number }> {
    const cfg = this.config;
    // an accept-delay fault needs our own accept loop from the start
    if (cfg.acceptDelayNs > 0 || cfg.faults.some((f) => f.kind === 'accept-delay')) return this.listenSlow();
    const server = (this.server = createServer({ noDelay: cfg.nodelay }, (s) => this.serve(s)));
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen({ host: cfg.host, port: cfg.port, backlog: cfg.backlog, exclusive: true }, () => {
        server.off('error', reject);
        resolve();
      });
    });
    server.on('error', () => {}); // accept errors (EMFILE...) show up as refused connections on the client
    const fd = fdOf(server);
    if (cfg.close === 'server-rst') this.lingerOnListener(fd);
    const addr = server.address();
    return { port: typeof addr === 'object' && addr !== null ? addr.port : cfg.port, fd };
  }

  /** SO_LINGER {1,0} on the listener, inherited by every accepted socket, as in the reported case. */
  private lingerOnListener(fd: number): void {
    if (native === null) {
      this.resetEach = true;
      this.notes.push(`server-rst: SO_LINGER could not be set on the listener (${nativeUnavailable}); each connection is reset on close instead`);
      return;
    }
    native.setLinger(fd, true, 0);
  }

  /** --accept-delay: our own accept loop that waits before every accept(2). */
  private async listenSlow(): Promise<{ port: number; fd: number }> {
    if (native === null) throw Object.assign(new Error(`--accept-delay needs the native addon (${nativeUnavailable})`), { code: 'ENOADDON' });
    const cfg = this.config;
    const fd = (this.listenFd = native.listen(cfg.host, cfg.port, cfg.backlog));
    if (cfg.close === 'server-rst') this.lingerOnListener(fd);
    const port = native.localPort(fd);
    void this.acceptLoop(fd);
    return { port, fd };
  }

  private async acceptLoop(fd: number): Promise<void> {
    const n = native!;
    while (!this.stopping) {
      if (this.acceptDelayNs > 0) await sleep(this.acceptDelayNs / 1e6);
      let c = n.accept(fd);
      while (c === EAGAIN && !this.stopping) {
        await new Promise<void>((resolve) => {
          const w = n.watchReadable(fd, () => {
            w.stop();
            resolve();
          });
        });
        c = n.accept(fd);
      }
      if (c >= 0) this.serve(new Socket({ fd: c, readable: true, writable: true }));
    }
  }

  /** Stop: no more accepts, open connections recorded as stopped. */
  async stop(): Promise<void> {
    this.stopping = true;
    this.server?.close();
    if (this.listenFd >= 0) native?.close(this.listenFd);
    // let connections that are closing right now finish on their own
    const until = Date.now() + 200;
    while (this.conns.size > 0 && Date.now() < until) await sleep(10);
    for (const c of [...this.conns]) c.abort();
    this.recorder.close();
  }

  get startNotes(): string[] {
    return this.notes;
  }
}
