// The scoring every cause module shares: evidence items weighed into a
// confidence, the shares and counters they are built from, and the words
// and numbers they are told in.
import { durationFlag, suggestedRun } from '../../lib/run-args.ts';
import type { CauseInput, MetricNear } from './types.ts';
import { timerIdsOf } from '../phase-timers.ts';
import { formatNumber, formatSeconds, formatShare, formatUs } from '../../lib/format.ts';

/** One evidence item: weight (share of the score), strength 0..1 (0: does not hold), null strength: not available (left out of the denominator). */
export interface Item {
  weight: number;
  strength: number | null;
  text: string;
}

/** Confidence = sum(weight x strength) / sum(weight of the available items); the evidence is the text of the items that hold. */
export function score(items: Item[]): { confidence: number; evidence: string[] } {
  let num = 0;
  let den = 0;
  const evidence: string[] = [];
  for (const it of items) {
    if (it.strength === null) continue;
    den += it.weight;
    const s = Math.max(0, Math.min(1, it.strength));
    num += it.weight * s;
    if (s > 0) evidence.push(it.text);
  }
  return { confidence: den > 0 ? Math.round((num / den) * 100) / 100 : 0, evidence };
}

export const clamp01 = (x: number): number => (Number.isFinite(x) ? Math.max(0, Math.min(1, x)) : 0);

/**
 * Resets of a full accept queue: tcp_abort_on_overflow=1 makes the kernel
 * answer a handshake it cannot queue with a reset, and then
 * TcpExt.ListenOverflows moves; an abortive close moves only Tcp.OutRsts.
 */
export function overflowResets(input: CauseInput): boolean {
  if (input.sysctls['net.ipv4.tcp_abort_on_overflow'] !== '1') return false;
  const e = input.transactions.errors;
  if ((e.ECONNRESET ?? 0) + (e.EPIPE ?? 0) === 0) return false;
  const l = counterNear(input, ['TcpExt.ListenOverflows']);
  return l.near + l.otherwise > 0;
}

/** Share of the outliers in modes of this timer family ("syn-retransmit", "rto", "delayed-ack"). */
export function modeShare(input: CauseInput, family: string): { share: number; count: number; labels: string[] } {
  let share = 0;
  let count = 0;
  const labels: string[] = [];
  for (const m of input.outliers.modes) {
    if (m.timer !== null && timerIdsOf(m.timer).some((id) => id.startsWith(family))) {
      share += m.share;
      count += m.count;
      labels.push(m.label.split(':')[0]);
    }
  }
  return { share, count, labels };
}

/** Share of the outliers whose excess sits in a phase matching the test. */
export function phaseShare(input: CauseInput, test: (phase: string) => boolean): { share: number; phase: string | null } {
  const p = input.outliers.phases;
  if (p === null) return { share: 0, phase: null };
  let share = 0;
  let best: string | null = null;
  let bestShare = -1;
  for (const r of p.rows) {
    if (!test(r.phase)) continue;
    share += r.share;
    if (r.share > bestShare) {
      bestShare = r.share;
      best = r.phase;
    }
  }
  return { share, phase: best };
}

export const isExchange = (phase: string): boolean => phase.startsWith('exchange');

/**
 * A counter moved near the outliers: its rate per sample row there against
 * elsewhere. strength 1 when at least twice the rate elsewhere (or elsewhere
 * zero), 0.5 when merely nonzero near the outliers, 0 when it did not move
 * there; null when the metric was not sampled.
 */
export function counterNear(
  input: CauseInput,
  names: string[],
): { strength: number | null; near: number; otherwise: number; nearRows: number; otherRows: number; text: string } {
  const ms = names.map((n) => [n, input.metrics[n]] as const).filter(([, m]) => m !== undefined);
  if (ms.length === 0) return { strength: null, near: 0, otherwise: 0, nearRows: 0, otherRows: 0, text: '' };
  let near = 0;
  let otherwise = 0;
  let nearRows = 0;
  let otherRows = 0;
  for (const [, m] of ms) {
    near += m!.near;
    otherwise += m!.otherwise;
    nearRows = Math.max(nearRows, m!.nearRows);
    otherRows = Math.max(otherRows, m!.otherRows);
  }
  const rn = nearRows > 0 ? near / nearRows : 0;
  const ro = otherRows > 0 ? otherwise / otherRows : 0;
  const strength = near <= 0 ? 0 : ro === 0 || rn >= 2 * ro ? 1 : 0.5;
  const label = ms.map(([n]) => n).join(' + ');
  const text = `${label}: ${formatNumber(near)} in the ${nearRows} probe samples around outliers, ${formatNumber(otherwise)} in the other ${otherRows}`;
  return { strength, near, otherwise, nearRows, otherRows, text };
}

