import test, { type ExecutionContext } from 'ava';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { makeSyntheticRun } from '../bench/synthetic-run.ts';
import { compareRuns } from '../analysis/compare/variants.ts';
import { addMultinomial, binomial, holm, studentTAbsCdf, studentTCritical, tInterval, twoStageVariance } from '../analysis/compare/statistics.ts';
import { differingSettings, flattenConfig } from '../analysis/compare/run-digest.ts';
import { prng } from '../lib/prng.ts';
import { defaultConfig } from '../harness/config.ts';
import { tempDir } from './helpers/cli.ts';

// The comparison's statistics on generated run directories whose
// difference is known (bench/synthetic-run.ts: ~1 s connect outliers every
// Nth transaction), and its building blocks.

test('binomial draws have the right mean and spread, exact in the rare tail and approximate in the bulk', (t) => {
  const rand = prng(7);
  for (const [n, p] of [
    [1000, 0.004],
    [1_000_000, 0.3],
    [50, 0.9],
  ] as const) {
    const k = 4000;
    let s = 0;
    let s2 = 0;
    for (let i = 0; i < k; i++) {
      const x = binomial(n, p, rand);
      t.true(x >= 0 && x <= n && Number.isInteger(x));
      s += x;
      s2 += x * x;
    }
    const mean = s / k;
    const sd = Math.sqrt(s2 / k - mean * mean);
    t.true(Math.abs(mean - n * p) < 0.1 * Math.sqrt(n * p * (1 - p)) + 0.05, `n ${n} p ${p}: mean ${mean}`);
    t.true(Math.abs(sd / Math.sqrt(n * p * (1 - p)) - 1) < 0.1, `n ${n} p ${p}: sd ${sd}`);
  }
  const out = new Float64Array(10);
  addMultinomial(Uint32Array.from([1, 4, 9]), Float64Array.from([500, 3, 497]), 1000, out, rand);
  t.is(out[1] + out[4] + out[9], 1000);
});

test('Student t, the t interval, the two-stage variance and Holm', (t) => {
  for (const [df, v] of [
    [1, 12.706],
    [2, 4.303],
    [4, 2.776],
    [30, 2.042],
  ] as const)
    t.true(Math.abs(studentTCritical(0.95, df) - v) < 0.002, `df ${df}`);
  t.true(Math.abs(1 - studentTAbsCdf(2.571, 5) - 0.05) < 1e-3);
  t.deepEqual(
    holm([0.01, 0.04, 0.03]).map((p) => Number(p.toFixed(4))),
    [0.03, 0.06, 0.06],
  );
  const zero = tInterval(0, 0, 2, 0.001);
  t.is(zero.pValue, 1, 'no difference anywhere: p = 1');
  t.deepEqual(zero.ci, [0, 0]);
  const r = tInterval(3, Math.SQRT2, 2, 0.001);
  t.true(Math.abs(r.ci[0] - (3 - 4.303 * Math.SQRT2)) < 0.01 && r.pValue > 0.05, 'with two runs each, 2.1 standard errors is not enough');
  t.true(tInterval(3, Math.SQRT2, 18, 0.001).pValue < 0.05, 'with ten each, it is');
  t.is(tInterval(1, 0, 4, 0.001).pValue, 0.001);
  // hierarchical variance = (n - 1) / n x true + within: the two-stage estimate recovers the true one
  t.is(twoStageVariance((2 / 3) * 9 + 4, 4, 3), 9);
  t.is(twoStageVariance(4.1, 4, 3), 4, "never below the transactions' own noise");
  t.is(twoStageVariance(10, 4, 1), 4, 'one run: the transactions only');
});

test('settings from run.json: flag names, only what differs', (t) => {
  const a = { ...defaultConfig(), backlog: 1, acceptDelayNs: 1e6, port: 40001 };
  const b = { ...defaultConfig(), backlog: 128, acceptDelayNs: 1e6, port: 40002 };
  const f = flattenConfig({ ...a, close: 'linger', lingerSeconds: 5, sysctls: { 'net.core.somaxconn': '16' } } as unknown as Record<string, unknown>);
  t.is(f['accept-delay'], '1ms');
  t.is(f.close, 'linger:5');
  t.is(f.nodelay, 'off');
  t.is(f['sysctl.net.core.somaxconn'], '16');
  t.deepEqual(differingSettings([a, b] as unknown as Record<string, unknown>[]), [{ backlog: '1' }, { backlog: '128' }], 'the port is not a setting');
});

