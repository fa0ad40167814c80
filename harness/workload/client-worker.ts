import { connect, type Socket, type TcpNetConnectOpts } from 'node:net';
import { errnoCode } from '../../lib/errors.ts';
import { OUTCOME_OK, OUTCOME_STOPPED, OUTCOME_TIMEOUT, outcomeIndex, OUTCOME_INDEX, type RunConfig } from '../../lib/types.ts';
import { fdOf, native, TCPI_LENGTH } from '../../lib/native.ts';
import { HEADER, patternBuffer, stamp } from './payload.ts';
import type { TxnState } from './txn-recorder.ts';
import { COMPLETE, EXTRA, MORE, ResponseRule } from './response-rule.ts';

// One worker runs one transaction at a time: connect, E exchanges, close.
// Its handlers are bound once and its buffers allocated once; a transaction
// allocates only what Node itself needs for a socket.

const enum Phase {
  Idle,
  Connecting,
  Exchanging,
  AwaitEof,
  Closing,
}

const SHORT = OUTCOME_INDEX['short-response'];
const BAD = OUTCOME_INDEX['bad-response'];
const noop = (): void => {};

/** What a worker needs from the client that runs it. */
export interface WorkerHost {
  readonly config: RunConfig;
  readonly now: () => number;
  /** The run is stopping: close kept-alive connections after this transaction. */
  readonly stopping: boolean;
  nextSeq(): number;
  finished(w: Worker): void;
}

export class Worker implements TxnState {
  // TxnState
  intendedNs = 0;
  startNs = 0;
  connectNs = NaN;
  exchangeNs: Float64Array;
  endNs = 0;
  localPort = 0;
  outcome = 0;
  reused = false;
  bytesOut = 0;
  bytesIn = 0;
  tcpInfoValid = false;
  tcpInfo = new Uint32Array(TCPI_LENGTH);

  phase = Phase.Idle;
  deadlineNs = Infinity;
  private sock: Socket | null = null;
  private seq = 0;
  private exchange = 0;
  private got = 0;
  private onConnection = 0; // transactions carried by the current connection
  private readonly request: Buffer;
  private readonly requestParts: Buffer[];
  private readonly expected: Buffer;
  private readonly connectOpts: TcpNetConnectOpts;
  private readonly cfg: RunConfig;
  /** A protocol template's completeness rule (null: the built-in echo, checked byte for byte). */
  private readonly rule: ResponseRule | null;

  constructor(
    readonly worker: number,
    private readonly host: WorkerHost,
  ) {
    const cfg = (this.cfg = host.config);
    this.exchangeNs = new Float64Array(cfg.exchanges);
    this.rule = cfg.template ? new ResponseRule(cfg.template.until) : null;
    this.request = cfg.template ? Buffer.from(cfg.template.requestBase64, 'base64') : patternBuffer(cfg.requestBytes);
    this.expected = patternBuffer(cfg.responseBytes);
    const k = cfg.splitWrites;
    const part = Math.ceil(cfg.requestBytes / k);
    this.requestParts = [];
    for (let off = 0; off < cfg.requestBytes; off += part) this.requestParts.push(this.request.subarray(off, Math.min(off + part, cfg.requestBytes)));
    this.connectOpts = { host: cfg.host, port: cfg.port, noDelay: cfg.nodelay };
    this.onConnect = this.onConnect.bind(this);
    this.onData = this.onData.bind(this);
    this.onEnd = this.onEnd.bind(this);
    this.onError = this.onError.bind(this);
    this.onClose = this.onClose.bind(this);
  }

  get busy(): boolean {
    return this.phase !== Phase.Idle;
  }

  begin(intendedNs: number): void {
    const now = this.host.now();
    this.seq = this.host.nextSeq();
    this.intendedNs = intendedNs;
    this.startNs = now;
    this.connectNs = NaN;
    this.exchangeNs.fill(NaN);
    this.endNs = NaN;
    this.outcome = -1;
    this.bytesOut = 0;
    this.bytesIn = 0;
    this.tcpInfoValid = false;
    this.exchange = 0;
    this.got = 0;
    if (this.sock !== null && this.cfg.close === 'keepalive') {
      this.reused = true;
      this.connectNs = now;
      this.send();
      return;
    }
    this.reused = false;
    this.localPort = 0;
    this.onConnection = 0;
    this.phase = Phase.Connecting;
    this.deadlineNs = now + this.cfg.connectTimeoutNs;
    const s = connect(this.connectOpts);
    this.sock = s;
    s.on('connect', this.onConnect);
    s.on('data', this.onData);
    s.on('end', this.onEnd);
    s.on('error', this.onError);
    s.on('close', this.onClose);
  }

  private onConnect(): void {
    this.connectNs = this.host.now();
    this.localPort = this.sock?.localPort ?? 0;
    this.send();
  }

  private send(): void {
    const s = this.sock;
    if (s === null) return;
    const cfg = this.cfg;
    if (this.rule === null) {
      stamp(this.request, this.seq, this.exchange, HEADER);
      stamp(this.expected, this.seq, this.exchange, Math.min(cfg.requestBytes, cfg.responseBytes));
    } else this.rule.reset();
    this.phase = Phase.Exchanging;
    this.deadlineNs = this.host.now() + cfg.ioTimeoutNs;
    const parts = this.requestParts;
    for (let i = 0; i < parts.length; i++) s.write(parts[i]);
    this.bytesOut += cfg.requestBytes;
  }

