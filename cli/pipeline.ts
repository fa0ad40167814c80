import type { Summary } from '../lib/types.ts';

// The stages composed, in one place: a run directory (written by harness/ or
// by `sockspike probe`) is analysed (analysis/, summary.json) and then
// reported (reports/, report.md and pictures). `run`, `probe` and `analyze`
// all end here; the stages themselves never call one another. Loaded only
// when a command acts, so `--help` pays for none of it.

export interface AnalyzeOptions {
  /** Outlier threshold, µs (default: the run's own, or derived). */
  outlierUs?: number;
  /** report.md without host names or non-loopback addresses. */
  redact?: boolean;
  /** Told each stage as it begins ("analysing ...", "rendering ..."), for a terminal. */
  onStage?: (text: string) => void;
}

export async function analyzeAndReport(dir: string, opts: AnalyzeOptions = {}): Promise<Summary> {
  const [{ analyzeRun }, { writeReports }] = await Promise.all([import('../analysis/analyze-run.ts'), import('../reports/write-reports.ts')]);
  opts.onStage?.(`analysing ${dir} ...`);
  const summary = analyzeRun(dir, opts.outlierUs === undefined ? {} : { outlierUs: opts.outlierUs });
  opts.onStage?.('rendering the report and its pictures ...');
  await writeReports(dir, { redact: opts.redact === true });
  return summary;
}
