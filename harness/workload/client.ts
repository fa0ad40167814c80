// The client: runs the workload's transactions and records each one. Its
// process (client-main.ts) never shares its event loop with the server;
// the class itself runs anywhere, so tests drive it in-process.
import { join } from 'node:path';
import { build } from 'hdr-histogram-js';
import { runClock } from '../../lib/clock.ts';
import { OUTCOME_OK, OUTCOME_TIMEOUT, type RunConfig } from '../../lib/types.ts';
import { arrivals } from './arrivals.ts';
import { Worker, type WorkerHost } from './client-worker.ts';
import type { DoneMessage, FromChild, StartMessage } from '../messages.ts';
import { TxnRecorder } from './txn-recorder.ts';
import { shareOf } from './client-share.ts';
import { nativeUnavailable } from '../../lib/native.ts';

const STOP_GRACE_NS = 2e9;

export class Client implements WorkerHost {
  readonly config: RunConfig;
  readonly now: () => number;
  stopping = false;
  private stopAtNs = Infinity;
  private abortAtNs = Infinity;
  private seq = 0;
  private started = 0;
  private ok = 0;
  private failed = 0;
  private timedOut = 0;
  private inflight = 0;
  private missedStarts = 0;
  private firstStartNs = NaN;
  private lastEndNs = NaN;
  private readonly workers: Worker[] = [];
  private readonly idle: Worker[] = [];
  private readonly recorder: TxnRecorder;
  private readonly window = build({ bitBucketSize: 32, numberOfSignificantValueDigits: 2, useWebAssembly: false });
  private nextIntendedNs = 0;
  private gap: () => number = () => 0;
  private openTimer: NodeJS.Timeout | null = null;
  private openSpin: NodeJS.Immediate | null = null;
  private readonly tickNow = (): void => this.tick();
  private sweepTimer: NodeJS.Timeout | null = null;
  private progressTimer: NodeJS.Timeout | null = null;
  private endTimer: NodeJS.Timeout | null = null;
  private finishedResolve: () => void = () => {};
  readonly finishedAll = new Promise<void>((r) => (this.finishedResolve = r));

  /** `send`: where progress messages go (the run, over IPC, in the client process). */
  constructor(
    private readonly msg: StartMessage,
    private readonly send: (m: FromChild) => void = () => {},
  ) {
    const part = shareOf(msg.config, msg.part?.index ?? 0, msg.part?.of ?? 1);
    this.config = part.config;
    this.now = runClock(BigInt(msg.t0));
    this.recorder = new TxnRecorder(join(msg.runDir, msg.file), this.config.exchanges);
    const n = this.config.rate === null ? this.config.concurrency : this.config.maxInflight;
    for (let i = 0; i < n; i++) this.workers.push(new Worker(part.firstWorker + i, this));
    this.idle.push(...[...this.workers].reverse());
  }

  nextSeq(): number {
    return this.seq++;
  }

  start(): void {
    const cfg = this.config;
    const t = this.now();
    if (cfg.durationNs !== null) {
      this.stopAtNs = t + cfg.durationNs;
      this.endTimer = setTimeout(() => this.noMoreStarts(), cfg.durationNs / 1e6 + 1);
    }
    const sweepMs = Math.max(1, Math.min(50, Math.min(cfg.connectTimeoutNs, cfg.ioTimeoutNs) / 1e6 / 20));
    this.sweepTimer = setInterval(() => this.sweep(), sweepMs);
    if (this.msg.progress) this.progressTimer = setInterval(() => this.progress(), 500);
    if (cfg.rate === null) {
      for (let i = 0; i < cfg.concurrency && this.mayStart(); i++) this.launch(this.idle.pop()!, this.now());
    } else {
      this.gap = arrivals(cfg.arrivals, cfg.rate, cfg.seed);
      this.nextIntendedNs = t;
      this.tick();
    }
    this.checkDone();
  }

  private mayStart(): boolean {
    if (this.stopping) return false;
    if (this.config.transactions !== null && this.started >= this.config.transactions) return false;
    return this.now() < this.stopAtNs;
  }

  private launch(w: Worker, intendedNs: number): void {
    this.started++;
    this.inflight++;
    if (Number.isNaN(this.firstStartNs)) this.firstStartNs = intendedNs;
    w.begin(intendedNs);
  }