  private onData(chunk: Buffer): void {
    const len = chunk.length;
    this.bytesIn += len;
    if (this.phase !== Phase.Exchanging) return this.fail(BAD); // bytes nobody asked for
    if (this.rule !== null) return this.templateData(chunk);
    const want = this.cfg.responseBytes - this.got;
    if (len > want) return this.fail(BAD);
    if (chunk.compare(this.expected, this.got, this.got + len) !== 0) return this.fail(BAD);
    this.got += len;
    if (this.got < this.cfg.responseBytes) return;
    this.exchangeNs[this.exchange] = this.host.now();
    this.got = 0;
    if (++this.exchange < this.cfg.exchanges) return this.send();
    this.exchangesDone();
  }

  /** A templated answer: complete per --response-until, its bytes unchecked. */
  private templateData(chunk: Buffer): void {
    const r = this.rule!.feed(chunk);
    if (r === MORE) return;
    if (r === EXTRA) return this.fail(BAD);
    if (r === COMPLETE) this.answered();
  }

  /** The current exchange's answer is complete. */
  private answered(): void {
    this.exchangeNs[this.exchange] = this.host.now();
    this.got = 0;
    if (++this.exchange < this.cfg.exchanges) return this.send();
    this.exchangesDone();
  }

  private exchangesDone(): void {
    const mode = this.cfg.close;
    if (mode === 'keepalive') {
      this.readTcpInfo();
      this.endNs = this.host.now();
      this.outcome = OUTCOME_OK;
      const last = ++this.onConnection >= this.cfg.perConnection || this.host.stopping;
      this.phase = Phase.Idle;
      this.deadlineNs = Infinity;
      if (last) this.release(false);
      this.host.finished(this);
      return;
    }
    if (mode === 'server-fin') {
      // the server closes first: wait for its FIN, then close
      this.phase = Phase.AwaitEof;
      this.deadlineNs = this.host.now() + this.cfg.ioTimeoutNs;
      return;
    }
    this.close();
  }

  private close(): void {
    const s = this.sock;
    if (s === null) return;
    this.readTcpInfo();
    this.phase = Phase.Closing;
    const mode = this.cfg.close;
    if (mode === 'client-rst') s.resetAndDestroy();
    else {
      if (mode === 'linger' && native !== null) native.setLinger(fdOf(s), true, this.cfg.lingerSeconds);
      s.destroy();
    }
  }

  private readTcpInfo(): void {
    if (native === null || this.sock === null) return;
    this.tcpInfoValid = native.tcpInfo(fdOf(this.sock), this.tcpInfo);
  }

  private onEnd(): void {
    if (this.phase === Phase.AwaitEof) return this.close();
    // --response-until close: the server's FIN completes the (only) answer
    if (this.phase === Phase.Exchanging && this.rule !== null && this.rule.atClose && this.rule.received > 0) {
      this.exchangeNs[this.exchange] = this.host.now();
      this.exchange++;
      return this.close();
    }
    if (this.phase === Phase.Exchanging || this.phase === Phase.Connecting) this.fail(SHORT);
  }

  private onError(err: Error): void {
    if (this.phase === Phase.Idle) return;
    if (this.phase === Phase.Closing) {
      // the connection was done; a reset on the way out (server-rst) is its close
      return;
    }
    this.fail(outcomeIndex(errnoCode(err)));
  }

  private onClose(): void {
    if (this.phase === Phase.Closing) return this.done(OUTCOME_OK);
    if (this.phase !== Phase.Idle) this.fail(SHORT);
    else this.sock = null; // a kept-alive connection closed by the server between transactions
  }

  /** Called by the client's timeout sweep. */
  expire(now: number): void {
    if (this.phase === Phase.Idle || now < this.deadlineNs) return;
    if (this.phase === Phase.Closing) return; // close(2) is synchronous: nothing to wait for
    this.fail(OUTCOME_TIMEOUT);
  }

  /** The run is stopping and this transaction did not finish in time. */
  abort(): void {
    if (this.phase !== Phase.Idle) this.fail(OUTCOME_STOPPED);
    else this.release(false);
  }

  private fail(outcome: number): void {
    // the local port joins this transaction to kernel events: keep it even
    // when connect() never completed (a dropped SYN, a refusal)
    if (this.localPort === 0 && this.sock !== null) this.localPort = this.sock.localPort ?? 0;
    this.release(true);
    this.done(outcome);
  }

  private done(outcome: number): void {
    this.endNs = this.host.now();
    this.outcome = outcome;
    this.phase = Phase.Idle;
    this.deadlineNs = Infinity;
    if (this.sock !== null && this.sock.destroyed) this.release(false);
    this.host.finished(this);
  }

  /** Let go of the socket: no more events reach this worker from it. */
  private release(destroy: boolean): void {
    const s = this.sock;
    if (s === null) return;
    this.sock = null;
    s.removeAllListeners();
    s.on('error', noop);
    if (destroy || !s.destroyed) s.destroy();
  }
}
