import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { decodeFromCompressedBase64 } from 'hdr-histogram-js';
import type * as vegaLite from 'vega-lite';
import { readSummaryIfAny } from '../lib/run-files.ts';
import type { Summary } from '../lib/types.ts';
import { CHART_CONFIG, renderSvg } from './timeline-chart.ts';
import { formatUs } from '../lib/format.ts';

// The report's latency distribution picture (latency.svg beside report.md):
// the classic HdrHistogram percentile plot of summary.json's hdr.total, with
// x = 1/(1-p) on a log scale (so 90%, 99%, 99.9%, ... are evenly spaced) and
// y = latency in ms on a log scale, plus a rule at the outlier threshold.

export const LATENCY_FILE = 'latency.svg';

export const LATENCY_AXIS = {
  percentile: 'percentile (log scale of 1/(1-p))',
  latency: 'transaction latency (ms, log scale)',
} as const;

/** Points per decade of 1/(1-p). */
const STEPS_PER_DECADE = 40;
const WIDTH = 800;
const HEIGHT = 380;

export interface LatencyPoint {
  /** 1/(1-p), p the quantile (0..1). */
  x: number;
  /** Percentile, 0..100. */
  pct: number;
  /** Latency at that percentile, ms (at least 1 us, for the log scale). */
  ms: number;
}

const ms = (us: number): number => Number((Math.max(us, 1) / 1e3).toPrecision(4));

/** The percentile curve of a histogram of microseconds; [] when it is empty. */
export function percentilePoints(h: { totalCount: number; getValueAtPercentile(p: number): number; maxValue: number }): LatencyPoint[] {
  const n = h.totalCount;
  if (!(n > 0)) return [];
  // 1/(1-p) runs from 1 (p = 0) to n (the last value's percentile): beyond that it is the max.
  const decades = Math.max(Math.log10(n), 1);
  const out: LatencyPoint[] = [];
  const steps = Math.ceil(decades * STEPS_PER_DECADE);
  for (let i = 0; i <= steps; i++) {
    const x = Math.min(10 ** (i / STEPS_PER_DECADE), Math.max(n, 10));
    const pct = 100 * (1 - 1 / x);
    out.push({ x: Number(x.toPrecision(6)), pct: Number(pct.toPrecision(8)), ms: ms(h.getValueAtPercentile(pct)) });
    if (x >= Math.max(n, 10)) break;
  }
  out.push({ x: Number(Math.max(n, 10).toPrecision(6)), pct: 100, ms: ms(h.maxValue) });
  return out;
}

/** The vega-lite spec of the percentile plot (pure). null when there is no successful transaction. */
export function buildLatencySpec(summary: Summary): vegaLite.TopLevelSpec | null {
  if (!summary.hdr?.total || !(summary.transactions?.ok > 0)) return null;
  const h = decodeFromCompressedBase64(summary.hdr.total, 32, false);
  try {
    const points = percentilePoints(h);
    if (points.length === 0) return null;
    const xMax = 10 ** Math.ceil(Math.log10(points[points.length - 1].x));
    const ticks = [1, 2];
    for (let v = 10; v <= xMax; v *= 10) ticks.push(v);
    const thresholdUs = summary.outliers?.thresholdUs;
    const hasThreshold = typeof thresholdUs === 'number' && Number.isFinite(thresholdUs) && thresholdUs > 0;
    const layers: object[] = [
      {
        data: { name: 'curve' },
        mark: { type: 'line', interpolate: 'step-after', color: '#1f4e79', strokeWidth: 1.6, point: { size: 10, filled: true, color: '#1f4e79' } },
        encoding: {
          x: {
            field: 'x',
            type: 'quantitative',
            title: LATENCY_AXIS.percentile,
            scale: { type: 'log', domain: [1, xMax], nice: false },
            axis: { values: ticks, labelExpr: "format(100 - 100 / datum.value, '.10~r') + '%'", grid: true },
          },
          y: { field: 'ms', type: 'quantitative', title: LATENCY_AXIS.latency, scale: { type: 'log' }, axis: { format: '~g', grid: true } },
          tooltip: [
            { field: 'pct', type: 'quantitative', title: 'percentile' },
            { field: 'ms', type: 'quantitative', title: 'ms' },
          ],
        },
      },
    ];
    const datasets: Record<string, object[]> = { curve: points };
    if (hasThreshold) {
      datasets.threshold = [{ ms: ms(thresholdUs), label: `outlier threshold ${formatUs(thresholdUs)}` }];
      layers.push(
        {
          data: { name: 'threshold' },
          mark: { type: 'rule', color: '#e4572e', strokeDash: [5, 3], strokeWidth: 1.3 },
          encoding: { y: { field: 'ms', type: 'quantitative' } },
        },
        {
          data: { name: 'threshold' },
          mark: { type: 'text', color: '#e4572e', align: 'left', baseline: 'bottom', dx: 4, dy: -2, fontSize: 12, x: 0 },
          encoding: { y: { field: 'ms', type: 'quantitative' }, text: { field: 'label' } },
        },
      );
    }
    const p = (q: number): string => formatUs(h.getValueAtPercentile(q));
    return {
      $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
      title: {
        text: 'sockspike latency distribution',
        subtitle: `${h.totalCount} successful transactions: p50 ${p(50)}, p99 ${p(99)}, p99.9 ${p(99.9)}, max ${formatUs(h.maxValue)}`,
        anchor: 'start',
        fontSize: 15,
      },
      datasets,
      width: WIDTH,
      height: HEIGHT,
      layer: layers,
      config: CHART_CONFIG,
    } as unknown as vegaLite.TopLevelSpec;
  } finally {
    h.destroy();
  }
}

/**
 * Write latency.svg into the run directory from summary.json's hdr.total;
 * returns its file name, or null when there is no summary or no successful
 * transaction.
 */
export async function writeLatencyChart(runDir: string): Promise<string | null> {
  const summary = readSummaryIfAny(runDir);
  if (summary === null) return null;
  const spec = buildLatencySpec(summary);
  if (!spec) return null;
  writeFileSync(join(runDir, LATENCY_FILE), await renderSvg(spec));
  return LATENCY_FILE;
}