  /** Open loop: start every transaction that is due and has a free worker. */
  private tick(): void {
    this.openTimer = null;
    this.openSpin = null;
    let now = this.now();
    while (this.nextIntendedNs <= now && this.idle.length > 0) {
      if (!this.mayStartAt(this.nextIntendedNs)) return this.noMoreStarts();
      this.launch(this.idle.pop()!, this.nextIntendedNs);
      this.nextIntendedNs += this.gap();
      now = this.now();
    }
    if (!this.mayStartAt(this.nextIntendedNs)) return this.noMoreStarts();
    // Due but no free worker: finished() calls tick() again, and the start
    // will be late by however long the workers stayed busy.
    if (this.nextIntendedNs > now) {
      // Node's timers have 1 ms granularity and fire late rather than early:
      // sleep to about 1 ms before the start, then poll the event loop
      // (setImmediate, I/O still runs) for the rest, so starts are on time.
      const waitMs = (this.nextIntendedNs - now) / 1e6;
      if (waitMs >= 2) this.openTimer = setTimeout(this.tickNow, Math.floor(waitMs) - 1);
      else this.openSpin = setImmediate(this.tickNow);
    }
  }

  private mayStartAt(intendedNs: number): boolean {
    if (this.stopping) return false;
    if (this.config.transactions !== null && this.started >= this.config.transactions) return false;
    return intendedNs < this.stopAtNs;
  }

  finished(w: Worker): void {
    this.inflight--;
    if (w.outcome === OUTCOME_OK) {
      this.ok++;
      // the window only feeds the terminal's progress line
      if (this.msg.progress) {
        const us = (w.endNs - w.intendedNs) / 1e3;
        this.window.recordValue(us < 1 ? 1 : us);
      }
    } else if (w.outcome === OUTCOME_TIMEOUT) this.timedOut++;
    else this.failed++;
    if (!(w.endNs <= this.lastEndNs)) this.lastEndNs = w.endNs;
    this.recorder.record(w);
    if (this.config.rate !== null) {
      this.idle.push(w);
      if (this.openTimer === null && this.openSpin === null && !this.stopping) this.tick();
    } else if (this.mayStart()) {
      const think = this.config.thinkTimeNs;
      if (think > 0) {
        this.inflight++; // a worker thinking still holds its slot
        setTimeout(() => {
          this.inflight--;
          if (this.mayStart()) this.launch(w, this.now());
          else {
            this.idle.push(w);
            this.checkDone();
          }
        }, think / 1e6);
      } else this.launch(w, this.now());
    } else this.idle.push(w);
    this.checkDone();
  }

  private sweep(): void {
    const now = this.now();
    for (const w of this.workers) w.expire(now);
    if (now >= this.abortAtNs) for (const w of this.workers) w.abort();
  }

  private progress(): void {
    const m: FromChild = {
      type: 'progress',
      attempted: this.recorder.count,
      ok: this.ok,
      failed: this.failed,
      timedOut: this.timedOut,
      inflight: this.inflight,
      p99Us: this.window.totalCount > 0 ? this.window.getValueAtPercentile(99) : 0,
    };
    this.window.reset();
    this.send(m);
  }

  /** No more transactions start; those in flight run to their end. */
  noMoreStarts(): void {
    if (this.stopAtNs > this.now()) this.stopAtNs = this.now();
    if (this.openTimer !== null) clearTimeout(this.openTimer);
    if (this.openSpin !== null) clearImmediate(this.openSpin);
    this.openTimer = null;
    this.openSpin = null;
    if (this.config.rate !== null) {
      // intended starts that fell due before the end but never got a worker
      const end = Math.min(this.stopAtNs, this.now());
      while (this.nextIntendedNs < end && (this.config.transactions === null || this.started + this.missedStarts < this.config.transactions)) {
        this.missedStarts++;
        this.nextIntendedNs += this.gap();
      }
      this.nextIntendedNs = Infinity;
    }
    this.checkDone();
  }

  /** Stop now: in-flight transactions get a short grace, then are recorded as stopped. */
  stop(): void {
    if (!this.stopping) {
      this.stopping = true;
      this.noMoreStarts();
      this.abortAtNs = this.now() + STOP_GRACE_NS;
    }
    this.checkDone();
  }

  private checkDone(): void {
    if (this.inflight > 0) return;
    if (!this.stopping && this.mayStart() && this.config.rate === null) return;
    if (!this.stopping && this.config.rate !== null && this.nextIntendedNs !== Infinity && this.mayStartAt(this.nextIntendedNs)) return;
    this.finishedResolve();
  }

  close(): DoneMessage {
    for (const w of this.workers) w.abort(); // close kept-alive connections
    for (const t of [this.openTimer, this.endTimer]) if (t) clearTimeout(t);
    if (this.openSpin) clearImmediate(this.openSpin);
    for (const t of [this.sweepTimer, this.progressTimer]) if (t) clearInterval(t);
    if (this.msg.progress) this.progress();
    this.recorder.close();
    const notes: string[] = [];
    if (nativeUnavailable !== null) notes.push(`TCP_INFO not recorded: ${nativeUnavailable}`);
    return {
      type: 'done',
      attempted: this.recorder.count,
      ok: this.ok,
      failed: this.failed,
      timedOut: this.timedOut,
      missedStarts: this.missedStarts,
      firstStartNs: this.firstStartNs,
      lastEndNs: this.lastEndNs,
      notes,
    };
  }
}
