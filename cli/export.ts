import { createWriteStream } from 'node:fs';
import { finished } from 'node:stream/promises';
import { Option, type Command } from 'commander';
import { UserError } from '../lib/errors.ts';
import type { ExportFormat } from '../reports/export.ts';

export function register(program: Command): void {
  program
    .command('export')
    .description('write the records of a run directory as CSV or NDJSON')
    .argument('<dir>', 'run directory')
    .addOption(new Option('--what <records>', 'which records').choices(['transactions', 'server', 'probes']).default('transactions'))
    .addOption(new Option('--format <format>', 'output format').choices(['csv', 'ndjson']).default('csv'))
    .option('--output <file>', 'write to a file instead of stdout')
    .action(async (dir: string, o: { what: string; format: ExportFormat; output?: string }) => {
      const [{ readManifest, readServer, readTransactions }, { exportProbes }, { exportServer, exportTransactions }] = await Promise.all([
        import('../analysis/read-run.ts'),
        import('../probes/export.ts'),
        import('../reports/export.ts'),
      ]);
      const m = readManifest(dir);
      const out = o.output === undefined ? process.stdout : createWriteStream(o.output);
      if (o.what === 'probes') await exportProbes(dir, out, { format: o.format });
      else if (o.what === 'server') {
        const s = readServer(dir, m);
        if (s === null) throw new UserError(`${dir} has no server records (the run used no built-in server)`);
        await exportServer(out, o.format, s);
      } else await exportTransactions(out, o.format, readTransactions(dir, m), m.config);
      if (out !== process.stdout) {
        out.end();
        await finished(out);
      }
    });
}
