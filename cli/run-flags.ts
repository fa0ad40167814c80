import { Command, type Option } from 'commander';
import { UserError } from '../lib/errors.ts';
import { resolveConfig, type RunOptions } from '../harness/config.ts';
import type { FlagKind } from '../harness/matrix.ts';
import * as run from './run.ts';

// The flags of `sockspike run`, read from its own declaration (cli/run.ts),
// so `sockspike matrix` accepts exactly the run flags (a typo is an error)
// and follows when run gains a flag, without a second list to keep in step.

/** A fresh `run` command as cli/run.ts declares it, errors captured instead of printed. */
function freshRunCommand(): { cmd: Command; errors: string[] } {
  const errors: string[] = [];
  const program = new Command('sockspike')
    .exitOverride()
    .configureOutput({ writeErr: (s) => errors.push(s.trim()), writeOut: () => {}, outputError: (s) => errors.push(s.trim()) });
  run.register(program);
  const cmd = program.commands.find((c) => c.name() === 'run');
  if (!cmd) throw new Error('cli/run.ts did not register a run command');
  return { cmd, errors };
}

/** The run command's options. */
export function runOptions(): readonly Option[] {
  return freshRunCommand().cmd.options;
}

/** How run takes the flag --key (or --no-key); undefined when it has none. */
export function runFlagKind(options: readonly Option[]): (key: string) => FlagKind | undefined {
  return (key) => {
    for (const o of options) {
      if (o.long === `--${key}`) return o.required || o.optional ? 'value' : 'switch';
      if (o.negate && o.long === `--no-${key}`) return 'negated';
    }
    return undefined;
  };
}

/**
 * Check a run's flags as `sockspike run` would, without running anything:
 * unknown flags, bad choices, and every bound resolveConfig checks. Throws
 * a UserError naming the variant.
 */
export async function checkRunFlags(flags: string[], what: string): Promise<void> {
  const { cmd, errors } = freshRunCommand();
  let problem: string | null = null;
  cmd.action((o: RunOptions) => {
    try {
      resolveConfig(o);
    } catch (err) {
      if (err instanceof UserError) problem = err.message;
      else throw err;
    }
  });
  try {
    await cmd.parent!.parseAsync(['run', ...flags], { from: 'user' });
  } catch (err) {
    problem = errors.find((e) => e.length > 0)?.replace(/^error: /, '') ?? (err instanceof Error ? err.message : String(err));
  }
  if (problem !== null) throw new UserError(`${what}: ${problem}`);
}
