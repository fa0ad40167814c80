// npm test: the main suite, then the end-to-end diagnosis tests alone
// (ava.e2e.config.mjs). Arguments (e.g. --tap) go to both; the exit code is
// the first failure's.
import { spawnSync } from 'node:child_process';

const args = process.argv.slice(2);
const ava = (extra) => spawnSync(process.execPath, ['node_modules/ava/entrypoints/cli.mjs', ...extra, ...args], { stdio: 'inherit' }).status ?? 1;
const main = ava([]);
const e2e = ava(['--config', 'ava.e2e.config.mjs']);
process.exit(main !== 0 ? main : e2e);
