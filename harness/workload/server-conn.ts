import type { Socket } from 'node:net';
import { errnoCode } from '../../lib/errors.ts';
import { SRV, SRV_FLAG_RESET } from '../../lib/records.ts';
import { OUTCOME_OK, OUTCOME_STOPPED, OUTCOME_INDEX, outcomeIndex, type RunConfig } from '../../lib/types.ts';
import { HEADER } from './payload.ts';
import type { RecordFile } from '../../lib/record-file.ts';

// One accepted connection of the built-in server. Request/response: it
// reads a whole request of Q bytes, then answers R bytes (an exact echo
// when R = Q), so a request split in several writes waits on Nagle and
// delayed ACK as it would against a real server. Closes per --close.

const SHORT = OUTCOME_INDEX['short-response'];

export interface ConnHost {
  readonly config: RunConfig;
  readonly now: () => number;
  readonly recorder: RecordFile;
  readonly pattern: Buffer;
  /** RST on close must be done per socket (the listener's SO_LINGER could not be set). */
  readonly resetEach: boolean;
  closed(c: ServerConn): void;
}

export class ServerConn {
  private readonly acceptNs: number;
  private readonly clientPort: number;
  private bytesIn = 0;
  private bytesOut = 0;
  private got = 0;
  private chunks: Buffer[] = [];
  private exchanges = 0;
  private outcome = -1;
  private reset = false;
  private recorded = false;

  constructor(
    private readonly sock: Socket,
    private readonly host: ConnHost,
  ) {
    this.acceptNs = host.now();
    this.clientPort = sock.remotePort ?? 0;
    sock.on('data', (c: Buffer) => this.onData(c));
    sock.on('end', () => this.onEnd());
    sock.on('error', (e: Error) => this.onError(e));
    sock.on('close', () => this.record());
  }

  private onData(chunk: Buffer): void {
    const cfg = this.host.config;
    const q = cfg.requestBytes;
    this.bytesIn += chunk.length;
    if (cfg.serverExchanges < cfg.exchanges && this.exchanges >= cfg.serverExchanges) return; // --server-exchanges: no more answers
    let off = 0;
    while (off < chunk.length) {
      const take = Math.min(q - this.got, chunk.length - off);
      this.chunks.push(off === 0 && take === chunk.length ? chunk : chunk.subarray(off, off + take));
      this.got += take;
      off += take;
      if (this.got === q) this.answer();
    }
  }

  private answer(): void {
    const cfg = this.host.config;
    const s = this.sock;
    s.cork();
    if (cfg.responseBytes === cfg.requestBytes) for (const c of this.chunks) s.write(c);
    else {
      const head = Math.min(HEADER, cfg.requestBytes, cfg.responseBytes);
      const first = this.chunks.length === 1 ? this.chunks[0] : Buffer.concat(this.chunks, head);
      s.write(Buffer.concat([first.subarray(0, head), this.host.pattern.subarray(head, cfg.responseBytes)]));
    }
    s.uncork();
    this.bytesOut += cfg.responseBytes;
    this.chunks = [];
    this.got = 0;
    this.exchanges++;
    if (cfg.close === 'server-fin' && this.exchanges === cfg.exchanges) {
      this.outcome = OUTCOME_OK;
      s.end(); // FIN first from this side: TIME_WAIT lands on the server
    } else if (this.exchanges === cfg.serverExchanges && cfg.serverExchanges < cfg.exchanges) {
      // --server-exchanges: done before the client is; its next request meets a closed (or reset) socket
      this.outcome = OUTCOME_OK;
      if (cfg.close === 'server-rst') this.close(true);
      else s.end();
    }
  }

  private onEnd(): void {
    // The client closed: close too. With server-rst the listener's
    // SO_LINGER {1,0}, inherited by this socket, turns close(2) into an RST.
    if (this.outcome < 0) this.outcome = this.got === 0 ? OUTCOME_OK : SHORT;
    this.close(this.host.config.close === 'server-rst');
  }

  private onError(e: Error): void {
    const code = errnoCode(e);
    if (code === 'ECONNRESET') {
      this.reset = true;
      // the client aborted (client-rst) after its last answer: a clean end for us
      if (this.got === 0 && this.exchanges > 0) {
        if (this.outcome < 0) this.outcome = OUTCOME_OK;
        return;
      }
    }
    if (this.outcome < 0 || this.outcome === OUTCOME_OK) this.outcome = outcomeIndex(code);
  }

  private close(reset: boolean): void {
    this.reset ||= reset;
    if (reset && this.host.resetEach) this.sock.resetAndDestroy();
    else this.sock.destroy();
  }

  /** The server is stopping. */
  abort(): void {
    if (this.outcome < 0) this.outcome = OUTCOME_STOPPED;
    this.sock.destroy();
    this.record();
  }

  private record(): void {
    if (this.recorded) return;
    this.recorded = true;
    const r = this.host.recorder;
    const v = r.view;
    const at = r.next();
    v.setFloat64(at + SRV.acceptNs, this.acceptNs, true);
    v.setFloat32(at + SRV.closeUs, (this.host.now() - this.acceptNs) / 1e3, true);
    v.setUint16(at + SRV.clientPort, this.clientPort, true);
    v.setUint8(at + SRV.outcome, this.outcome < 0 ? SHORT : this.outcome);
    v.setUint8(at + SRV.flags, this.reset ? SRV_FLAG_RESET : 0);
    v.setUint32(at + SRV.bytesIn, this.bytesIn, true);
    v.setUint32(at + SRV.bytesOut, this.bytesOut, true);
    r.commit();
    this.host.closed(this);
  }
}
