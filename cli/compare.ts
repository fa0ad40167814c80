import type { Command } from 'commander';
import { existsSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { Comparison, ComparisonRun } from '../analysis/compare/variants.ts';
import { UserError } from '../lib/errors.ts';
import { FILES } from '../lib/run-files.ts';
import { int } from '../harness/config.ts';
import { matrixRuns, readMatrix } from '../harness/matrix.ts';
import { COMPARISON_REPORT } from '../lib/run-files.ts';
import { formatUs } from '../lib/format.ts';

// sockspike compare DIR...: the comparison of existing run directories (or
// matrix directories), grouped into variants by how their configurations
// differ (or by the matrix's own variants).

export function register(program: Command): void {
  program
    .command('compare')
    .description('compare existing run directories (or matrix directories), grouped into variants by their configuration')
    .argument('<dirs...>', 'run directories and/or matrix directories')
    .option('--out <dir>', 'where to write comparison.md/.json/.svg (default: the matrix directory when given one, else comparisons/<timestamp>)')
    .option('--baseline <name>', "the variant the others are compared with, e.g. backlog=1 (default: the first directory's)")
    .option('--seed <s>', 'seed of the bootstrap', '1')
    .action(async (dirs: string[], o: { out?: string; baseline?: string; seed: string }) => {
      const seed = int(o.seed, '--seed', 0, 2 ** 31);
      const { runs, matrixDirs } = expandDirs(dirs);
      const stamp = new Date().toISOString().replace(/[-:]/g, '').replace('T', '-').slice(0, 15);
      const out = resolve(o.out ?? (matrixDirs.length === 1 && dirs.length === 1 ? matrixDirs[0] : join('comparisons', stamp)));
      // the analysis and the charts load when a comparison is made, not with every command
      const [{ compareRuns }, { writeComparison }] = await Promise.all([import('../analysis/compare/variants.ts'), import('../reports/comparison.ts')]);
      const comparison = compareRuns(runs, { baseline: o.baseline, seed });
      try {
        printVerdicts(await writeComparison(out, comparison), out);
      } catch (err) {
        if (err instanceof UserError) throw err;
        const code = (err as NodeJS.ErrnoException).code;
        if (code !== undefined) throw new UserError(`cannot write the comparison into ${out} (${code}): choose another --out`);
        throw err;
      }
    });
}

/** Run directories as given, and the finished runs of matrix directories (with their variants' settings). */
export function expandDirs(dirs: string[]): { runs: ComparisonRun[]; matrixDirs: string[] } {
  const runs: ComparisonRun[] = [];
  const matrixDirs: string[] = [];
  const seen = new Set<string>();
  for (const d of dirs) {
    const dir = resolve(d);
    if (!existsSync(dir) || !statSync(dir).isDirectory()) throw new UserError(`${d}: no such directory`);
    const m = readMatrix(dir);
    if (m !== null) {
      matrixDirs.push(dir);
      const finished = matrixRuns(dir, m);
      if (finished.length === 0) throw new UserError(`${d}: the matrix has no finished run`);
      for (const r of finished)
        if (!seen.has(r.dir)) {
          runs.push({ dir: r.dir, settings: r.settings });
          seen.add(r.dir);
        }
    } else if (existsSync(join(dir, FILES.manifest))) {
      if (!seen.has(dir)) {
        runs.push({ dir });
        seen.add(dir);
      }
    } else throw new UserError(`${d} is neither a run directory (no ${FILES.manifest}) nor a matrix directory (no matrix.json)`);
  }
  // settings from a matrix only name variants when every run has them
  if (!runs.every((r) => r.settings !== undefined)) for (const r of runs) delete r.settings;
  return { runs, matrixDirs };
}

/** The verdicts and where the comparison is, on stdout. */
export function printVerdicts(c: Comparison, out: string): void {
  const lines = [
    `baseline ${c.baseline}; outliers above ${formatUs(c.threshold.us)} (${c.threshold.how})`,
    ...c.verdicts.map((v) => `  ${v.text}`),
    ...c.knees.map((k) => `  scaling: ${k.text}`),
    `comparison: ${join(out, COMPARISON_REPORT)}`,
  ];
  process.stdout.write(lines.join('\n') + '\n');
}