/** Level of a fraction/gauge metric near outliers and otherwise (null: not sampled). */
export function levelNear(input: CauseInput, name: string): MetricNear | null {
  return input.metrics[name] ?? null;
}

/**
 * A CPU share (cpu.steal, cpu.softirq) that stands out around the outliers:
 * at least `min` there and 1.5 x the rest of the load, or null. Scored
 * 0.6 for the level (full at `full`) and 0.4 for the rise over otherwise.
 */
export function risingShare(
  input: CauseInput,
  name: string,
  min: number,
  full: number,
  what: string,
): { level: MetricNear; confidence: number; evidence: string[] } | null {
  const st = levelNear(input, name);
  if (st === null || st.nearRows === 0 || st.near < min || st.near < 1.5 * st.otherwise) return null;
  const ratio = st.otherwise > 0 ? st.near / st.otherwise : Infinity;
  const { confidence, evidence } = score([
    {
      weight: 0.6,
      strength: clamp01(st.near / full),
      text: `${what} ${formatShare(st.near)} of the CPUs in the ${st.nearRows} samples around the outliers (up to ${formatShare(st.nearMax)})`,
    },
    { weight: 0.4, strength: ratio === Infinity ? 1 : clamp01(ratio - 1), text: `against ${formatShare(st.otherwise)} in the other ${st.otherRows} samples` },
  ]);
  return { level: st, confidence, evidence };
}

/** CPU-pressure-like counters (us stalled per sample) as a fraction of the sample interval. */
export function pressureFraction(input: CauseInput, name: string): { near: number; otherwise: number } | null {
  const m = input.metrics[name];
  const intervalNs = input.probeIntervalNs;
  if (m === undefined || m.nearRows === 0 || !(intervalNs > 0)) return null;
  // a share of time: at most all of it (a row can cover a little more than the nominal interval)
  const perRow = (total: number, rows: number): number => (rows > 0 ? Math.min(1, (total * 1000) / rows / intervalNs) : 0);
  return { near: perRow(m.near, m.nearRows), otherwise: perRow(m.otherwise, m.otherRows) };
}

/** "N outlier connections" that kernel events could have seen, saying so when bpftrace attached after some began. */
export function kernelOutliers(input: CauseInput): string {
  const k = input.txn.kernel;
  const n = k?.outliers ?? input.outliers.count;
  const all = input.outliers.count;
  return k !== null && n < all
    ? `${formatNumber(n)} outlier connections (the ${formatNumber(all - n)} before bpftrace attached at ${formatSeconds(k.fromNs)} cannot show events)`
    : `${formatNumber(n)} outlier connections`;
}

/** "N outliers above T between a s and b s into the load" (counted from the first transaction's intended start, not from t0). */
export function outlierSpan(input: CauseInput): string {
  const o = input.outliers;
  const origin = Number.isFinite(input.loadStartNs) ? (input.loadStartNs as number) : 0;
  const when = Number.isFinite(o.firstNs)
    ? ` between ${formatSeconds(Math.max(0, o.firstNs - origin))} and ${formatSeconds(Math.max(0, o.lastNs - origin))} into the load`
    : '';
  return `${formatNumber(o.count)} outlier${o.count === 1 ? '' : 's'} above ${formatUs(o.thresholdUs)}${when}`;
}

/** A `sockspike run` command (in backticks): the run's every setting kept (lib/run-args.ts), the outlier threshold pinned, and `change` applied. */
export function runCommand(input: CauseInput, change: Record<string, string | number | boolean | null>): string {
  return `\`${suggestedRun(input.config, { '--outlier': durationFlag(Math.round(input.outliers.thresholdUs) * 1e3), ...change })}\``;
}
