// A run directory damaged in every file, in several ways (truncated, bytes
// flipped, emptied, removed, JSON cut): `sockspike analyze` always ends
// with a report (exit 0) or with one line that names what is wrong (exit
// 2), never with a stack trace.
import test from 'ava';
import { cpSync, existsSync, readdirSync, readFileSync, rmSync, statSync, truncateSync, writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { prng } from '../../lib/prng.ts';
import { lines, sockspike, tempDir } from '../helpers/cli.ts';

type Damage = 'truncated' | 'flipped' | 'emptied' | 'removed' | 'json-cut';

function damage(file: string, how: Damage, rand: () => number): void {
  const size = statSync(file).size;
  if (how === 'removed') rmSync(file);
  else if (how === 'emptied') truncateSync(file, 0);
  else if (how === 'truncated') truncateSync(file, Math.floor(size * (0.2 + 0.6 * rand())));
  else if (how === 'json-cut') {
    const text = readFileSync(file, 'utf8');
    writeFileSync(file, text.slice(0, Math.floor(text.length / 2)));
  } else {
    // 16 bytes flipped, spread over the file, the header included
    const buf = readFileSync(file);
    for (let k = 0; k < 16 && buf.length > 0; k++) {
      const at = k === 0 ? Math.floor(rand() * Math.min(buf.length, 16)) : Math.floor(rand() * buf.length);
      buf[at] ^= 0xff;
    }
    writeFileSync(file, buf);
  }
}

/** Every file of a run directory, by path from it. */
function filesOf(dir: string): string[] {
  const out: string[] = [];
  const walk = (d: string): void => {
    for (const name of readdirSync(d)) {
      const p = join(d, name);
      if (statSync(p).isDirectory()) walk(p);
      else out.push(relative(dir, p));
    }
  };
  walk(dir);
  return out.sort();
}

// the files analyze reads; the rest (logs, pictures, the old report) are written or ignored
const READ = /^(run\.json|summary\.json|environment\.json|transactions.*\.bin|server\.bin|probes\/.*|events\/kernel-events\.(bin|ndjson))$/;

test('analyze of a run directory damaged in every file: a report or one line and exit 2, never a stack trace', async (t) => {
  t.timeout(600_000);
  const base = tempDir(t);
  const original = join(base, 'run');
  const r = await sockspike(['run', '--duration', '1.5s', '--concurrency', '2', '--no-progress', '--out', original]);
  t.is(r.exitCode, 0, String(r.stderr));
  const files = filesOf(original).filter((f) => READ.test(f));
  t.true(files.includes('run.json') && files.includes('environment.json') && files.includes('transactions.bin'), files.join(', '));
  t.true(
    files.some((f) => f.startsWith('probes/')),
    'the run has probe files to damage',
  );
  const rand = prng(20261129);
  const outcomes: string[] = [];
  const bad: string[] = [];
  let n = 0;
  for (const file of files) {
    const hows: Damage[] =
      file.endsWith('.json') || file.endsWith('.ndjson') ? ['json-cut', 'flipped', 'emptied', 'removed'] : ['truncated', 'flipped', 'emptied', 'removed'];
    for (const how of hows) {
      const copy = join(base, `d${n++}`);
      cpSync(original, copy, { recursive: true });
      rmSync(join(copy, 'report.md'), { force: true });
      damage(join(copy, file), how, rand);
      const a = await sockspike(['analyze', copy]);
      const err = lines(a.stderr);
      const what = `${file} ${how}: exit ${a.exitCode}${err.length > 0 ? `, ${err[0]}` : ''}`;
      outcomes.push(what);
      const ok = a.exitCode === 0 ? existsSync(join(copy, 'report.md')) : a.exitCode === 2 && err.length === 1 && /^sockspike: /.test(err[0] ?? '');
      if (!ok || String(a.stderr).includes('    at ')) bad.push(`${what}\n${String(a.stderr).trim()}`);
      rmSync(copy, { recursive: true, force: true });
    }
  }
  t.log(`${outcomes.length} damaged copies:\n${outcomes.join('\n')}`);
  // exit 0 with report.md, or exit 2 with one line "sockspike: ..."; never a stack trace
  t.deepEqual(bad, []);
});
