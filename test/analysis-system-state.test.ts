import test from 'ava';
import path from 'node:path';
import { wilcoxonRankSum } from 'simple-statistics';
import { readManifest, readTransactions } from '../analysis/read-run.ts';
import { analyzeSystemState, compareSystemState, rankSum, type SystemStateColumn, type SystemStateInput } from '../analysis/system-state.ts';
import { markWindows, outlierIndices, outlierWindows, rowsWithin, windowRange, workloadSpan } from '../analysis/windows.ts';
import { readProbes } from '../probes/read.ts';
import { prng } from '../lib/prng.ts';

// Outlier windows over probe rows, and the metric-by-metric comparison of
// outlier windows against normal ones.

const INTERVAL = 20e6;

/** A seeded uniform [0, 1) source, so the synthetic data is the same every run. */
const rng = prng;

function synthetic(rows: number, cols: Record<string, { kind: SystemStateColumn['kind']; values: Float64Array }>): SystemStateInput {
  const t = new Float64Array(rows);
  const dt = new Float64Array(rows).fill(INTERVAL);
  for (let i = 0; i < rows; i++) t[i] = (i + 1) * INTERVAL;
  return {
    rows,
    t,
    dt,
    columns: Object.entries(cols).map(([name, c]) => ({ name, kind: c.kind, unit: 'count' })),
    get: (name) => cols[name]?.values ?? null,
  };
}

function outlierMask(rows: number, every: number, width: number): Uint8Array {
  const m = new Uint8Array(rows);
  for (let i = 0; i < rows; i += every) for (let k = 0; k < width && i + k < rows; k++) m[i + k] = 1;
  return m;
}

test('windows: rows overlapping [start, end] plus the sample before the start', (t) => {
  const probes = { rows: 10, t: Float64Array.from({ length: 10 }, (_, i) => (i + 1) * 100), dt: new Float64Array(10).fill(100) };
  // rows cover (0,100], (100,200], ... ; a transaction from 250 to 420 overlaps rows 2 (200,300], 3, 4 (400,500]
  const w = markWindows(probes, [250, 1e9, 5], [420, 2e9, 5]);
  t.deepEqual(windowRange(w, 0), { first: 1, last: 4 });
  t.deepEqual(Array.from(w.rows), [1, 1, 1, 1, 1, 0, 0, 0, 0, 0], 'row 0 from the third window');
  t.is(windowRange(w, 1), null, 'after the last sample: uncovered');
  t.deepEqual(windowRange(w, 2), { first: 0, last: 0 }, 'inside the first row: no row before it');
  t.is(w.uncovered, 1);
  t.is(w.marked, 5);
  // a start exactly on a sample time: that sample covers it; the one before is added
  const x = markWindows(probes, [300], [300]);
  t.deepEqual(windowRange(x, 0), { first: 1, last: 2 });
  // edges: the row before the start, the one covering the start, the one covering the end
  const ed = markWindows(probes, [250], [720], { mode: 'edges' });
  t.deepEqual(Array.from(ed.rows), [0, 1, 1, 0, 0, 0, 0, 1, 0, 0]);
  t.deepEqual(windowRange(ed, 0), { first: 1, last: 7 });
  t.deepEqual(Array.from(markWindows(probes, [250], [320], { mode: 'edges' }).rows), [0, 1, 1, 1, 0, 0, 0, 0, 0, 0]);
  // an end past the last sample is clamped
  const y = markWindows(probes, [950], [5000]);
  t.deepEqual(windowRange(y, 0), { first: 8, last: 9 });
});

test('windows from transactions: actual start = intended + late, end = start + endUs', (t) => {
  const probes = { rows: 100, t: Float64Array.from({ length: 100 }, (_, i) => (i + 1) * INTERVAL), dt: new Float64Array(100).fill(INTERVAL) };
  const txns = {
    n: 3,
    intendedNs: Float64Array.from([100e6, 500e6, 900e6]),
    lateUs: Float32Array.from([0, 50_000, 0]),
    endUs: Float32Array.from([1000, 150_000, NaN]),
  };
  const idx = outlierIndices(txns, 100_000);
  t.deepEqual(Array.from(idx), [1]);
  const w = outlierWindows(probes, txns, idx);
  // start 550 ms: first row with t >= 550 ms is row 27 (560 ms); minus one: 26. end 700 ms: row 34 (700 ms).
  t.deepEqual(windowRange(w, 0), { first: 26, last: 34 });
  const span = workloadSpan(txns);
  t.is(span.fromNs, 100e6);
  t.is(span.toNs, 900e6, 'a transaction that never ended counts at its start');
  const within = rowsWithin(probes, span.fromNs, span.toNs);
  t.is(within.indexOf(1), 4, 'row 4 covers (80, 100] ms');
  t.is(within.lastIndexOf(1), 44);
});

