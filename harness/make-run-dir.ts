import { accessSync, constants, existsSync, mkdirSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { UserError, errnoCode } from '../lib/errors.ts';
import { FILES, writeJson, type RunManifest } from '../lib/run-files.ts';

/** Create the run directory (default: runs/<timestamp>-<label>) or fail with one line. */
export function makeRunDir(out: string | undefined, label: string): string {
  const stamp = new Date().toISOString().replace(/[-:]/g, '').replace('T', '-').slice(0, 15);
  const dir = resolve(out ?? join('runs', `${stamp}-${label}`));
  // a second run on top of a first would mix their files
  if (existsSync(join(dir, FILES.manifest))) throw new UserError(`${dir} already holds a run (${FILES.manifest}): choose another --out`);
  try {
    makeDirs(dir);
    accessSync(dir, constants.W_OK);
  } catch (err) {
    throw new UserError(`cannot write the run directory ${dir} (${errnoCode(err) ?? String(err)}): choose another --out`);
  }
  return dir;
}

export const writeManifest = (dir: string, m: RunManifest): void => writeJson(join(dir, FILES.manifest), m);

/**
 * mkdir -p, one level at a time: Node 20's mkdirSync({recursive}) spins
 * forever on some paths (e.g. under /proc) instead of failing.
 */
export function makeDirs(dir: string): void {
  if (existsSync(dir)) return;
  const parent = dirname(dir);
  if (parent !== dir) makeDirs(parent);
  try {
    mkdirSync(dir);
  } catch (err) {
    if (errnoCode(err) !== 'EEXIST') throw err;
  }
}
