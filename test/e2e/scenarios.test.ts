// Every named scenario, briefly, each in a namespace of its own: the
// analysis names the cause it reproduces first; the clean baseline gets
// none. Serial: several at once would share two CPUs and muddy each other.
import test from 'ava';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { readManifestFile, readSummaryFile, sockspike, tempDir } from '../helpers/cli.ts';
import { guardHost } from '../helpers/host-state.ts';
import { SCENARIOS } from '../../harness/scenarios.ts';

const why = guardHost(test, 'scenarios');

// shorter than the presets where a few seconds already show the cause
const DURATION: Record<string, string> = {
  'reported-case': '4s',
  'reported-case-python': '4s',
  'accept-queue-overflow': '4s',
  'abort-on-overflow': '3s',
  'syn-loss': '4s',
  'data-retransmit': '4s',
  'nagle-delayed-ack': '3s',
  'nagle-several-exchanges': '3s',
  'port-exhaustion': '3s',
  'abortive-close': '2s',
  'cpu-saturation': '6s',
  'slow-server': '4s',
  'two-spells': '8s',
  clean: '3s',
};

for (const sc of SCENARIOS) {
  if (why !== null) break;
  // the reported case's single client rarely overflows backlog 1 on a current kernel: with 4 clients it does
  const extra = sc.name.startsWith('reported-case') ? ['--concurrency', '4'] : [];
  test.serial(`scenario ${sc.name}: ${sc.cause === null ? 'no cause' : `names ${sc.cause} first`}`, async (t) => {
    const out = join(tempDir(t), 'run');
    const r = await sockspike(['run', '--scenario', sc.name, '--duration', DURATION[sc.name] ?? '4s', ...extra, '--out', out], { timeout: 120_000 });
    t.is(r.exitCode, 0, String(r.stderr));
    const s = readSummaryFile(out);
    const m = readManifestFile(out);
    t.is(m.config.scenario, sc.name);
    t.truthy(m.kernel?.netns);
    const ranked = (s.causes ?? []).map((c) => `${c.id} ${c.confidence}`).join(', ');
    t.log(
      `${s.transactions.attempted} transactions, ${s.outliers.count} outliers, errors ${JSON.stringify(s.transactions.errors)}; causes: ${ranked || 'none'}`,
    );
    if (sc.cause === null) {
      t.deepEqual(s.causes, []);
      t.regex(readFileSync(join(out, 'report.md'), 'utf8'), /nothing unusual seen/);
    } else {
      // a scenario with causes in separate spells: each named, with its spell, and one of them first
      const expected = [sc.cause, ...(sc.also ?? [])];
      t.true(expected.includes(s.causes?.[0]?.id ?? ''), ranked);
      for (const id of expected)
        t.truthy(
          s.causes?.find((c) => c.id === id),
          `${id} not named: ${ranked}`,
        );
      if (expected.length > 1) for (const id of expected) t.true((s.causes?.find((c) => c.id === id)?.windows?.length ?? 0) > 0, `${id} has no spell`);
    }
  });
}

test.serial('--scenario: flags on the command line override the preset; an unknown name is one line', async (t) => {
  if (why !== null) return t.pass();
  const dir = tempDir(t);
  const r = await sockspike(['run', '--scenario', 'clean', '--duration', '1', '--concurrency', '2', '--out', join(dir, 'a')]);
  t.is(r.exitCode, 0, String(r.stderr));
  const cfg = readManifestFile(join(dir, 'a')).config;
  t.is(cfg.concurrency, 2);
  t.is(cfg.outlierUs, 100_000, 'the rest comes from the preset');
  const bad = await sockspike(['run', '--scenario', 'nope']);
  t.is(bad.exitCode, 2);
  t.regex(String(bad.stderr), /^sockspike: --scenario: unknown scenario "nope" \(one of reported-case, /);
  const list = await sockspike(['scenarios']);
  t.is(list.exitCode, 0);
  for (const s of SCENARIOS) t.true(String(list.stdout).includes(`sockspike run --scenario ${s.name}`));
});
