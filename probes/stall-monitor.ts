import fs from 'node:fs';
import path from 'node:path';
import { monitorEventLoopDelay, PerformanceObserver, type PerformanceEntry } from 'node:perf_hooks';
import { runClock } from '../lib/clock.ts';
import { PROBES_DIR, SELF_ELD, SELF_GC, SELF_HEADER_BYTES, SELF_MAGIC, SELF_RUN, SELF_PREFIX, SELF_RECORD_BYTES, SELF_VERSION } from './probe-files.ts';

// Self-monitoring of a harness process (client, server), run inside that
// process: event-loop delay per interval and over the whole run
// (perf_hooks monitorEventLoopDelay) and every GC pause (PerformanceObserver 'gc'), so analysis can
// tell the harness's own stalls from the system's. Records go into a
// preallocated array and are appended to probes/self-<role>.<pid>.bin when
// it fills and, synchronously, on stop() or process exit.

const RESOLUTION_MS = 10;
const CAPACITY = 256; // records buffered between writes
const WORDS = SELF_RECORD_BYTES / 8;

export interface StallMonitor {
  /** Write the last interval and everything buffered; idempotent. */
  stop(): void;
  /** The file written. */
  file: string;
}

export function startStallMonitor(opts: { runDir: string; role: string; t0: bigint; intervalNs: number }): StallMonitor {
  const dir = path.join(opts.runDir, PROBES_DIR);
  fs.mkdirSync(dir, { recursive: true });
  const role = opts.role.replace(/[^\w-]/g, '_') || 'process';
  const file = path.join(dir, `${SELF_PREFIX}${role}.${process.pid}.bin`);
  const fd = fs.openSync(file, 'w');
  const head = Buffer.alloc(SELF_HEADER_BYTES);
  head.write(SELF_MAGIC, 0, 'latin1');
  head.writeUInt32LE(SELF_VERSION, 8);
  head.writeUInt32LE(process.pid, 12);
  head.writeUInt32LE(RESOLUTION_MS * 1e6, 16);
  head.writeUInt32LE(Math.round(opts.intervalNs / 1e3), 20);
  fs.writeSync(fd, head);

  const now = runClock(opts.t0);
  // performance.now() and PerformanceEntry.startTime share an origin: this
  // maps an entry's startTime (ms) onto ns since t0.
  const entryOffsetNs = now() - performance.now() * 1e6;
  const records = new Float64Array(CAPACITY * WORDS);
  const bytes = Buffer.from(records.buffer);
  let count = 0;
  let stopped = false;
  const resolutionNs = RESOLUTION_MS * 1e6;

  const flush = (): void => {
    if (count === 0) return;
    let off = 0;
    const len = count * SELF_RECORD_BYTES;
    while (off < len) off += fs.writeSync(fd, bytes, off, len - off);
    count = 0;
  };
  const push = (a: number, b: number, c: number, d: number, e: number, f: number, g: number, h: number): void => {
    if (count === CAPACITY) flush();
    const i = count * WORDS;
    records[i] = a;
    records[i + 1] = b;
    records[i + 2] = c;
    records[i + 3] = d;
    records[i + 4] = e;
    records[i + 5] = f;
    records[i + 6] = g;
    records[i + 7] = h;
    count++;
  };

  // Per interval: our own timer every RESOLUTION_MS, recording by how much
  // each tick came late (what monitorEventLoopDelay does natively). Not the
  // histogram with reset(): a reset forgets the last tick's time, so a stall
  // that starts within RESOLUTION_MS of a reset is never recorded.
  // monitorEventLoopDelay runs alongside, never reset, for the run's
  // distribution (p50/p99/max), written at stop.
  const eld = monitorEventLoopDelay({ resolution: RESOLUTION_MS });
  eld.enable();
  const excess = (v: number): number => (v > resolutionNs ? v - resolutionNs : 0);
  let last = now();
  let lastTick = last;
  let sum = 0;
  let max = 0;
  let min = Infinity;
  let n = 0;
  const record = (t: number): void => {
    if (n > 0) push(SELF_ELD, t, t - last, sum / n, max, min, n, 0);
    else push(SELF_ELD, t, t - last, NaN, NaN, NaN, 0, 0);
    last = t;
    sum = 0;
    max = 0;
    min = Infinity;
    n = 0;
  };
  const tick = (): void => {
    const t = now();
    const d = excess(t - lastTick);
    lastTick = t;
    sum += d;
    if (d > max) max = d;
    if (d < min) min = d;
    n++;
    if (t - last >= opts.intervalNs - resolutionNs / 2) record(t);
  };
  const timer = setInterval(tick, RESOLUTION_MS);
  timer.unref();

  const gc = new PerformanceObserver((list) => {
    const entries = list.getEntries();
    for (let i = 0; i < entries.length; i++) {
      const e = entries[i] as PerformanceEntry & { detail?: { kind?: number; flags?: number } };
      push(SELF_GC, e.startTime * 1e6 + entryOffsetNs, e.duration * 1e6, e.detail?.kind ?? 0, e.detail?.flags ?? 0, 0, 0, 0);
    }
  });
  gc.observe({ entryTypes: ['gc'] });

  const stop = (): void => {
    if (stopped) return;
    stopped = true;
    clearInterval(timer);
    // GC entries still queued for the observer's callback.
    const pending = gc.takeRecords();
    for (const e of pending as (PerformanceEntry & { detail?: { kind?: number; flags?: number } })[]) {
      push(SELF_GC, e.startTime * 1e6 + entryOffsetNs, e.duration * 1e6, e.detail?.kind ?? 0, e.detail?.flags ?? 0, 0, 0, 0);
    }
    gc.disconnect();
    const t = now();
    record(t);
    eld.disable();
    if (eld.count > 0) {
      push(SELF_RUN, t, eld.count, excess(eld.mean), excess(eld.percentile(50)), excess(eld.percentile(99)), excess(eld.max), excess(eld.min));
    }
    flush();
    fs.closeSync(fd);
    process.removeListener('exit', stop);
  };
  process.on('exit', stop);
  return { stop, file };
}
