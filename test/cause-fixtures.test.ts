import test from 'ava';
import { cpSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, dirname, join } from 'node:path';
import { analyzeRun } from '../analysis/analyze-run.ts';
import { CATALOGUE } from '../analysis/causes/index.ts';
import { EXPECTED } from '../fixtures/make-cause-fixtures.ts';

// Run directories with a known answer (fixtures/causes/, written by
// fixtures/make-cause-fixtures.ts, and the recorded fixtures/runs/backlog1-rst):
// each puts its cause first with evidence; the clean run gets no cause.

test('every cause of the catalogue has a fixture', (t) => {
  const covered = new Set(EXPECTED.map((e) => e.cause));
  for (const mod of CATALOGUE) t.true(covered.has(mod.id), `no fixture for ${mod.id}`);
  t.true(covered.has(null), 'no clean fixture');
});

for (const e of EXPECTED) {
  test(`fixture ${basename(dirname(e.dir))}/${basename(e.dir)}: ${e.cause ?? 'no cause'}`, (t) => {
    const dir = join(mkdtempSync(join(tmpdir(), 'sockspike-cause-fixture-')), 'run');
    t.teardown(() => rmSync(dirname(dir), { recursive: true, force: true }));
    cpSync(e.dir, dir, { recursive: true });
    const causes = analyzeRun(dir).causes ?? [];
    if (e.cause === null) {
      t.deepEqual(causes, []);
      return;
    }
    t.true(causes.length > 0, 'no cause found');
    const first = causes[0];
    t.is(first.id, e.cause, JSON.stringify(causes.map((c) => [c.id, c.confidence])));
    t.true(first.confidence >= 0.5, `confidence ${first.confidence}`);
    t.true(first.evidence.length > 0, 'no evidence');
  });
}
