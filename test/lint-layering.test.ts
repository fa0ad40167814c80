import test from 'ava';
import { ESLint } from 'eslint';
import { join } from 'node:path';
import { ROOT } from './helpers/cli.ts';

// The layering rules of eslint.config.mjs: a stage importing a stage it may
// not (probes/ from harness/, analysis/ from reports/, lib/ from any) is a
// lint error that names the rule; the imports the layering allows are not.

const eslint = new ESLint({ cwd: ROOT });

async function importErrors(file: string, from: string): Promise<string[]> {
  const [r] = await eslint.lintText(`import { x } from '${from}';\nexport const y = x;\n`, { filePath: join(ROOT, file) });
  return r.messages.filter((m) => m.ruleId === 'no-restricted-imports').map((m) => m.message);
}

const cases: [string, string, boolean][] = [
  ['probes/bad.ts', '../harness/run.ts', false],
  ['probes/bad.ts', '../analysis/analyze-run.ts', false],
  ['lib/bad.ts', '../probes/read.ts', false],
  ['analysis/bad.ts', '../reports/run-report.ts', false],
  ['analysis/causes/bad.ts', '../../harness/run.ts', false],
  ['harness/bad.ts', '../analysis/analyze-run.ts', false],
  ['reports/bad.ts', '../cli/pipeline.ts', false],
  ['harness/ok.ts', '../probes/run-probes.ts', true],
  ['analysis/ok.ts', '../probes/read.ts', true],
  ['reports/ok.ts', '../analysis/read-run.ts', true],
  ['cli/ok.ts', '../harness/run.ts', true],
  ['probes/ok.ts', '../lib/native.ts', true],
];

for (const [file, from, allowed] of cases)
  test(`${file} importing ${from}: ${allowed ? 'allowed' : 'a lint error'}`, async (t) => {
    const errors = await importErrors(file, from);
    if (allowed) t.deepEqual(errors, []);
    else {
      t.is(errors.length, 1);
      t.regex(errors[0], /may not import .*: stages talk through the run directory/);
    }
  });
