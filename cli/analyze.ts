import type { Command } from 'commander';
import { parseDurationNs } from '../lib/duration.ts';
import { analyzeRun } from '../analysis/analyze-run.ts';
import { writeReports } from '../reports/write-reports.ts';

export function register(program: Command): void {
  program
    .command('analyze')
    .description('rebuild summary.json and report.md of a run directory from its files alone')
    .argument('<dir>', 'run directory')
    .option('--outlier <d>', 'outlier threshold, e.g. 100ms (default: the run\'s own)')
    .option('--json', 'print summary.json on stdout')
    .option('--redact', 'report.md without the host name or non-loopback addresses')
    .action(async (dir: string, o: { outlier?: string; json?: boolean; redact?: boolean }) => {
      const outlierUs = o.outlier === undefined ? undefined : Math.round(parseDurationNs(o.outlier, '--outlier', 'ms') / 1e3);
      const summary = analyzeRun(dir, { outlierUs });
      await writeReports(dir, { redact: o.redact === true });
      if (o.json) process.stdout.write(JSON.stringify(summary, null, 2) + '\n');
      else process.stdout.write(`report: ${dir}/report.md\n`);
    });
}
