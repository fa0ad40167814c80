import type { RunConfig } from '../../lib/types.ts';
import type { DoneMessage, ProgressMessage } from '../messages.ts';

// --client-processes K: the load split over K client processes, each
// recording its own transactions file. Process i of K gets its share of the
// concurrency (or of the open loop's rate and in-flight limit) and of the
// transaction count; its workers are numbered after those of the processes
// before it, so worker ids stay unique in the records.

const share = (total: number, i: number, k: number): number => Math.floor(total / k) + (i < total % k ? 1 : 0);
const before = (total: number, i: number, k: number): number => {
  let n = 0;
  for (let j = 0; j < i; j++) n += share(total, j, k);
  return n;
};

export function shareOf(cfg: RunConfig, i: number, k: number): { config: RunConfig; firstWorker: number } {
  if (k <= 1) return { config: cfg, firstWorker: 0 };
  const workers = cfg.rate === null ? cfg.concurrency : cfg.maxInflight;
  return {
    config: {
      ...cfg,
      concurrency: share(cfg.concurrency, i, k),
      maxInflight: share(cfg.maxInflight, i, k),
      transactions: cfg.transactions === null ? null : share(cfg.transactions, i, k),
      rate: cfg.rate === null ? null : cfg.rate / k,
      // poisson arrivals: each process its own stream
      seed: cfg.seed + i,
    },
    firstWorker: before(workers, i, k),
  };
}

/** The transactions file of client process i (the first keeps the usual name). */
export const transactionsFile = (i: number): string => (i === 0 ? 'transactions.bin' : `transactions-${i + 1}.bin`);
export const clientLogFile = (i: number): string => (i === 0 ? 'client.log' : `client-${i + 1}.log`);
export const clientRole = (i: number): string => (i === 0 ? 'client' : `client-${i + 1}`);

/** The K clients' end-of-run counts as one: sums, the earliest start, the latest end. */
export function combineDone(parts: DoneMessage[]): DoneMessage {
  if (parts.length === 1) return parts[0];
  const min = (f: (d: DoneMessage) => number): number => Math.min(...parts.map(f).filter(Number.isFinite));
  const max = (f: (d: DoneMessage) => number): number => Math.max(...parts.map(f).filter(Number.isFinite));
  const sum = (f: (d: DoneMessage) => number): number => parts.reduce((n, d) => n + f(d), 0);
  return {
    type: 'done',
    attempted: sum((d) => d.attempted),
    ok: sum((d) => d.ok),
    failed: sum((d) => d.failed),
    timedOut: sum((d) => d.timedOut),
    missedStarts: sum((d) => d.missedStarts),
    firstStartNs: min((d) => d.firstStartNs),
    lastEndNs: max((d) => d.lastEndNs),
    notes: [...new Set(parts.flatMap((d) => d.notes))],
  };
}

/** Progress of the K clients as one line's worth: sums, and the worst p99. */
export function combineProgress(parts: ProgressMessage[]): ProgressMessage {
  const out: ProgressMessage = { type: 'progress', attempted: 0, ok: 0, failed: 0, timedOut: 0, inflight: 0, p99Us: 0 };
  for (const p of parts) {
    out.attempted += p.attempted;
    out.ok += p.ok;
    out.failed += p.failed;
    out.timedOut += p.timedOut;
    out.inflight += p.inflight;
    out.p99Us = Math.max(out.p99Us, p.p99Us);
  }
  return out;
}
