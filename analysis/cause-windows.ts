import type { Cause, CauseWindow } from '../lib/types.ts';
import type { TxnColumns } from './read-run.ts';

// More than one cause in a run: trouble that comes and goes in separate
// spells of the run (a fault from 2 s to 4 s, CPU contention from 6 s to
// 8 s) gets each spell looked at on its own, so the second problem is named
// too, with its window and its share of the outliers.
//
// Windows: the outliers' start times, split wherever no outlier started for
// at least GAP_NS. A window stands on its own when it holds at least
// max(MIN_OUTLIERS, MIN_SHARE of the outliers). With fewer than two such
// windows the run is one window and nothing changes. Each window's causes
// are found as for the whole run, on its outliers alone; a cause gets the
// windows in which it ranks first. A cause first in a window but not among
// the run's causes is added, with that window's confidence. Best first, as
// always.

export const GAP_NS = 1e9;
const MIN_OUTLIERS = 5;
const MIN_SHARE = 0.05;
/** At most this many windows are analysed (the largest). */
const MAX_WINDOWS = 6;

export interface OutlierWindow {
  fromNs: number;
  toNs: number;
  /** Outlier transactions (indices into the columns) that started in it. */
  outliers: Uint32Array;
}

/** The windows that stand on their own, in time order; [] when the run is one window. */
export function outlierWindows(c: Pick<TxnColumns, 'intendedNs'>, outliers: Uint32Array): OutlierWindow[] {
  if (outliers.length < 2 * MIN_OUTLIERS) return [];
  const order = Array.from(outliers).sort((a, b) => c.intendedNs[a] - c.intendedNs[b]);
  const spells: number[][] = [[order[0]]];
  for (let k = 1; k < order.length; k++) {
    if (c.intendedNs[order[k]] - c.intendedNs[order[k - 1]] >= GAP_NS) spells.push([]);
    spells[spells.length - 1].push(order[k]);
  }
  const min = Math.max(MIN_OUTLIERS, MIN_SHARE * outliers.length);
  const big = spells
    .filter((s) => s.length >= min)
    .sort((a, b) => b.length - a.length)
    .slice(0, MAX_WINDOWS)
    .sort((a, b) => c.intendedNs[a[0]] - c.intendedNs[b[0]]);
  if (big.length < 2) return [];
  return big.map((s) => ({ fromNs: c.intendedNs[s[0]], toNs: c.intendedNs[s[s.length - 1]], outliers: Uint32Array.from(s) }));
}

/**
 * The run's causes with their windows: each window's first cause gets that
 * window; one that the whole-run analysis did not name is added after the
 * run's own. `total`: all outliers of the run.
 */
export function mergeWindowCauses(runCauses: Cause[], perWindow: { window: OutlierWindow; causes: Cause[] }[], total: number): Cause[] {
  const out = runCauses.map((c) => ({ ...c }));
  for (const { window, causes } of perWindow) {
    const top = causes[0];
    if (top === undefined) continue;
    const w: CauseWindow = {
      fromNs: Math.round(window.fromNs),
      toNs: Math.round(window.toNs),
      outliers: window.outliers.length,
      share: Math.round((window.outliers.length / Math.max(1, total)) * 1000) / 1000,
    };
    let c = out.find((x) => x.id === top.id);
    if (c === undefined) {
      c = { ...top };
      out.push(c);
    }
    c.windows = [...(c.windows ?? []), w];
  }
  return out.sort((x, y) => y.confidence - x.confidence);
}
