import type { JitterStats } from './probe-files.ts';

// A self-correcting schedule: slot k is at start + k * interval, never
// "interval after the last one", so lateness does not accumulate. The wait
// is Atomics.wait (a futex with a timeout: sub-millisecond precision, where
// Node's timers round to milliseconds), and it is the only wake-up per
// sample: on this kind of VM each wake-up of an idle process costs ~100 us of
// CPU, so a timer plus a precise wait would double the floor.
//
// The sampler has its own process, so blocking its event loop is fine, and
// it stays blocked for several slots in a row: one turn of the event loop
// (setImmediate, an epoll_wait, the IPC pipe) costs ~65 us per wake-up on
// this VM (a loop of Atomics.wait alone wakes every 20 ms for 0.17 % of a
// core; with a setImmediate per wake-up 0.49 %; plus an IPC pipe 0.67 %).
// So the loop is given a turn once per YIELD_NS (100 ms: IPC messages such as
// a stop or a new process wait at most that long), and at every slot during
// the first second, when the run registers its processes.

const YIELD_NS = 100e6;
const EAGER_NS = 1e9;
const BUCKET_NS = 10_000;
const BUCKETS = 10_000; // 10 us buckets up to 100 ms; beyond: the last one

/** How late samples were against their slots: mean, max and a histogram for p50/p99. */
export class Lateness {
  ticks = 0;
  private readonly hist = new Uint32Array(BUCKETS);
  private sumLate = 0;
  private maxLate = 0;

  record(lateNs: number): void {
    this.ticks++;
    this.sumLate += lateNs;
    if (lateNs > this.maxLate) this.maxLate = lateNs;
    const b = Math.floor(lateNs / BUCKET_NS);
    this.hist[b < BUCKETS ? b : BUCKETS - 1]++;
  }

  stats(missedSlots: number): JitterStats {
    const n = this.ticks;
    return {
      meanNs: n ? this.sumLate / n : 0,
      p50Ns: this.percentile(0.5),
      p99Ns: this.percentile(0.99),
      maxNs: this.maxLate,
      missedSlots,
    };
  }

  private percentile(q: number): number {
    const want = Math.ceil(q * this.ticks);
    if (want === 0) return 0;
    let seen = 0;
    for (let b = 0; b < BUCKETS; b++) {
      seen += this.hist[b];
      if (seen >= want) return Math.min((b + 1) * BUCKET_NS, this.maxLate);
    }
    return this.maxLate;
  }
}

export class Ticker {
  readonly intervalNs: number;
  missed = 0;
  private readonly now: () => number;
  private readonly onTick: (scheduledNs: number, tNs: number) => void;
  private readonly cell = new Int32Array(new SharedArrayBuffer(4));
  private readonly lateness = new Lateness();
  private immediate: NodeJS.Immediate | null = null;
  private next = 0;
  private startNs = 0;
  private stopped = false;

  constructor(intervalNs: number, now: () => number, onTick: (scheduledNs: number, tNs: number) => void) {
    this.intervalNs = intervalNs;
    this.now = now;
    this.onTick = onTick;
  }

  /** First slot one interval after startNs. */
  start(startNs: number): void {
    this.startNs = startNs;
    this.next = startNs + this.intervalNs;
    this.immediate = setImmediate(this.fire);
  }

  stop(): void {
    if (!this.stopped && this.next > 0) this.skipPassed(this.now());
    this.stopped = true;
    if (this.immediate) clearImmediate(this.immediate);
    this.immediate = null;
  }

  get ticks(): number {
    return this.lateness.ticks;
  }

  stats(): JitterStats {
    return this.lateness.stats(this.missed);
  }

  private readonly fire = (): void => {
    if (this.stopped) return;
    // the event loop's next turn: after this slot while starting, else after the slots of the next YIELD_NS
    const until = this.next - this.startNs < EAGER_NS ? this.next : this.now() + YIELD_NS;
    do {
      if (!this.tick()) return;
    } while (this.next <= until);
    this.immediate = setImmediate(this.fire);
  };

  /** Wait for the next slot and take it; false once stopped. (A method of its own: hot, so optimised, where fire runs a few times a second.) */
  private tick(): boolean {
    const rem = this.next - this.now();
    if (rem > 0) Atomics.wait(this.cell, 0, 0, rem / 1e6);
    const t = this.now();
    this.lateness.record(t > this.next ? t - this.next : 0);
    this.onTick(this.next, t);
    if (this.stopped) return false;
    this.next += this.intervalNs;
    this.skipPassed(this.now());
    return true;
  }

  // More than half a slot behind (a stalled machine, or a stop that came
  // late): count the slots passed as missed rather than fire a burst of
  // samples to catch up, so that every slot is either sampled or missed.
  private skipPassed(now: number): void {
    while (now - this.next > this.intervalNs / 2) {
      this.next += this.intervalNs;
      this.missed++;
    }
  }
}
