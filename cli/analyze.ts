import type { Command } from 'commander';
import { parseDurationNs } from '../lib/duration.ts';
import { ACCEPTED_COLUMNS, importLatencyLog } from '../analysis/latency-log.ts';
import { UserError } from '../lib/errors.ts';

export function register(program: Command): void {
  program
    .command('analyze')
    .description('rebuild summary.json and report.md of a run directory from its files alone')
    .argument('<dir>', 'run directory')
    .option('--outlier <d>', "outlier threshold, e.g. 100ms (default: the run's own)")
    .option('--json', 'print summary.json on stdout')
    .option('--redact', 'report.md without the host name or non-loopback addresses')
    .option('--latency-log <file>', `import your own client's latency log into a \`sockspike probe\` directory first (columns: ${ACCEPTED_COLUMNS.join(', ')})`)
    .option('--log-format <format>', 'format of --latency-log: csv (default: csv; see docs/run-directory.md)')
    .action(async (dir: string, o: { outlier?: string; json?: boolean; redact?: boolean; latencyLog?: string; logFormat?: string }) => {
      if (o.logFormat !== undefined && o.latencyLog === undefined) throw new UserError('--log-format only applies to --latency-log FILE');
      if (o.latencyLog !== undefined) {
        const r = importLatencyLog(dir, o.latencyLog, o.logFormat ?? 'csv');
        if (!o.json)
          process.stdout.write(`imported ${r.rows} transactions (${r.clock})${r.outsideProbe > 0 ? `; ${r.outsideProbe} outside the probe's time` : ''}\n`);
      }
      const outlierUs = o.outlier === undefined ? undefined : Math.round(parseDurationNs(o.outlier, '--outlier', 'ms') / 1e3);
      const { analyzeAndReport } = await import('./pipeline.ts');
      const summary = await analyzeAndReport(dir, { outlierUs, redact: o.redact === true });
      if (o.json) process.stdout.write(JSON.stringify(summary, null, 2) + '\n');
      else process.stdout.write(`report: ${dir}/report.md\n`);
    });
}
