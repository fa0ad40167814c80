import { mkdirSync, writeFileSync } from 'node:fs';
import { isAbsolute, join, relative } from 'node:path';
import { formatMetric, METRICS, variantFlags, type Comparison } from '../analysis/compare/variants.ts';
import { formatCount, formatPercent, formatRate, formatShare, formatUs } from '../lib/format.ts';
import { COMPARISON_REPORT, writeJson } from '../lib/run-files.ts';
import { COMPARISON_CHART_FILE, buildComparisonSpec } from './comparison-chart.ts';
import { code, table } from './markdown.ts';
import { svgToPng } from './png.ts';
import { renderSvg } from './timeline-chart.ts';

// The comparison's files: comparison.json (for machines), comparison.svg
// and .png (the picture) and comparison.md (verdicts first, then the
// variants, the differences with their intervals, the knee, the method).

export const COMPARISON_FILES = { json: 'comparison.json', report: COMPARISON_REPORT, chart: COMPARISON_CHART_FILE } as const;

/** What a matrix adds to the report: how it ran. */
export interface MatrixContext {
  command: string;
  order: string;
  seed: number;
  repeat: number;
  schedule: { position: number; block: number; variant: string; rep: number; dir: string; exit: number | string | null; seconds: number }[];
  interrupted: boolean;
}

const share = (r: number | undefined): string => (r === undefined ? '-' : formatPercent(r, 1));

function fmtDelta(metric: string, v: number): string {
  const sign = v > 0 ? '+' : v < 0 ? '-' : '';
  const a = Math.abs(v);
  if (metric === 'outlierRate') return `${sign}${(100 * a).toPrecision(3)} pp`;
  if (metric === 'tps') return `${sign}${formatRate(a)}`;
  return `${sign}${formatUs(a)}`;
}