test('windows: 1e6 outliers over 3e4 rows are all covered (speed: npm run bench)', (t) => {
  const rows = 30_000;
  const probes = { rows, t: Float64Array.from({ length: rows }, (_, i) => (i + 1) * INTERVAL), dt: new Float64Array(rows).fill(INTERVAL) };
  const n = 1_000_000;
  const r = rng(7);
  const start = new Float64Array(n);
  const end = new Float64Array(n);
  for (let k = 0; k < n; k++) {
    start[k] = r() * rows * INTERVAL;
    end[k] = start[k] + r() * 3e9;
  }
  const t0 = performance.now();
  const w = markWindows(probes, start, end);
  const ms = performance.now() - t0;
  t.log(`markWindows: 1e6 windows over 3e4 rows in ${ms.toFixed(0)} ms`);
  t.is(w.uncovered, 0);
});

test('rank sum matches simple-statistics wilcoxonRankSum (with ties)', (t) => {
  const r = rng(3);
  const xs = Array.from({ length: 40 }, () => Math.floor(r() * 10));
  const ys = Array.from({ length: 55 }, () => Math.floor(r() * 12));
  const x = Float64Array.from(xs).sort();
  const y = Float64Array.from(ys).sort();
  const { r1 } = rankSum(x, y, new Float64Array(95));
  t.is(r1, wilcoxonRankSum(xs, ys));
});

test('a column that spikes in outlier windows ranks first with p < 0.01; same-distribution, NaN and constant columns', (t) => {
  const rows = 3000;
  const r = rng(11);
  const mask = outlierMask(rows, 100, 5); // 150 outlier rows
  const spike = new Float64Array(rows);
  const noise = new Float64Array(rows);
  const noiseCounter = new Float64Array(rows);
  const weak = new Float64Array(rows);
  for (let i = 0; i < rows; i++) {
    spike[i] = mask[i] ? 5 + Math.floor(r() * 5) : r() < 0.02 ? 1 : 0;
    noise[i] = r() * 100;
    noiseCounter[i] = Math.floor(r() * 50);
    weak[i] = r() + (mask[i] ? 0.3 : 0);
  }
  const probes = synthetic(rows, {
    'cpu.user': { kind: 'fraction', values: noise },
    'TcpExt.ListenOverflows': { kind: 'counter', values: spike },
    'Tcp.InSegs': { kind: 'counter', values: noiseCounter },
    'some.weak': { kind: 'gauge', values: weak },
    'all.nan': { kind: 'gauge', values: new Float64Array(rows).fill(NaN) },
    'all.same': { kind: 'counter', values: new Float64Array(rows).fill(3) },
  });
  const res = analyzeSystemState(probes, mask);
  const m = res.metrics;
  t.is(m[0].metric, 'TcpExt.ListenOverflows');
  t.true(m[0].pValue! < 0.01);
  t.true(m[0].significant);
  t.true(m[0].effect > 0.9);
  t.is(m[0].unit, 'count/s');
  t.is(m[0].n.outlier, 150);
  t.is(m[0].n.normal, 2850);
  t.is(m[0].outlierMedian, ((spike.filter((_, i) => mask[i]).sort()[74] + spike.filter((_, i) => mask[i]).sort()[75]) * 50) / 2);
  t.is(m[0].normalMedian, 0);
  t.true(m[0].peak.value >= 9 * 50, 'a rate: delta / 20 ms');
  t.true(mask[m[0].peak.tNs / INTERVAL - 1] === 1, 'the peak is in an outlier row');
  t.is(m[0].test, 'normal-approx');
  t.true(m[0].total!.outlier > 0);
  t.is(m[1].metric, 'some.weak');
  t.true(m[1].significant);
  for (const name of ['cpu.user', 'Tcp.InSegs']) {
    const e = m.find((x) => x.metric === name)!;
    t.truthy(e);
    t.false(e.significant, name);
    t.true(e.pValue! > 0.01, `${name}: p ${e.pValue}`);
    t.true(Math.abs(e.effect) < 0.15);
  }
  t.falsy(m.find((x) => x.metric === 'all.nan'));
  t.falsy(m.find((x) => x.metric === 'all.same'));
  t.deepEqual(
    res.skipped.map((s) => `${s.metric}:${s.reason}`),
    ['all.nan:no values', 'all.same:constant'],
  );
  t.deepEqual(res.rows, { outlier: 150, normal: 2850 });
  t.deepEqual(
    compareSystemState(probes, mask).map((x) => x.metric),
    m.map((x) => x.metric),
  );
});

