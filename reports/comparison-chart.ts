import type * as vegaLite from 'vega-lite';
import type { Comparison } from '../analysis/compare/variants.ts';
import { CHART_CONFIG } from './timeline-chart.ts';
import { formatUs } from '../lib/format.ts';

// The comparison picture (comparison.svg beside comparison.md): one row per
// variant; left, its p50, p99, p99.9 and max latency on a log scale, with the
// outlier threshold as a rule; right, its outlier rate. The baseline is
// marked in the row label. Same look as the run pictures (CHART_CONFIG).

export const COMPARISON_CHART_FILE = 'comparison.svg';

const STATS: [string, string][] = [
  ['p50', 'p50'],
  ['p99', 'p99'],
  ['p999', 'p99.9'],
  ['max', 'max'],
];
const COLORS = ['#9ab0c8', '#1f4e79', '#e4572e', '#111111'];
const WIDTH = 560;
const BAR_WIDTH = 220;

export const COMPARISON_AXIS = {
  latency: 'transaction latency (ms, log scale)',
  outliers: 'outliers, % of transactions',
  variant: 'variant',
} as const;

const ms = (us: number): number => Number((Math.max(us, 1) / 1e3).toPrecision(4));

/** The vega-lite spec of the comparison picture (pure). */
export function buildComparisonSpec(c: Comparison): vegaLite.TopLevelSpec {
  const label = (name: string): string => (name === c.baseline ? `${name} (baseline)` : name);
  const order = c.variants.map((v) => label(v.name));
  const points = c.variants.flatMap((v) =>
    STATS.map(([k, stat]) => ({ variant: label(v.name), stat, ms: ms(k === 'max' ? v.latencyUs.max : v.latencyUs[k as 'p50' | 'p99' | 'p999']) })),
  );
  const rates = c.variants.map((v) => ({ variant: label(v.name), pct: Number((100 * v.outlierRate).toPrecision(4)) }));
  const height = Math.max(60, 28 * c.variants.length);
  const y = { field: 'variant', type: 'nominal', sort: order, title: null, axis: { labelLimit: 320 } };
  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    title: {
      text: 'sockspike comparison',
      subtitle: `${c.variants.length} variants; outliers above ${formatUs(c.threshold.us)} (${c.threshold.how})`,
      anchor: 'start',
      fontSize: 15,
    },
    datasets: { points, rates, threshold: [{ ms: ms(c.threshold.us) }] },
    hconcat: [
      {
        width: WIDTH,
        height,
        layer: [
          {
            data: { name: 'points' },
            mark: { type: 'point', filled: true, size: 70 },
            encoding: {
              y,
              x: { field: 'ms', type: 'quantitative', title: COMPARISON_AXIS.latency, scale: { type: 'log' }, axis: { format: '~g', grid: true } },
              color: { field: 'stat', type: 'nominal', title: null, scale: { domain: STATS.map(([, s]) => s), range: COLORS }, legend: { orient: 'top' } },
              shape: { field: 'stat', type: 'nominal', scale: { domain: STATS.map(([, s]) => s), range: ['circle', 'diamond', 'square', 'cross'] } },
              tooltip: [{ field: 'variant' }, { field: 'stat' }, { field: 'ms', title: 'ms' }],
            },
          },
          { data: { name: 'threshold' }, mark: { type: 'rule', color: '#e4572e', strokeDash: [5, 3] }, encoding: { x: { field: 'ms', type: 'quantitative' } } },
        ],
      },
      {
        width: BAR_WIDTH,
        height,
        data: { name: 'rates' },
        mark: { type: 'bar', color: '#e4572e' },
        encoding: {
          y: { ...y, axis: null },
          x: { field: 'pct', type: 'quantitative', title: COMPARISON_AXIS.outliers },
          tooltip: [{ field: 'variant' }, { field: 'pct', title: '% outliers' }],
        },
      },
    ],
    config: CHART_CONFIG,
  } as unknown as vegaLite.TopLevelSpec;
}