export function renderComparison(c: Comparison, matrix: MatrixContext | null = null, picture: string | null = null): string {
  const out: string[] = [];
  out.push('# sockspike comparison', '');
  const anySig = c.verdicts.some((v) => v.significant);
  out.push(
    anySig
      ? `**Against the baseline \`${c.baseline}\`:**`
      : c.method.fewRepetitions !== null && c.variants.some((v) => v.runs.length < 2)
        ? `**No difference from the baseline \`${c.baseline}\` can be shown with a single run per variant.**`
        : `**No detectable difference between any variant and the baseline \`${c.baseline}\`.**`,
    '',
  );
  for (const v of c.verdicts) out.push(`- ${v.significant ? '**' : ''}${v.text}${v.significant ? '**' : ''}`);
  out.push('');
  out.push(`Outliers: transactions above ${formatUs(c.threshold.us)}, one threshold for every variant (${c.threshold.how}).`);
  if (c.method.fewRepetitions) out.push('', `Few repetitions: ${c.method.fewRepetitions}.`);
  for (const k of c.knees) out.push('', `Scaling: ${k.text}.`);
  for (const n of c.notes) out.push('', `Note: ${n}.`);
  out.push('');
  if (picture) out.push(`![p50, p99, p99.9 and max latency and outlier rate per variant](${picture})`, '');

  out.push('## Variants', '');
  out.push(
    table(
      ['variant', 'runs', 'transactions', 'throughput', 'p50', 'p99', 'p99.9', 'max', 'outliers', 'top cause'],
      c.variants.map((v) => [
        v.name === c.baseline ? `${v.name} (baseline)` : v.name,
        v.runs.length,
        formatCount(v.transactions),
        formatRate(v.tps),
        formatUs(v.latencyUs.p50),
        formatUs(v.latencyUs.p99),
        formatUs(v.latencyUs.p999),
        formatUs(v.latencyUs.max),
        `${formatShare(v.outlierRate)} (${formatCount(v.outliers)})`,
        v.topCause ?? 'none',
      ]),
      ['l', 'r', 'r', 'r', 'r', 'r', 'r', 'r', 'r', 'l'],
    ),
    '',
  );
  if (c.variants.some((v) => v.cpu !== null)) {
    out.push('CPU during the workload (mean of the probe samples, % of all CPUs):', '');
    out.push(
      table(
        ['variant', 'busy', 'user', 'system', 'softirq', 'irq', 'steal'],
        c.variants.map((v) => [
          v.name,
          share(v.cpu?.busy),
          share(v.cpu?.user),
          share(v.cpu?.system),
          share(v.cpu?.softirq),
          share(v.cpu?.irq),
          share(v.cpu?.steal),
        ]),
      ),
      '',
    );
  }
  const mixed = c.variants.filter((v) => new Set(v.runCauses).size > 1);
  for (const v of mixed) out.push(`Top cause per run of ${v.name}: ${v.runCauses.map((x) => x ?? 'none').join(', ')}.`, '');

  out.push('## Differences against the baseline', '');
  out.push(
    table(
      ['variant', 'metric', 'baseline', 'variant value', 'difference', '95 % interval', 'p', 'significant'],
      c.differences.map((d) => [
        d.variant,
        METRICS.find((m) => m.id === d.metric)!.label,
        formatMetric(d.metric, d.baselineValue),
        formatMetric(d.metric, d.value),
        fmtDelta(d.metric, d.delta),
        d.ci === null ? 'n/a (one run)' : `${fmtDelta(d.metric, d.ci[0])} .. ${fmtDelta(d.metric, d.ci[1])}`,
        d.pValue < 0.001 ? '< 0.001' : d.pValue.toPrecision(2),
        d.significant ? 'yes' : 'no',
      ]),
      ['l', 'l', 'r', 'r', 'r', 'r', 'r', 'l'],
    ),
    '',
  );
  out.push(`Method: ${c.method.text}.`, '');

  if (c.knees.length > 0) {
    out.push('## Scaling knee', '');
    out.push(`Rule: ${c.kneeRule}.`, '');
    for (const k of c.knees) {
      out.push(`${k.text}.`, '');
      out.push(
        table(
          [k.key, 'p99', 'p99.9', 'CPU busy', 'system', 'softirq', 'steal'],
          k.levels.map((l) => [
            String(l.level) + (k.knee?.level === l.level ? ' (knee)' : ''),
            formatUs(l.p99),
            formatUs(l.p999),
            share(l.cpu?.busy),
            share(l.cpu?.system),
            share(l.cpu?.softirq),
            share(l.cpu?.steal),
          ]),
        ),
        '',
      );
    }
  }

  if (matrix) {
    out.push('## How the matrix ran', '');
    out.push(code(matrix.command, 'sh'), '');
    out.push(
      `${matrix.repeat} repetition${matrix.repeat === 1 ? '' : 's'} of ${c.variants.length} variants, order ${matrix.order}` +
        (matrix.order === 'random' ? ` (shuffled in each repetition block, seed ${matrix.seed})` : ' (the same order in each repetition block)') +
        (matrix.interrupted ? '; interrupted before the end: the comparison covers the runs that finished' : '') +
        '.',
      '',
    );
    out.push(
      table(
        ['#', 'block', 'variant', 'run', 'exit', 'seconds'],
        matrix.schedule.map((s) => [s.position, s.block, s.variant, s.dir, String(s.exit ?? 'not run'), s.seconds.toFixed(1)]),
        ['r', 'r', 'l', 'l', 'r', 'r'],
      ),
      '',
    );
  }

  out.push('## Runs', '');
  for (const v of c.variants) out.push(`- ${v.name} (\`${variantFlags(v.settings)}\`): ${v.runs.map((r) => `[${r}](${r}/report.md)`).join(', ')}`);
  out.push('');
  return out.join('\n');
}

/** Write comparison.json, comparison.svg (+ .png) and comparison.md into outDir; run paths become relative to it. */
export async function writeComparison(outDir: string, comparison: Comparison, matrix: MatrixContext | null = null): Promise<Comparison> {
  mkdirSync(outDir, { recursive: true });
  const rel = (p: string): string => {
    const r = relative(outDir, p);
    return r === '' ? '.' : isAbsolute(r) ? p : r;
  };
  const c: Comparison = {
    ...comparison,
    variants: comparison.variants.map((v) => ({ ...v, runs: v.runs.map(rel) })),
  };
  writeJson(join(outDir, COMPARISON_FILES.json), c);
  let picture: string | null = null;
  try {
    writeFileSync(join(outDir, COMPARISON_FILES.chart), await renderSvg(buildComparisonSpec(c)));
    picture = COMPARISON_FILES.chart;
    svgToPng(join(outDir, COMPARISON_FILES.chart));
  } catch (err) {
    c.notes.push(`the picture could not be drawn: ${err instanceof Error ? err.message : String(err)}`);
  }
  writeFileSync(join(outDir, COMPARISON_FILES.report), renderComparison(c, matrix, picture));
  return c;
}