test('tiny groups are not tested; small groups get a seeded permutation test', (t) => {
  const rows = 400;
  const r = rng(5);
  const v = new Float64Array(rows);
  for (let i = 0; i < rows; i++) v[i] = r();
  const probes = synthetic(rows, { g: { kind: 'gauge', values: v } });
  const tiny = new Uint8Array(rows);
  tiny[10] = 1;
  tiny[11] = 1;
  v[10] = 50;
  v[11] = 60;
  const [e] = compareSystemState(probes, tiny);
  t.is(e.pValue, null);
  t.is(e.test, 'none');
  t.false(e.significant);
  t.regex(e.note!, /too few rows/);
  t.is(e.effect, 1);
  t.deepEqual(e.peak, { tNs: 12 * INTERVAL, value: 60 });

  const small = new Uint8Array(rows);
  for (const i of [100, 101, 102, 103, 104, 105]) {
    small[i] = 1;
    v[i] = 10 + i;
  }
  const [p1] = compareSystemState(probes, small);
  const [p2] = compareSystemState(probes, small);
  t.is(p1.test, 'permutation');
  t.true(p1.pValue! < 0.01, `p ${p1.pValue}`);
  t.is(p1.pValue, p2.pValue, 'seeded: the same p every time');
  t.is(p1.topRows.length, 5);
  t.is(p1.topRows[0].value, 115);

  const none = new Uint8Array(rows);
  const [q] = compareSystemState(probes, none);
  t.is(q.pValue, null);
  t.regex(q.note!, /no value in outlier windows/);
});

test('performance: 400 columns x 3e4 rows', (t) => {
  const rows = 30_000;
  const r = rng(9);
  const cols: Record<string, { kind: SystemStateColumn['kind']; values: Float64Array }> = {};
  const kinds: SystemStateColumn['kind'][] = ['counter', 'gauge', 'fraction'];
  for (let c = 0; c < 400; c++) {
    const v = new Float64Array(rows);
    const sparse = c % 2 === 0;
    for (let i = 0; i < rows; i++) v[i] = sparse ? (r() < 0.05 ? Math.floor(r() * 10) : 0) : r() * 1000;
    cols[`col${c}`] = { kind: kinds[c % 3], values: v };
  }
  const probes = synthetic(rows, cols);
  const mask = outlierMask(rows, 200, 8);
  const t0 = performance.now();
  const m = compareSystemState(probes, mask);
  const ms = performance.now() - t0;
  t.log(`compareSystemState: 400 columns x 3e4 rows in ${ms.toFixed(0)} ms`);
  t.is(m.length, 400);
});

test('a real run with listen-queue overflow: the overflow counters rank at the top', (t) => {
  // fixtures/runs/backlog1-rst: sockspike run --duration 3 --concurrency 4 --backlog 1 --close server-rst --outlier 100ms
  // (events/ removed to keep it small). Its outliers are 1 s SYN retransmissions after a listen-queue overflow.
  const dir = path.resolve('fixtures/runs/backlog1-rst');
  const probes = readProbes(dir);
  const txns = readTransactions(dir, readManifest(dir));
  const idx = outlierIndices(txns, 100_000);
  const span = workloadSpan(txns);
  const consider = rowsWithin(probes, span.fromNs, span.toNs);
  if (idx.length === 0) {
    t.log('the fixture has no outliers: the ranking assertion is skipped');
    t.pass();
    return;
  }
  // 'span' windows: six 1 s outliers with 4 connections in flight cover the whole workload.
  const whole = analyzeSystemState(probes, outlierWindows(probes, txns, idx).rows, { consider });
  t.log(`span windows: ${idx.length} outliers, ${whole.rows.outlier} outlier rows, ${whole.rows.normal} normal rows`);
  if (whole.rows.normal >= 3) {
    const hit = whole.metrics.slice(0, 10).find((m) => /^TcpExt\.(ListenOverflows|ListenDrops|TCPSynRetrans)$/.test(m.metric));
    t.log(hit ? `span windows: ${hit.metric} in the top 10` : 'span windows: no overflow counter in the top 10');
  } else {
    t.log('span windows leave too few normal rows to compare');
    t.true(whole.metrics.every((m) => m.pValue === null && m.test === 'none'));
  }
  // 'edges' windows: the rows where the drop and the retransmission are counted.
  const w = outlierWindows(probes, txns, idx, { mode: 'edges' });
  const res = analyzeSystemState(probes, w.rows, { consider });
  t.log(`edges windows: ${res.rows.outlier} outlier rows, ${res.rows.normal} normal rows, ${res.metrics.length} metrics, ${res.skipped.length} skipped`);
  t.true(res.rows.outlier >= 3 && res.rows.normal >= 3);
  const top = res.metrics.slice(0, 10);
  for (const [k, m] of top.entries())
    t.log(
      `${k + 1}. ${m.metric} effect ${m.effect.toFixed(2)} p ${m.pValue?.toExponential(1)} q ${m.qValue?.toExponential(1)} total ${m.total?.outlier ?? '-'}/${m.total?.normal ?? '-'}`,
    );
  const want = ['TcpExt.ListenOverflows', 'TcpExt.ListenDrops', 'TcpExt.TCPSynRetrans'];
  const hits = top.filter((m) => want.includes(m.metric));
  t.true(hits.length > 0, `one of ${want.join(', ')} in the top 10`);
  for (const h of hits) {
    t.true(h.significant, h.metric);
    t.true(h.effect > 0, h.metric);
    t.true(h.total!.outlier > 0, h.metric);
    t.true(h.peak.tNs >= span.fromNs, 'the peak is a row time of the run');
  }
});
