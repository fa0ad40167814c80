// The native reference (bench/native/ref.c): compiled with gcc into the
// git-ignored bench/native/build/ when missing or older than its source.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, statSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { UserError } from '../lib/errors.ts';

export const REF_SOURCE = fileURLToPath(new URL('./native/ref.c', import.meta.url));
export const REF_BINARY = fileURLToPath(new URL('./native/build/ref', import.meta.url));

/** Path of the compiled reference; builds it first if needed. */
export function buildNativeRef(): string {
  if (existsSync(REF_BINARY) && statSync(REF_BINARY).mtimeMs >= statSync(REF_SOURCE).mtimeMs) return REF_BINARY;
  mkdirSync(fileURLToPath(new URL('./native/build/', import.meta.url)), { recursive: true });
  const cc = process.env.CC ?? 'gcc';
  const r = spawnSync(cc, ['-O2', '-Wall', '-o', REF_BINARY, REF_SOURCE], { encoding: 'utf8' });
  if (r.error !== undefined)
    throw new UserError(
      `the benchmark's native reference needs a C compiler: ${cc} (${(r.error as NodeJS.ErrnoException).code ?? r.error.message}); apt-get install gcc`,
    );
  if (r.status !== 0) throw new UserError(`${cc} could not build ${REF_SOURCE}: ${r.stderr.trim().split('\n')[0]}`);
  return REF_BINARY;
}
