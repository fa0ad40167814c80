import test from 'ava';
import { GAP_NS, mergeWindowCauses, outlierWindows } from '../analysis/cause-windows.ts';
import type { Cause } from '../lib/types.ts';

// Two problems in separate spells of one run: each spell is looked at on its
// own, and each cause carries the spells it explains.

const starts = (ns: number[]): { intendedNs: Float64Array } => ({ intendedNs: Float64Array.from(ns) });
const range = (from: number, n: number, step: number): number[] => Array.from({ length: n }, (_, k) => from + k * step);
const cause = (id: string, confidence: number): Cause => ({ id, confidence, summary: id, evidence: [], tryNext: [] });

test('outliers in two spells a gap apart are two windows; one spell, or a spell too small, is none', (t) => {
  const c = starts([...range(2e9, 20, 0.1e9), ...range(6e9, 30, 0.05e9), 9.5e9]);
  const all = Uint32Array.from(c.intendedNs.keys());
  const w = outlierWindows(c, all);
  t.is(w.length, 2, 'the lone outlier at 9.5 s is no window of its own');
  t.deepEqual(
    w.map((x) => [x.fromNs, x.outliers.length]),
    [
      [2e9, 20],
      [6e9, 30],
    ],
  );
  const one = starts(range(1e9, 40, GAP_NS / 2));
  t.deepEqual(outlierWindows(one, Uint32Array.from(one.intendedNs.keys())), [], 'outliers every half gap: one spell');
});

test("each window gives its first cause that window; a cause only a window names is added after the run's own", (t) => {
  const c = starts([...range(2e9, 20, 0.1e9), ...range(6e9, 30, 0.05e9)]);
  const [a, b] = outlierWindows(c, Uint32Array.from(c.intendedNs.keys()));
  const merged = mergeWindowCauses(
    [cause('cpu-saturation', 0.8)],
    [
      { window: a, causes: [cause('data-retransmit', 0.9), cause('cpu-saturation', 0.4)] },
      { window: b, causes: [cause('cpu-saturation', 0.95)] },
    ],
    50,
  );
  t.deepEqual(
    merged.map((x) => [x.id, x.confidence, x.windows?.map((w) => [w.fromNs, w.outliers, w.share])]),
    [
      ['data-retransmit', 0.9, [[2e9, 20, 0.4]]],
      ['cpu-saturation', 0.8, [[6e9, 30, 0.6]]],
    ],
  );
});
