// Recording cost: nanoseconds and heap bytes per transaction recorded by the
// client's TxnRecorder (harness/workload/txn-recorder.ts) into a real transactions.bin,
// from a real client Worker's state (the object the client records, with the
// same hidden class). Runs in a child with --expose-gc and a new space large
// enough that a recorder allocating nothing sees no GC at all; GCs during the
// timed loop are counted, and heap growth is read from v8 heap statistics
// after a full GC before and without one after (garbage would show as growth
// or as a scavenge; the figure is the slope between a loop of n/4 and of n,
// so once-per-loop costs are left out). Three loops: the best is the figure, the median beside it.
//
//   node --expose-gc --max-semi-space-size=64 --import tsx bench/recording.ts [records, default 1000000] [--json]
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PerformanceObserver } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { getHeapStatistics } from 'node:v8';
import { defaultConfig } from '../harness/config.ts';
import { Worker, type WorkerHost } from '../harness/workload/client-worker.ts';
import { TxnRecorder } from '../harness/workload/txn-recorder.ts';

export interface RecordingFigures {
  records: number;
  /** Best of LOOPS timed loops of `records` each (the least disturbed on a busy machine). */
  nsPerRecord: number;
  /** Median of the loops. */
  nsPerRecordMedian: number;
  /** Slope of heap growth over records (loops of n/4 and n, no GC in between). */
  heapBytesPerRecord: number;
  /** Heap growth of one loop of n records (includes once-per-loop costs). */
  heapBytesPerLoop: number;
  gcsDuringLoop: number;
}

const SELF = fileURLToPath(import.meta.url);
const LOOPS = 3;

function measure(n: number): RecordingFigures {
  const gc = (globalThis as { gc?: () => void }).gc;
  if (gc === undefined) throw new Error('run with --expose-gc');
  const dir = mkdtempSync(join(tmpdir(), 'sockspike-recording-'));
  try {
    const cfg = defaultConfig();
    const host: WorkerHost = { config: cfg, now: () => 0, stopping: false, nextSeq: () => 0, finished: () => {} };
    const w = new Worker(3, host);
    const rec = new TxnRecorder(join(dir, 'transactions.bin'), cfg.exchanges);
    const fill = (i: number): void => {
      w.intendedNs = i * 1000;
      w.startNs = i * 1000 + 5;
      w.connectNs = w.startNs + 40_000;
      w.exchangeNs[0] = w.startNs + 90_000;
      w.exchangeNs[1] = w.startNs + 140_000;
      w.endNs = w.startNs + 150_000;
      w.localPort = 32768 + (i & 0x3fff);
      w.outcome = 0;
      w.bytesOut = 6000;
      w.bytesIn = 6000;
      w.tcpInfoValid = (i & 1) === 0;
    };
    // warm-up: let the JIT optimise record() as it would in a long run
    for (let i = 0; i < 200_000; i++) {
      fill(i);
      rec.record(w);
    }
    let gcs = 0;
    const obs = new PerformanceObserver((list) => (gcs += list.getEntries().length));
    const times: number[] = [];
    // heap growth of a loop of m records (GC'd before, not after)
    const loop = (m: number): number => {
      gc();
      gc();
      const before = getHeapStatistics().used_heap_size;
      obs.observe({ entryTypes: ['gc'] });
      const t0 = process.hrtime.bigint();
      for (let i = 0; i < m; i++) {
        fill(i);
        rec.record(w);
      }
      const t1 = process.hrtime.bigint();
      const after = getHeapStatistics().used_heap_size;
      obs.disconnect();
      times.push(Number(t1 - t0) / m);
      return after - before;
    };
    const grownSmall = loop(n / 4);
    times.length = 0;
    let grown = 0;
    for (let k = 0; k < LOOPS; k++) grown = Math.max(grown, loop(n));
    rec.close();
    // Growth per record is the slope between a loop of n/4 and one of n:
    // what every loop costs once (the write of a page, statistics, the
    // observer) is not a cost per transaction.
    const perRecord = Math.max(0, grown - grownSmall) / (n - n / 4);
    times.sort((a, b) => a - b);
    // The fill() stores are a few ns of the figure; they are the Worker's
    // own work in a real run, so they stay in.
    return {
      records: n,
      nsPerRecord: times[0],
      nsPerRecordMedian: times[Math.floor(LOOPS / 2)],
      heapBytesPerRecord: perRecord,
      heapBytesPerLoop: grown,
      gcsDuringLoop: gcs,
    };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Runs the measurement in a child with the flags it needs. */
export function measureRecording(n: number): RecordingFigures {
  const r = spawnSync(process.execPath, ['--expose-gc', '--max-semi-space-size=64', '--import', 'tsx', SELF, '--child', String(n)], {
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  if (r.status !== 0) throw new Error(`recording benchmark failed (${r.status ?? r.signal})`);
  return JSON.parse(r.stdout.trim().split('\n').pop()!) as RecordingFigures;
}

if (process.argv[1] !== undefined && fileURLToPath(import.meta.url) === process.argv[1]) {
  const args = process.argv.slice(2);
  if (args[0] === '--child') process.stdout.write(JSON.stringify(measure(Number(args[1]))) + '\n');
  else {
    const n = Number(args.find((a) => /^\d+$/.test(a)) ?? 1_000_000);
    const f = measureRecording(n);
    if (args.includes('--json')) console.log(JSON.stringify(f));
    else
      console.log(
        `recording: ${f.nsPerRecord.toFixed(1)} ns (best of ${LOOPS}; median ${f.nsPerRecordMedian.toFixed(1)}) and ${f.heapBytesPerRecord.toFixed(3)} heap bytes per transaction over ${n} records (${f.gcsDuringLoop} GCs during the loop)`,
      );
  }
}
