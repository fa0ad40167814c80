import test from 'ava';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Comparison } from '../../analysis/compare/variants.ts';
import type { MatrixManifest } from '../../harness/matrix.ts';
import { makeSyntheticRun } from '../../bench/synthetic-run.ts';
import { lines, readManifestFile, sockspike, tempDir } from '../helpers/cli.ts';

// sockspike matrix and compare end to end: real runs on loopback as child
// processes, then the comparison of their run directories. Backlog 1 with a
// slow accept loop overflows the accept queue: connect() waits for the 1 s
// SYN retransmission (--connect-timeout 1500ms bounds the later, longer
// ones). The 500 ms threshold keeps event-loop stalls of a loaded machine
// out of the count.

const readJson = <T>(path: string): T => JSON.parse(readFileSync(path, 'utf8')) as T;

test('backlog 1 vs 128 under a slow accept loop: the comparison finds the 1 s connect stalls gone, significantly', async (t) => {
  t.timeout(300_000);
  const dir = join(tempDir(t), 'mx');
  const r = await sockspike(
    [
      'matrix',
      '--vary',
      'backlog=1,128',
      '--repeat',
      '3',
      '--duration',
      '3s',
      '--accept-delay',
      '1ms',
      '--concurrency',
      '8',
      '--outlier',
      '500ms',
      '--connect-timeout',
      '1500ms',
      '--no-probes',
      '--out',
      dir,
    ],
    { timeout: 300_000 },
  );
  t.is(r.exitCode, 0, String(r.stderr));
  const m = readJson<MatrixManifest>(join(dir, 'matrix.json'));
  t.is(m.status, 'complete');
  t.is(m.schedule.length, 6);
  for (const b of [1, 2, 3])
    t.deepEqual(
      m.schedule
        .filter((s) => s.block === b)
        .map((s) => s.variant)
        .sort(),
      ['backlog=1', 'backlog=128'],
      'every block holds every variant once',
    );
  for (const s of m.schedule) {
    t.is(s.exit, 0);
    const run = readManifestFile(join(dir, s.dir));
    t.is(run.config.backlog, s.variant === 'backlog=1' ? 1 : 128, 'the vary value reached the run');
    t.is(run.config.acceptDelayNs, 1e6, 'the run flags reached the run');
    t.false(existsSync(join(dir, s.dir, 'probes', 'meta.json')), '--no-probes too');
  }
  const c = readJson<Comparison>(join(dir, 'comparison.json'));
  t.is(c.baseline, 'backlog=1');
  t.deepEqual(
    c.variants.map((v) => v.name),
    ['backlog=1', 'backlog=128'],
  );
  t.is(c.threshold.us, 500_000, 'above the stalls of a loaded machine, below the 1 s SYN retransmission');
  const [b1, b128] = c.variants;
  t.is(b1.runs.length, 3);
  t.true(b1.outlierRate > 0, 'backlog 1 stalls');
  t.true(b128.outlierRate < b1.outlierRate);
  const d = c.differences.filter((x) => x.variant === 'backlog=128');
  t.deepEqual(d.map((x) => x.metric).sort(), ['outlierRate', 'p50', 'p99', 'p999', 'tps']);
  // the stalls (a SYN retransmission, or a connect timeout when the retransmission is dropped too) are gone
  const rate = d.find((x) => x.metric === 'outlierRate');
  t.true(rate?.significant === true && rate.delta < 0 && rate.ci !== null && rate.ci[1] < 0 && rate.pValue < 0.05, `outlierRate: ${JSON.stringify(d)}`);
  // while the successful transactions wait longer in the deeper queue (8 clients, 1 ms per accept): a trade-off
  // the comparison must report as it is, whichever way p99.9 goes
  t.true(c.verdicts[0].significant);
  t.regex(c.verdicts[0].text, /^backlog 1 -> 128 /);
  const md = readFileSync(join(dir, 'comparison.md'), 'utf8');
  t.regex(md.split('\n').slice(0, 6).join('\n'), /backlog 1 -> 128 .*significant/, 'the verdict comes first');
  t.regex(md, /one threshold for every variant \(given with --outlier/);
  t.true(existsSync(join(dir, 'comparison.svg')));
  t.regex(String(r.stdout), /comparison: .*comparison\.md/);
});

test('two identical variants: no detectable difference; compare re-reads the matrix directory to the same answer', async (t) => {
  const base = tempDir(t);
  const dir = join(base, 'mx');
  t.timeout(240_000);
  const r = await sockspike(['matrix', '--vary', 'seed=1,2', '--repeat', '2', '--order', 'interleaved', '--duration', '1s', '--no-probes', '--out', dir], {
    timeout: 200_000,
  });
  t.is(r.exitCode, 0, String(r.stderr));
  t.is(String(r.stderr), '', 'no progress off a terminal');
  const m = readJson<MatrixManifest>(join(dir, 'matrix.json'));
  t.deepEqual(
    m.schedule.map((s) => s.variant),
    ['seed=1', 'seed=2', 'seed=1', 'seed=2'],
    'interleaved',
  );
  const c = readJson<Comparison>(join(dir, 'comparison.json'));
  t.false(
    c.differences.some((x) => x.significant),
    JSON.stringify(c.differences.filter((x) => x.significant)),
  );
  t.false(c.verdicts[0].significant);
  t.regex(c.verdicts[0].text, /no detectable difference/);
  t.regex(readFileSync(join(dir, 'comparison.md'), 'utf8'), /No detectable difference between any variant and the baseline `seed=1`/);
  t.truthy(c.method.fewRepetitions, 'two repetitions: the report says they are few');

  const again = join(base, 'again');
  const r2 = await sockspike(['compare', dir, '--out', again]);
  t.is(r2.exitCode, 0, String(r2.stderr));
  const c2 = readJson<Comparison>(join(again, 'comparison.json'));
  t.deepEqual(
    c2.variants.map((v) => [v.name, v.runs.length]),
    c.variants.map((v) => [v.name, v.runs.length]),
  );
  t.deepEqual(
    c2.differences.map((x) => x.delta),
    c.differences.map((x) => x.delta),
  );
});

test('compare: run directories grouped by their configuration; bad input gets one line and exit 2', async (t) => {
  const base = tempDir(t);
  const a = join(base, 'a');
  const b = join(base, 'b');
  makeSyntheticRun(a, { transactions: 5000, durationS: 6, outlierEvery: 100, failureEvery: 0, seed: 1 });
  makeSyntheticRun(b, { transactions: 5000, durationS: 6, outlierEvery: 0, failureEvery: 0, seed: 2 });
  const out = join(base, 'cmp');
  const r = await sockspike(['compare', a, b, '--out', out, '--baseline', 'seed=2']);
  t.is(r.exitCode, 0, String(r.stderr));
  const c = readJson<Comparison>(join(out, 'comparison.json'));
  t.is(c.baseline, 'seed=2');
  t.deepEqual(c.variants.map((v) => v.name).sort(), ['seed=1', 'seed=2'], 'named by what differs in run.json');
  t.true(existsSync(join(out, 'comparison.md')) && existsSync(join(out, 'comparison.svg')));

  const bad = [
    { args: ['compare', base, a], re: /is neither a run directory \(no run\.json\) nor a matrix directory/ },
    { args: ['compare', a], re: /only one run: one variant, nothing to compare/ },
    { args: ['compare', a, a], re: /one variant, nothing to compare/ },
    { args: ['compare', a, b, '--baseline', 'seed=9'], re: /--baseline seed=9: no such variant \(variants: seed=1; seed=2\)/ },
    { args: ['matrix', '--vary', 'backlg=1,2'], re: /sockspike run has no --backlg flag/ },
    { args: ['matrix', '--vary', 'backlog=1,x'], re: /variant backlog=x: --backlog: "x" is not a whole number/ },
    { args: ['matrix', '--vary', 'backlog=1,2', '--backlog', '4'], re: /--backlog is given both as a run flag and in --vary/ },
    { args: ['matrix', '--vary', 'backlog=1'], re: /single variant: nothing to compare/ },
  ];
  const results = await Promise.all(bad.map((x) => sockspike(x.args)));
  for (const [i, x] of bad.entries()) {
    const e = results[i];
    t.is(e.exitCode, 2, x.args.join(' '));
    t.is(lines(e.stderr).length, 1, String(e.stderr));
    t.regex(String(e.stderr), x.re);
    t.notRegex(String(e.stderr), /\bat .*\.ts:\d+/, 'no stack trace');
  }
  const typo = await sockspike(['matrix', '--vary', 'backlog=1,2', '--concurency', '4']);
  t.is(typo.exitCode, 2);
  t.regex(String(typo.stderr), /unknown option '--concurency'/, 'a typo in a run flag is refused before any run');
});
