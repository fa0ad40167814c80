import { OUTCOME_OK, type RunConfig } from '../lib/types.ts';
import { formatNs } from '../lib/format.ts';
import type { TxnColumns } from './read-run.ts';

// Warm-up: the first transactions of a run pay for what only a start pays
// (a client's first connections and code paths, the server's first accepts,
// caches and route lookups), so they are kept out of the latency figures and
// the outliers; they are still attempted and counted (ok, failed, timed out).
//
// The rule: the first WARMUP_PER_WORKER transactions of each client worker
// (by intended start), since start-up costs come per connection and per
// code path, not per second; but not one that failed, retransmitted or
// waited in connect (at least CONNECT_WAIT_US: a SYN retransmission takes
// a second): those are the kernel's doing, which the start of a run can
// show as well as any other moment (a backlog of 1 overflows at once). Or, with --warmup D, every transaction that
// started within D of the load's first intended start (--warmup 0: none).

export const WARMUP_PER_WORKER = 2;
export const CONNECT_WAIT_US = 100_000;

export interface Warmup {
  /** 1: a warm-up transaction, kept out of latencies and outliers. */
  mask: Uint8Array;
  transactions: number;
  /** The rule, in words, for summary.json and the report. */
  how: string;
}

type WarmupColumns = Pick<TxnColumns, 'n' | 'intendedNs' | 'worker' | 'outcome' | 'tcpiTotalRetrans' | 'connectUs'>;

// The summary, the outliers, the report, its timeline and the export each ask for a run's warm-up:
// worked out once per columns object (readers hand out one per run and never write into it).
const cache = new WeakMap<WarmupColumns, Map<number | null, Warmup>>();

/** The run's warm-up transactions (the mask is shared: read it, never write into it). */
export function warmupOf(c: WarmupColumns, config: Pick<RunConfig, 'warmupNs'>): Warmup {
  const key = config.warmupNs ?? null;
  let byRule = cache.get(c);
  if (byRule === undefined) cache.set(c, (byRule = new Map()));
  let w = byRule.get(key);
  if (w === undefined) byRule.set(key, (w = findWarmup(c, config)));
  return w;
}

function findWarmup(c: WarmupColumns, config: Pick<RunConfig, 'warmupNs'>): Warmup {
  const mask = new Uint8Array(c.n);
  let n = 0;
  const given = config.warmupNs;
  if (given !== undefined && given !== null) {
    if (given > 0 && c.n > 0) {
      let first = Infinity;
      for (let i = 0; i < c.n; i++) if (c.intendedNs[i] < first) first = c.intendedNs[i];
      for (let i = 0; i < c.n; i++)
        if (c.intendedNs[i] < first + given) {
          mask[i] = 1;
          n++;
        }
    }
    return { mask, transactions: n, how: given > 0 ? `the transactions that started in the load's first ${formatNs(given)} (--warmup)` : 'none (--warmup 0)' };
  }
  // the K earliest of each worker: K is small, so keep each worker's K earliest as a sorted list
  const K = WARMUP_PER_WORKER;
  const firsts = new Map<number, number[]>();
  for (let i = 0; i < c.n; i++) {
    const w = c.worker[i];
    let list = firsts.get(w);
    if (list === undefined) firsts.set(w, (list = []));
    const t = c.intendedNs[i];
    if (list.length < K || t < c.intendedNs[list[list.length - 1]]) {
      let at = list.length;
      while (at > 0 && c.intendedNs[list[at - 1]] > t) at--;
      list.splice(at, 0, i);
      if (list.length > K) list.pop();
    }
  }
  for (const list of firsts.values())
    for (const i of list) {
      if (c.outcome[i] !== OUTCOME_OK || c.tcpiTotalRetrans[i] > 0 || c.connectUs[i] >= CONNECT_WAIT_US) continue;
      mask[i] = 1;
      n++;
    }
  return {
    mask,
    transactions: n,
    how: `the first ${K} transactions of each of the ${firsts.size} client workers, but for any that failed, retransmitted or waited in connect`,
  };
}