function runs(t: ExecutionContext, name: string, n: number, outlierEvery: number, seed0: number): { dir: string; settings: Record<string, string> }[] {
  const base = tempDir(t);
  return Array.from({ length: n }, (_, i) => {
    const dir = join(base, `${name}-${i}`);
    makeSyntheticRun(dir, { transactions: 20_000, durationS: 12, outlierEvery, failureEvery: 0, seed: seed0 + i });
    return { dir, settings: { variant: name } };
  });
}

test('a known difference: 0.5 % one-second outliers against none is significant in outlier rate and p99.9', (t) => {
  const c = compareRuns([...runs(t, 'stalls', 3, 200, 1), ...runs(t, 'clean', 3, 0, 11)], { resamples: 1000 });
  t.is(c.baseline, 'variant=stalls');
  const d = Object.fromEntries(c.differences.map((x) => [x.metric, x]));
  t.true(d.outlierRate.significant, JSON.stringify(d.outlierRate));
  t.true(d.outlierRate.delta < 0 && d.outlierRate.ci![1] < 0);
  t.true(Math.abs(d.outlierRate.baselineValue - 0.005) < 1e-4, String(d.outlierRate.baselineValue));
  t.is(d.outlierRate.value, 0);
  t.true(d.p999.significant && d.p999.baselineValue > 1e6 && d.p999.value < 1e4, JSON.stringify(d.p999));
  t.false(d.p50.significant, 'the bulk is the same distribution');
  t.true(c.verdicts[0].significant);
  t.regex(c.verdicts[0].text, /removes the outliers/);
  t.is(c.threshold.how, 'given with --outlier to the runs');
  t.deepEqual(Object.keys(c.variants[0]).filter((k) => ['name', 'settings', 'runs', 'tps', 'latencyUs', 'outlierRate', 'topCause'].includes(k)).length, 7);
});

test('two variants drawn from the same distribution: no detectable difference', (t) => {
  const c = compareRuns([...runs(t, 'a', 3, 1000, 21), ...runs(t, 'b', 3, 1000, 31)], { resamples: 1000 });
  t.false(
    c.differences.some((d) => d.significant),
    JSON.stringify(c.differences.filter((d) => d.significant)),
  );
  t.false(c.verdicts[0].significant);
  t.regex(c.verdicts[0].text, /no detectable difference/);
});

test("one threshold for all: without --outlier, the baseline's derived threshold counts every variant", (t) => {
  const r = runs(t, 'x', 1, 500, 41).concat(runs(t, 'y', 1, 0, 51));
  for (const x of r) {
    const path = join(x.dir, 'run.json');
    const m = JSON.parse(readFileSync(path, 'utf8')) as { config: { outlierUs: number | null } };
    m.config.outlierUs = null;
    writeFileSync(path, JSON.stringify(m));
  }
  const c = compareRuns(r, { resamples: 200 });
  t.regex(c.threshold.how, /baseline's derived threshold/);
  t.true(c.threshold.us >= 3000 && c.threshold.us <= 5000, `10 x a ~400 us median: ${c.threshold.us}`);
  t.truthy(c.method.fewRepetitions, 'one run per variant is said');
  const tps = c.differences.find((d) => d.metric === 'tps')!;
  t.is(tps.ci, null, 'throughput has no spread with one run');
  t.false(tps.significant);
});

test('a numeric setting gets its scaling knee named in the comparison (and none when every level is in line)', (t) => {
  const base = tempDir(t);
  const level = (c: number, outlierEvery: number): { dir: string; settings: Record<string, string> } => {
    const dir = join(base, `c${c}`);
    makeSyntheticRun(dir, { transactions: 4000, durationS: 5, outlierEvery, failureEvery: 0, seed: c });
    return { dir, settings: { concurrency: String(c) } };
  };
  const c = compareRuns([level(100, 0), level(200, 0), level(300, 0), level(400, 40)], { resamples: 200 });
  t.is(c.knees.length, 1);
  t.is(c.knees[0].key, 'concurrency');
  t.is(c.knees[0].knee?.level, 400, c.knees[0].text);
  t.true(
    c.knees[0].knee!.jumps.some((j) => j.metric === 'p99'),
    c.knees[0].text,
  );
  t.regex(c.knees[0].text, /the knee is at concurrency=400, after 300: p99/);
  const flat = compareRuns(
    [level(100, 0), level(200, 0), level(300, 0)].map((r, i) => ({ ...r, dir: r.dir, settings: { concurrency: String((i + 1) * 10) } })),
    { resamples: 100 },
  );
  t.is(flat.knees[0].knee, null);
  t.regex(flat.knees[0].text, /no knee/);
});
