import type { Command } from 'commander';
import { restoreLeftovers } from '../harness/kernel/restore.ts';

// sockspike restore: undo what a crashed or killed run left changed.

export function register(program: Command): void {
  program
    .command('restore')
    .description('put back host sysctls and delete network namespaces that a crashed or killed run left behind (from its journal)')
    .action(async () => {
      const r = await restoreLeftovers();
      for (const line of [...r.done, ...r.left]) process.stdout.write(line + '\n');
      for (const line of r.failed) process.stderr.write(`sockspike: ${line}\n`);
      if (r.done.length === 0 && r.left.length === 0 && r.failed.length === 0)
        process.stdout.write('nothing to restore: no journal of a run that ended without cleaning up\n');
      if (r.failed.length > 0) process.exitCode = 1;
    });
}
