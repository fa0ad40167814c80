import test from 'ava';
import { allocTxnColumns } from '../analysis/read-run.ts';
import { WARMUP_PER_WORKER, warmupOf } from '../analysis/warmup.ts';

// Warm-up: the first transactions of each worker, or those in the load's
// first --warmup D, are counted but kept out of latencies and outliers.

function columns(workers: number, each: number) {
  const c = allocTxnColumns(workers * each, 1);
  // records in completion order: interleaved workers, not sorted by start
  for (let k = 0; k < each; k++)
    for (let w = 0; w < workers; w++) {
      const i = k * workers + w;
      c.worker[i] = w;
      c.intendedNs[i] = 1e9 + (each - 1 - k) * 1e6 + w * 1e3; // the latest first
    }
  return c;
}

test('default: the first two of each worker by intended start, whatever the record order', (t) => {
  const c = columns(4, 10);
  const w = warmupOf(c, {});
  t.is(w.transactions, 4 * WARMUP_PER_WORKER);
  for (let i = 0; i < c.n; i++) {
    const k = Math.floor(i / 4);
    t.is(w.mask[i], k >= 8 ? 1 : 0, `record ${i}`);
  }
  t.regex(w.how, /first 2 transactions of each of the 4 client workers/);
});

test("default: a first transaction that failed, retransmitted or waited in connect is the kernel's, not warm-up", (t) => {
  const c = columns(3, 10);
  const firsts = [27, 28, 29]; // the earliest of workers 0, 1, 2
  c.outcome[firsts[0]] = 5; // failed
  c.tcpiTotalRetrans[firsts[1]] = 1;
  c.connectUs[firsts[2]] = 1_000_000; // a SYN retransmission
  const w = warmupOf(c, {});
  t.is(w.transactions, 3 * WARMUP_PER_WORKER - 3);
  for (const i of firsts) t.is(w.mask[i], 0);
});

test('--warmup D: those that started in the first D of the load; --warmup 0: none', (t) => {
  const c = columns(2, 10);
  const w = warmupOf(c, { warmupNs: 3.5e6 });
  t.is(w.transactions, 8, 'starts at 0, 1, 2, 3 ms of each worker');
  t.regex(w.how, /first 3.5 ms \(--warmup\)/);
  t.is(warmupOf(c, { warmupNs: 0 }).transactions, 0);
});
