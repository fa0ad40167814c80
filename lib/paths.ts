// Where the package is, and how to start one of its modules in a child
// process, whether this code runs compiled (dist/, the shipped JavaScript)
// or from its TypeScript sources (tests and development, through tsx).
import { basename, dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));

/** True when this process runs the compiled JavaScript in dist/. */
export const COMPILED = basename(dirname(here)) === 'dist';

/** The package's root directory (where package.json is). */
export const ROOT = COMPILED ? resolve(here, '../..') : resolve(here, '..');

/** A file shipped as is (not compiled), by its path from the root: 'fixtures/servers/x.py'. */
export const packageFile = (relPath: string): string => join(ROOT, relPath);

/** The runnable file of a module, by its source path from the root: 'harness/workload/client.ts'. */
export const moduleFile = (sourcePath: string): string => (COMPILED ? join(ROOT, 'dist', sourcePath.replace(/\.ts$/, '.js')) : join(ROOT, sourcePath));

/** Node's flags for a child that runs moduleFile(...): tsx only when running from sources. */
export const moduleExecArgv = (): string[] => (COMPILED ? [] : [`--import=${import.meta.resolve('tsx')}`]);
