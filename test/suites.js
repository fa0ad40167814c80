// npm test: three ava passes, one after the other (.ci/run counts them):
//   1. test/*.test.ts       tests that start no process, side by side (ava.config.mjs)
//   2. test/runs/           tests that start processes, one at a time (ava.runs.config.mjs)
//   3. test/e2e/            whole diagnoses, one at a time (ava.e2e.config.mjs)
// Arguments (e.g. --tap, a file filter) go to every pass; the exit code is
// the first failure's.
import { spawnSync } from 'node:child_process';

export const PASSES = ['ava.config.mjs', 'ava.runs.config.mjs', 'ava.e2e.config.mjs'];

const args = process.argv.slice(2);
const ava = (config) => spawnSync(process.execPath, ['node_modules/ava/entrypoints/cli.mjs', '--config', config, ...args], { stdio: 'inherit' }).status ?? 1;
let status = 0;
for (const config of PASSES) {
  const s = ava(config);
  if (status === 0) status = s;
}
process.exit(status);
