// sockspike command line: one module per subcommand, each exporting
// register(program). User errors print one line and exit 2.
import { Command, CommanderError } from 'commander';
import { UserError } from '../lib/errors.ts';
import { TOOL_VERSION } from '../lib/run-files.ts';
import * as analyze from './analyze.ts';
import * as compare from './compare.ts';
import * as exportCmd from './export.ts';
import * as matrix from './matrix.ts';
import * as probe from './probe.ts';
import * as restore from './restore.ts';
import * as run from './run.ts';
import * as scenarios from './scenarios.ts';

// `sockspike export ... | head` closes the pipe early: that is not an error
process.stdout.on('error', (err: NodeJS.ErrnoException) => {
  if (err.code === 'EPIPE') process.exit(0);
  throw err;
});

const program = new Command('sockspike')
  .description('Reproduce, measure and explain TCP connection-per-transaction latency spikes')
  .version(TOOL_VERSION)
  .showHelpAfterError(false)
  .exitOverride()
  .configureOutput({ outputError: (str, write) => write(str.replace(/^error: /, 'sockspike: ')) });

const commands: Array<{ register: (p: Command) => void }> = [run, scenarios, matrix, compare, analyze, exportCmd, probe, restore];
for (const c of commands) c.register(program);

try {
  await program.parseAsync(process.argv);
  // done: leave now rather than wait on a probe's stray timer (stdout and
  // stderr are synchronous for files, pipes and terminals on Linux)
  process.exit(process.exitCode ?? 0);
} catch (err) {
  if (err instanceof CommanderError) {
    // help and version exit 0; parse errors were already printed by commander
    process.exit(err.exitCode === 0 ? 0 : 2);
  }
  if (err instanceof UserError) {
    process.stderr.write(`sockspike: ${err.message}\n`);
    process.exit(err.exitCode);
  }
  throw err;
}
