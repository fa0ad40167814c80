import { formatUs } from '../lib/format.ts';
import { matchTolerance } from './modes.ts';
import { phaseDurations, phaseMedian, phaseNames, type PhaseMedians } from './phases.ts';
import type { TxnColumns } from './read-run.ts';
import type { TimerConstant } from './timers.ts';

// Timers per phase: an outlier whose excess is the sum of several timers,
// each in a phase of its own (a delayed ACK in each of three exchanges, an
// RTO in one exchange and a delayed ACK in the next), matches no single timer
// as a whole. Each phase's excess (its duration minus the phase's normal
// median) is matched on its own; the outlier is explained when every phase
// holding a noticeable part of its excess matches a timer and those timers
// add up to the whole excess. A mode is named for such a chain ("2 x delayed
// ACK") when most of its outliers share it.
//
// The rule, from the mechanism: a timer fires in the phase that waits for it,
// so its delay shows in that phase whole. Tolerances are the single-timer
// ones (modes.ts matchTolerance: ±max(10 %, 15 ms)) per phase; the sum must
// agree with the total excess within the same tolerance of the sum.

/** A phase holds a noticeable part of the excess: at least this share of it, and at least NOTICE_US. */
const NOTICE_SHARE = 0.1;
const NOTICE_US = 5_000;
/** A mode is named for a chain when at least this share of its outliers have that chain. */
const MODE_SHARE = 0.6;

/** A chain of timers, one per phase, that together explain an outlier's excess. */
export interface TimerChain {
  /** Stable id: timer ids joined by '+', repeats as "id*k" ("delayed-ack*2", "rto-1+delayed-ack"). */
  id: string;
  /** "2 x delayed ACK (40 ms)", "data retransmission timeout #1 (200 ms) + delayed ACK (40 ms)". */
  label: string;
  /** Sum of the timers, us. */
  us: number;
  /** The phases that waited, in order ("exchange 2, exchange 3"). */
  phases: string[];
}

/**
 * The chain of timers explaining outlier i, or null. `excessUs` is the
 * outlier's total excess over the reference latency.
 */
export function chainOf(c: TxnColumns, i: number, excessUs: number, medians: PhaseMedians, timers: TimerConstant[], scratch: Float64Array): TimerChain | null {
  const E = c.exchanges;
  phaseDurations(c, i, scratch);
  const names = phaseNames(E);
  const hits: { t: TimerConstant; phase: string }[] = [];
  let explained = 0;
  for (let p = 0; p < E + 3; p++) {
    const dur = scratch[p];
    if (!Number.isFinite(dur)) continue;
    const med = phaseMedian(medians, p, E);
    const ex = dur - (Number.isFinite(med) ? med : 0);
    if (ex < Math.max(NOTICE_US, NOTICE_SHARE * excessUs)) continue;
    const t = closestTimer(ex, timers);
    if (t === null) return null;
    hits.push({ t, phase: names[p] });
    explained += t.us;
  }
  if (hits.length < 2) return null;
  if (Math.abs(explained - excessUs) > Math.max(0.1 * explained, 15_000)) return null;
  return describeChain(hits);
}

/**
 * The chain most of these outliers share, when at least MODE_SHARE of them
 * do; null otherwise. `members` are transaction indices, `excess` their excess.
 */
export function sharedChain(
  c: TxnColumns,
  members: ArrayLike<number>,
  excess: ArrayLike<number>,
  medians: PhaseMedians,
  timers: TimerConstant[],
): (TimerChain & { share: number }) | null {
  if (members.length === 0) return null;
  const scratch = new Float64Array(c.exchanges + 3);
  const counts = new Map<string, { chain: TimerChain; n: number }>();
  for (let k = 0; k < members.length; k++) {
    const ch = chainOf(c, members[k], excess[k], medians, timers, scratch);
    if (ch === null) continue;
    const e = counts.get(ch.id);
    if (e === undefined) counts.set(ch.id, { chain: ch, n: 1 });
    else e.n++;
  }
  let best: { chain: TimerChain; n: number } | null = null;
  for (const e of counts.values()) if (best === null || e.n > best.n) best = e;
  if (best === null || best.n < MODE_SHARE * members.length) return null;
  return { ...best.chain, share: best.n / members.length };
}

/** The ids of the timers in a chain or single timer id ("rto-1+delayed-ack*2" -> ["rto-1", "delayed-ack"]). */
export const timerIdsOf = (id: string): string[] => id.split('+').map((part) => part.replace(/\*\d+$/, ''));

function closestTimer(ex: number, timers: TimerConstant[]): TimerConstant | null {
  let best: TimerConstant | null = null;
  let bestD = Infinity;
  for (const t of timers) {
    const d = Math.abs(ex - t.us);
    if (d <= matchTolerance(t) && d < bestD) {
      best = t;
      bestD = d;
    }
  }
  return best;
}

function describeChain(hits: { t: TimerConstant; phase: string }[]): TimerChain {
  // group repeats of one timer, keeping the order of first appearance
  const groups: { t: TimerConstant; n: number }[] = [];
  for (const h of hits) {
    const g = groups.find((x) => x.t.id === h.t.id);
    if (g === undefined) groups.push({ t: h.t, n: 1 });
    else g.n++;
  }
  const name = (t: TimerConstant): string => t.label.replace(/ \([^)]*\)$/, '');
  return {
    id: groups.map((g) => (g.n > 1 ? `${g.t.id}*${g.n}` : g.t.id)).join('+'),
    label: groups.map((g) => (g.n > 1 ? `${g.n} x ${name(g.t)} (${formatUs(g.t.us)})` : g.t.label)).join(' + '),
    us: hits.reduce((a, h) => a + h.t.us, 0),
    phases: hits.map((h) => h.phase),
  };
}
