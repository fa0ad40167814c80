import type { StallMonitorData } from '../../probes/read.ts';
import type { TxnColumns } from '../read-run.ts';
import { lowerBound } from '../windows.ts';
import type { Contention } from './contention.ts';
import type { HarnessCheck } from './types.ts';
import { formatNs, formatSeconds, formatUs } from '../../lib/format.ts';

// Self-check: which outliers coincide with a stall of the harness itself
// (its client or server process), read from the stall-monitor files.
//
// An outlier [start, end] (ns since t0) with excess E = latency - median is
// the harness's doing when, in a client or server process:
//   - an event-loop-delay interval overlapping it has a largest delay of at
//     least STALL_SHARE x E (the loop could not run the callbacks that time
//     the transaction), or
//   - a GC pause overlapping it lasts at least STALL_SHARE x E.
// An event-loop stall while other processes held the CPUs (contention.ts)
// is not the harness's doing: it is counted as `starved` and left to the
// system's causes. GC pauses are always the harness's own.
// There is one client process, so the transaction's client is the one whose
// role starts with "client" (every one, when there are several).
//
// Cost: a binary search per outlier per monitor, then a scan of the
// intervals inside its span.

export const STALL_SHARE = 0.5;

export function selfCheck(
  monitors: StallMonitorData[],
  c: Pick<TxnColumns, 'intendedNs' | 'lateUs' | 'endUs' | 'connectUs'>,
  outliers: ArrayLike<number>,
  medianUs: number,
  contended?: Contention,
  /** Times in the examples count from here (the load's start), ns since t0. */
  originNs = 0,
): { stalled: Uint8Array; check: HarnessCheck } {
  const mons = monitors.filter((m) => m.role.startsWith('client') || m.role.startsWith('server'));
  const stalled = new Uint8Array(outliers.length);
  let byLoop = 0;
  let byGc = 0;
  let starved = 0;
  let worstNs = 0;
  const examples: string[] = [];
  // GC pauses sorted by end, per monitor
  const gcs = mons.map((m) => {
    const n = m.gc.start.length;
    const idx = Array.from({ length: n }, (_, i) => i).sort((a, b) => m.gc.start[a] + m.gc.duration[a] - (m.gc.start[b] + m.gc.duration[b]));
    const end = Float64Array.from(idx, (i) => m.gc.start[i] + m.gc.duration[i]);
    const start = Float64Array.from(idx, (i) => m.gc.start[i]);
    const dur = Float64Array.from(idx, (i) => m.gc.duration[i]);
    return { end, start, dur };
  });
  for (let k = 0; k < outliers.length; k++) {
    const i = outliers[k];
    const late = Number.isFinite(c.lateUs[i]) ? c.lateUs[i] : 0;
    const s = c.intendedNs[i] + late * 1000;
    const endUs = Number.isFinite(c.endUs[i]) ? c.endUs[i] : Number.isFinite(c.connectUs[i]) ? c.connectUs[i] : 0;
    const e = s + endUs * 1000;
    const excessNs = Math.max(0, (late + endUs - medianUs) * 1000);
    const need = STALL_SHARE * excessNs;
    let found: { ns: number; what: string } | null = null;
    let wasStarved = false;
    for (let q = 0; q < mons.length && found === null; q++) {
      const m = mons[q];
      // event-loop delay intervals (t - dt, t] overlapping [s, e]
      for (let r = lowerBound(m.eld.t, s); r < m.eld.t.length && m.eld.t[r] - m.eld.dt[r] <= e; r++) {
        const mx = m.eld.max[r];
        if (Number.isFinite(mx) && mx >= need && mx > 0) {
          if (contended !== undefined && contended(m.eld.t[r] - m.eld.dt[r], m.eld.t[r])) {
            wasStarved = true;
            continue;
          }
          found = { ns: mx, what: `${m.role} event loop stalled ${formatNs(mx)} around ${formatSeconds(m.eld.t[r] - originNs)}` };
          byLoop++;
          break;
        }
      }
      if (found !== null) break;
      const g = gcs[q];
      for (let r = lowerBound(g.end, s); r < g.end.length; r++) {
        if (g.start[r] > e) continue;
        if (g.dur[r] >= need && g.dur[r] > 0) {
          found = { ns: g.dur[r], what: `${m.role} GC pause of ${formatNs(g.dur[r])} at ${formatSeconds(g.start[r] - originNs)}` };
          byGc++;
          break;
        }
      }
    }
    if (found === null && wasStarved) starved++;
    if (found !== null) {
      stalled[k] = 1;
      if (found.ns > worstNs) worstNs = found.ns;
      if (examples.length < 3) examples.push(`outlier at ${formatSeconds(s - originNs)} into the load (${formatUs(late + endUs)}): ${found.what}`);
    }
  }
  return {
    stalled,
    check: {
      outliers: outliers.length,
      stalled: byLoop + byGc,
      byLoopDelay: byLoop,
      byGc,
      starved,
      monitors: mons.length,
      worstMs: Math.round(worstNs / 1e4) / 100,
      examples,
    },
  };
}
