import { Command, Option } from 'commander';
import { existsSync, readdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { UserError } from '../lib/errors.ts';
import { signalExitCode } from '../lib/signals.ts';
import { shellJoin } from '../lib/shell.ts';
import { makeDirs } from '../harness/make-run-dir.ts';
import { MATRIX_FORMAT, MATRIX_VERSION, matrixRuns, parseVary, runMatrix, scheduleOf, variantsOf, type MatrixManifest } from '../harness/matrix.ts';
import { int } from '../harness/config.ts';
import { checkRunFlags, runFlagKind, runOptions } from './run-flags.ts';
import { printVerdicts } from './compare.ts';

// sockspike matrix: runs every combination of the --vary values, --repeat
// times each, as normal run directories under DIR/runs/, then writes the
// comparison into DIR. Every other flag is a run flag, passed to each run.

/** The matrix's own flags (all take a value); every other flag goes to the runs. */
const OWN = ['--vary', '--repeat', '--order', '--seed', '--baseline', '--out'];

export function register(program: Command): void {
  const cmd = program
    .command('matrix')
    .description('run every combination of the --vary values --repeat times (each a normal run) and compare them')
    .option('--vary <key=values>', 'a run flag (without dashes) or sysctl.KEY, and its values, e.g. backlog=1,128 (repeatable)', collect, [])
    .option('--repeat <n>', 'runs of each variant', '3')
    .addOption(
      new Option('--order <how>', 'random: shuffled in each repetition block (seeded); interleaved: the same order in each block')
        .choices(['random', 'interleaved'])
        .default('random'),
    )
    .option('--seed <s>', "seed of the run order and of the comparison's bootstrap (the runs' own --seed can be set with --vary seed=N)", '1')
    .option('--baseline <name>', 'the variant the others are compared with, e.g. backlog=1 (default: the first values of each --vary)')
    .option('--out <dir>', 'matrix directory (default: runs/matrix-<timestamp>)');
  // every flag of `sockspike run`, so a typo is refused here rather than in the tenth run
  for (const o of runOptions()) if (o.long !== undefined && !OWN.includes(o.long) && o.long !== '--json') cmd.addOption(o);
  cmd.action(
    async (o: { vary: string[]; repeat: string; order: 'random' | 'interleaved'; seed: string; baseline?: string; out?: string; progress?: boolean }) => {
      const args = process.argv.slice(process.argv.indexOf('matrix') + 1);
      const code = await matrixCommand(o, args);
      process.exitCode = code;
    },
  );
}

const collect = (v: string, acc: string[]): string[] => [...acc, v];

/** The run flags among the matrix's arguments: everything but the matrix's own flags and their values. */
export function runFlagsOf(args: string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const a = args[i];
    const own = OWN.find((f) => a === f || a.startsWith(`${f}=`));
    if (own === undefined) out.push(a);
    else if (a === own) i++;
  }
  return out;
}

