// The scaling knee of a numeric setting (concurrency = 100, 200, 300, 400):
// the first level where tail latency, or a CPU share, jumps out of line
// with the levels before it.
//
// The rule. For each level after the first, the value expected from the
// levels before it is their least-squares line evaluated at this level
// (with only one level before: that value scaled in proportion to the
// level, i.e. linear growth from zero), and never less than the largest
// value before it. A level is a knee when, for any metric:
//   - latency (p99, p99.9): value > 2 x expected and value - expected >= 1 ms;
//   - a CPU share (busy, system, softirq, steal; fractions of all CPUs):
//     value - expected >= 15 percentage points and value >= 1.5 x expected.
// Linear growth (closed-loop latency rising with the number of clients by
// Little's law, CPU rising with load) is "in line"; only a jump beyond it
// counts. The first such level is named; none when every level is in line.

export const KNEE_RULE =
  'a level is the knee when, against the least-squares line through the levels before it (one level before: growth in proportion to the level), ' +
  'p99 or p99.9 latency more than doubles and rises by at least 1 ms, or a CPU share (busy, system, softirq, steal) rises by at least 15 percentage points and 1.5 x; the first such level is named';

export type KneeMetricKind = 'latency' | 'share';

export interface KneeMetric {
  id: string;
  label: string;
  kind: KneeMetricKind;
}

export const KNEE_METRICS: KneeMetric[] = [
  { id: 'p99', label: 'p99', kind: 'latency' },
  { id: 'p999', label: 'p99.9', kind: 'latency' },
  { id: 'cpuBusy', label: 'CPU busy', kind: 'share' },
  { id: 'cpuSystem', label: 'system CPU', kind: 'share' },
  { id: 'cpuSoftirq', label: 'softirq CPU', kind: 'share' },
  { id: 'cpuSteal', label: 'steal CPU', kind: 'share' },
];

export interface KneeLevel {
  level: number;
  /** metric id -> value (latency in us, shares as fractions 0..1); null or absent: not measured. */
  values: Record<string, number | null | undefined>;
}

export interface KneeJump {
  metric: string;
  label: string;
  value: number;
  expected: number;
  previous: number;
}

export interface KneeResult {
  /** The knee's level, null when every level is in line. */
  level: number | null;
  /** Index of that level in the (sorted) input. */
  index: number | null;
  jumps: KneeJump[];
}

/** Least-squares line through (x, y) evaluated at x0. */
function lineAt(xs: number[], ys: number[], x0: number): number {
  const n = xs.length;
  const mx = xs.reduce((a, b) => a + b, 0) / n;
  const my = ys.reduce((a, b) => a + b, 0) / n;
  let sxy = 0;
  let sxx = 0;
  for (let i = 0; i < n; i++) {
    sxy += (xs[i] - mx) * (ys[i] - my);
    sxx += (xs[i] - mx) ** 2;
  }
  return sxx === 0 ? my : my + (sxy / sxx) * (x0 - mx);
}

/** What the levels before predict for level x0 (see the rule above); null with no level before. */
export function expectedAt(xs: number[], ys: number[], x0: number): number | null {
  if (xs.length === 0) return null;
  const prevMax = Math.max(...ys);
  if (xs.length === 1) return Math.max(prevMax, xs[0] > 0 && x0 > 0 ? (ys[0] * x0) / xs[0] : ys[0]);
  return Math.max(prevMax, lineAt(xs, ys, x0));
}

function jumps(kind: KneeMetricKind, value: number, expected: number): boolean {
  if (kind === 'latency') return value > 2 * expected && value - expected >= 1000;
  return value - expected >= 0.15 && value >= 1.5 * expected;
}

/** The first level out of line (levels are sorted by level here). */
export function findKnee(levels: KneeLevel[], metrics: KneeMetric[] = KNEE_METRICS): KneeResult {
  const sorted = [...levels].sort((a, b) => a.level - b.level);
  for (let i = 1; i < sorted.length; i++) {
    const found: KneeJump[] = [];
    for (const m of metrics) {
      const v = sorted[i].values[m.id];
      if (typeof v !== 'number' || !Number.isFinite(v)) continue;
      const xs: number[] = [];
      const ys: number[] = [];
      for (let j = 0; j < i; j++) {
        const y = sorted[j].values[m.id];
        if (typeof y === 'number' && Number.isFinite(y)) {
          xs.push(sorted[j].level);
          ys.push(y);
        }
      }
      const expected = expectedAt(xs, ys, sorted[i].level);
      if (expected === null) continue;
      if (jumps(m.kind, v, expected)) found.push({ metric: m.id, label: m.label, value: v, expected, previous: ys[ys.length - 1] });
    }
    if (found.length > 0) return { level: sorted[i].level, index: i, jumps: found };
  }
  return { level: null, index: null, jumps: [] };
}
