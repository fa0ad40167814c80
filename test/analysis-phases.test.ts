import test from 'ava';
import { dominantPhase, normalPhaseMedians, phaseBreakdown, phaseNames } from '../analysis/phases.ts';
import { allocTxnColumns, type TxnColumns } from '../analysis/read-run.ts';
import { TXN_FLAG_REUSED } from '../lib/records.ts';
import { OUTCOME_INDEX, OUTCOME_OK } from '../lib/types.ts';

// Which phase holds an outlier's excess time, on synthetic columns.

const columns = (n: number, exchanges: number): TxnColumns => allocTxnColumns(n, exchanges);

/** Transaction i: connect 100 us, each exchange 50 us, close 30 us, plus extra per phase. */
function fill(c: TxnColumns, i: number, extra: { connect?: number; ex?: number[]; close?: number; late?: number } = {}, reused = false): void {
  c.intendedNs[i] = i * 1e6;
  c.lateUs[i] = extra.late ?? 0;
  let t = reused ? 0 : 100 + (extra.connect ?? 0);
  c.connectUs[i] = t;
  for (let e = 0; e < c.exchanges; e++) {
    t += 50 + (extra.ex?.[e] ?? 0);
    c.exchangeUs[e][i] = t;
  }
  c.endUs[i] = t + 30 + (extra.close ?? 0);
  c.outcome[i] = OUTCOME_OK;
  c.flags[i] = reused ? TXN_FLAG_REUSED : 0;
}

const range = (a: number, b: number): number[] => Array.from({ length: b - a }, (_, k) => a + k);

test('phase names', (t) => {
  t.deepEqual(phaseNames(2), ['late start', 'connect', 'exchange 1', 'exchange 2', 'close']);
});

test('outliers slow in connect, or stuck in it (failed, connectUs NaN): dominant connect', (t) => {
  const c = columns(110, 2);
  for (let i = 0; i < 100; i++) fill(c, i);
  for (let i = 100; i < 106; i++) fill(c, i, { connect: 1_000_000 });
  for (let i = 106; i < 110; i++) {
    fill(c, i);
    c.connectUs[i] = NaN;
    c.exchangeUs[0][i] = NaN;
    c.exchangeUs[1][i] = NaN;
    c.endUs[i] = 3_000_000;
    c.outcome[i] = OUTCOME_INDEX.timeout;
  }
  const r = phaseBreakdown(c, range(100, 110), range(0, 100));
  t.is(r.dominant, 'connect');
  const row = r.phases.find((p) => p.phase === 'connect');
  t.is(row?.outliers, 10);
  t.is(row?.share, 1);
  t.is(row?.unfinished, 4);
  t.is(row?.normalMedianUs, 100);
  t.is(row?.medianExcessUs, 1_000_000);
  t.is(r.phases.find((p) => p.phase === 'exchange 1')?.normalMedianUs, 50);
  t.is(r.phases.find((p) => p.phase === 'close')?.normalMedianUs, 30);
  t.is(
    r.phases.reduce((a, p) => a + p.outliers, 0),
    10,
  );
});

test('outliers slow in the second exchange: dominant exchange 2; one stuck there counts as unfinished', (t) => {
  const c = columns(60, 3);
  for (let i = 0; i < 50; i++) fill(c, i);
  for (let i = 50; i < 59; i++) fill(c, i, { ex: [0, 200_000, 0] });
  fill(c, 59);
  c.exchangeUs[1][59] = NaN;
  c.exchangeUs[2][59] = NaN;
  c.endUs[59] = 5_000_000;
  c.outcome[59] = OUTCOME_INDEX.ECONNRESET;
  const r = phaseBreakdown(c, new Uint32Array(range(50, 60)), new Uint32Array(range(0, 50)));
  t.is(r.dominant, 'exchange 2');
  const row = r.phases.find((p) => p.phase === 'exchange 2');
  t.is(row?.outliers, 10);
  t.is(row?.unfinished, 1);
  t.is(dominantPhase(c, 55, normalPhaseMedians(c, range(0, 50))).phase, 'exchange 2');
});

test('keepalive: a reused connection has no connect phase; late start and close are phases too', (t) => {
  const c = columns(40, 1);
  for (let i = 0; i < 30; i++) fill(c, i, {}, i % 3 !== 0);
  // Reused, slow exchange: must not be blamed on connect.
  fill(c, 30, { ex: [80_000] }, true);
  // Late start (open loop).
  fill(c, 31, { late: 500_000 });
  // Slow close.
  fill(c, 32, { close: 40_000 });
  const med = normalPhaseMedians(c, range(0, 30));
  t.is(med.connect, 100); // only the fresh connections count
  t.is(dominantPhase(c, 30, med).phase, 'exchange 1');
  t.is(dominantPhase(c, 31, med).phase, 'late start');
  t.is(dominantPhase(c, 32, med).phase, 'close');
  const r = phaseBreakdown(c, [30], range(0, 30));
  t.is(r.phases.find((p) => p.phase === 'connect')?.outliers, 0);
  t.is(r.dominant, 'exchange 1');
});

test('no outliers: dominant null, all rows zero', (t) => {
  const c = columns(10, 1);
  for (let i = 0; i < 10; i++) fill(c, i);
  const r = phaseBreakdown(c, [], range(0, 10));
  t.is(r.dominant, null);
  t.true(r.phases.every((p) => p.outliers === 0 && p.share === 0));
});

test('1e6 transactions with 1 000 outliers: well under a second', (t) => {
  const n = 1_000_000;
  const c = columns(n, 2);
  const outliers = new Uint32Array(1000);
  const normal = new Uint32Array(n - 1000);
  let o = 0;
  let m = 0;
  for (let i = 0; i < n; i++) {
    const out = i % 1000 === 7;
    fill(c, i, out ? { connect: 1_000_000 + (i % 13) } : { ex: [i % 17, i % 5] });
    if (out) outliers[o++] = i;
    else normal[m++] = i;
  }
  const t0 = performance.now();
  const r = phaseBreakdown(c, outliers, normal);
  const ms = performance.now() - t0;
  t.log(`phaseBreakdown, 1e6 transactions, 1 000 outliers: ${ms.toFixed(0)} ms`);
  t.is(r.dominant, 'connect');
  t.is(r.phases.find((p) => p.phase === 'connect')?.outliers, 1000);
});
