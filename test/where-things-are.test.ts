import test from 'ava';
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';

// docs/where-things-are.md lists every source file of the stages and lib/,
// and nothing that no longer exists, so the map cannot drift from the tree.
const doc = readFileSync('docs/where-things-are.md', 'utf8');
const listed = new Set([...doc.matchAll(/^\| `([^`]+\.(?:ts|cjs))` \|/gm)].map((m) => m[1]));
const sources = execFileSync('git', ['ls-files', 'cli', 'harness', 'probes', 'analysis', 'reports', 'lib'], { encoding: 'utf8' })
  .split('\n')
  .filter((f) => /\.(ts|cjs)$/.test(f));

test('every source file is in docs/where-things-are.md', (t) => {
  t.true(sources.length > 50);
  t.deepEqual(
    sources.filter((f) => !listed.has(f)),
    [],
  );
});

test('docs/where-things-are.md names no file that is gone', (t) => {
  const present = new Set(sources);
  t.deepEqual(
    [...listed].filter((f) => !present.has(f)),
    [],
  );
});