async function matrixCommand(
  o: { vary: string[]; repeat: string; order: 'random' | 'interleaved'; seed: string; baseline?: string; out?: string; progress?: boolean },
  args: string[],
): Promise<number> {
  const kind = runFlagKind(runOptions());
  if (o.vary.length === 0) throw new UserError('matrix needs at least one --vary KEY=V1,V2 (e.g. --vary backlog=1,128)');
  const vary = parseVary(o.vary, kind);
  const repeat = int(o.repeat, '--repeat', 1, 1000);
  const seed = int(o.seed, '--seed', 0, 2 ** 31);
  const runFlags = runFlagsOf(args);
  for (const v of vary) {
    if (v.key.startsWith('sysctl.')) {
      const k = v.key.slice(7);
      const fixed = runFlags.some((a, i) => (a === '--sysctl' && runFlags[i + 1]?.startsWith(`${k}=`)) || a.startsWith(`--sysctl=${k}=`));
      if (fixed) throw new UserError(`--sysctl ${k} is given both as a run flag and in --vary ${v.key}: give it once`);
    }
    const flag = v.key.startsWith('sysctl.') ? null : `--${v.key}`;
    if (flag !== null && runFlags.some((a) => a === flag || a.startsWith(`${flag}=`) || a === `--no-${v.key}`))
      throw new UserError(`${flag} is given both as a run flag and in --vary ${v.key}: give it once`);
  }
  const variants = variantsOf(vary, kind);
  if (variants.length < 2) throw new UserError('the --vary values make a single variant: nothing to compare (give at least two values)');
  if (variants.length * repeat > 10_000) throw new UserError(`${variants.length} variants x ${repeat} repetitions is too many runs (at most 10000)`);
  const baseline = o.baseline ?? variants[0].name;
  if (!variants.some((v) => v.name === baseline))
    throw new UserError(`--baseline ${baseline}: no such variant (variants: ${variants.map((v) => v.name).join('; ')})`);
  // every variant's flags, checked before the first run starts
  for (const v of variants) await checkRunFlags([...runFlags, ...v.flags], `variant ${v.name}`);

  const stamp = new Date().toISOString().replace(/[-:]/g, '').replace('T', '-').slice(0, 15);
  const dir = resolve(o.out ?? join('runs', `matrix-${stamp}`));
  if (existsSync(dir) && readdirSync(dir).length > 0) throw new UserError(`${dir} is not empty: choose another --out`);
  try {
    makeDirs(dir);
  } catch (err) {
    throw new UserError(`cannot create the matrix directory ${dir} (${err instanceof Error ? err.message : String(err)}): choose another --out`);
  }
  const manifest: MatrixManifest = {
    format: MATRIX_FORMAT,
    version: MATRIX_VERSION,
    command: shellJoin(['sockspike', 'matrix', ...args]),
    vary,
    repeat,
    order: o.order,
    seed,
    baseline,
    runFlags,
    variants,
    schedule: scheduleOf(variants, repeat, o.order, seed),
    status: 'running',
  };
  const { signal } = await runMatrix({ dir, manifest, progress: o.progress !== false });
  // the run that a Ctrl-C stopped was interrupted, not failed
  const failed = manifest.schedule.filter((s) => s.exit !== null && s.exit !== 0 && s.interrupted !== true);
  for (const s of failed) process.stderr.write(`sockspike: run ${s.dir} (${s.variant}) failed: ${s.error ?? `exit ${String(s.exit)}`}\n`);
  const runs = matrixRuns(dir, manifest);
  const withRuns = new Set(runs.map((r) => r.variant));
  const code = signal !== null ? signalExitCode(signal) : failed.length > 0 ? 1 : 0;
  if (withRuns.size < 2 || !withRuns.has(baseline)) {
    process.stderr.write(`sockspike: no comparison: the baseline and at least one other variant need a finished run (matrix: ${dir}/matrix.json)\n`);
    return code === 0 ? 1 : code;
  }
  const notes =
    failed.length > 0 ? [`${failed.length} run${failed.length === 1 ? '' : 's'} failed and are left out: ${failed.map((s) => s.dir).join(', ')}`] : [];
  if (signal !== null) notes.push(`the matrix was interrupted (${signal}) after ${runs.length} of ${manifest.schedule.length} runs`);
  const [{ compareRuns }, { writeComparison }] = await Promise.all([import('../analysis/compare/variants.ts'), import('../reports/comparison.ts')]);
  const comparison = await writeComparison(
    dir,
    compareRuns(
      runs.map((r) => ({ dir: r.dir, settings: r.settings })),
      { baseline, seed, notes },
    ),
    {
      command: manifest.command,
      order: manifest.order,
      seed,
      repeat,
      schedule: manifest.schedule.map((s) => ({
        position: s.position,
        block: s.block,
        variant: s.variant,
        rep: s.rep,
        dir: s.dir,
        exit: s.exit,
        seconds: s.seconds,
      })),
      interrupted: signal !== null,
    },
  );
  printVerdicts(comparison, dir);
  return code;
}
