import test from 'ava';
import { Columns } from '../probes/columns.ts';
import { counterDelta, delta32, delta64, split64, TWO32 } from '../probes/delta.ts';

// Counter deltas, wrap-around of 32- and 64-bit counters, and resets.

const d64 = (prev: bigint, cur: bigint): number => {
  const [ph, pl] = split64(prev);
  const [h, l] = split64(cur);
  return delta64(h, l, ph, pl);
};

test('64-bit: plain deltas, exact beyond 2^53', (t) => {
  t.is(d64(0n, 5n), 5);
  t.is(d64(4294967295n, 4294967296n), 1); // carry across the 32-bit halves
  t.is(d64(2n ** 60n + 1n, 2n ** 60n + 1001n), 1000); // a double alone would lose this
  t.is(d64(2n ** 63n, 2n ** 63n), 0);
});

test('64-bit: wrap past 2^64 - 1', (t) => {
  const max = 2n ** 64n - 1n;
  t.is(d64(max, 0n), 1);
  t.is(d64(max - 9n, 5n), 15);
  t.is(d64(2n ** 64n - 1000n, 24n), 1024);
});

test('64-bit: going backwards from a low value is a reset, not a wrap: NaN', (t) => {
  t.true(Number.isNaN(d64(1000n, 10n)));
  t.true(Number.isNaN(d64(2n ** 40n, 2n ** 39n)));
});

test('32-bit: wrap past 2^32 - 1', (t) => {
  t.is(delta32(5, 4294967295), 6);
  t.is(delta32(0, 4294967295), 1);
  t.is(delta32(100, 40), 60);
  t.is(counterDelta(32, 0, 3, 0, 4294967290), 9);
  // a "32-bit" counter that is in fact wider is handled as 64-bit
  t.is(counterDelta(32, 1, 3, 0, 4294967290), 9);
});

test('columns: counters, 32-bit counters, gauges, fractions and sums through compute()', (t) => {
  const c = new Columns(2); // grows as columns are added
  const ctr = c.ensure({ name: 'a', kind: 'counter', unit: 'count', source: 't' }, 0);
  const c32 = c.ensure({ name: 'b', kind: 'counter', unit: 'count', source: 't', width: 32 }, 0);
  const g = c.ensure({ name: 'g', kind: 'gauge', unit: 'count', source: 't' }, 0);
  const f = c.ensure({ name: 'f', kind: 'fraction', unit: 'fraction', source: 't', scale: 1e7 }, 0);
  const s = c.ensure({ name: 's', kind: 'counter', unit: 'count', source: 't', sumOf: ['a', 'b'] }, 0);
  const k = c.ensure({ name: 'k', kind: 'constant', unit: 'ms', source: 't' }, 0);
  t.deepEqual(
    c.outputs.map((o) => o.name),
    ['a', 'b', 'g', 'f', 's'],
  );
  const setRaw = (col: number, hi: number, lo: number): void => {
    c.curHi[col] = hi;
    c.curLo[col] = lo;
    c.curOk[col] = 1;
  };
  setRaw(ctr, 0xffffffff, 0xfffffff0); // 2^64 - 16
  setRaw(c32, 0, 4294967290);
  setRaw(g, 0, 5);
  setRaw(f, 0, 100);
  setRaw(k, 0, 200);
  c.compute(20e6);
  t.true(Number.isNaN(c.value[ctr])); // first sample: no previous value
  t.is(c.value[g], 5);
  t.true(Number.isNaN(c.value[s]));
  t.is(c.raw(k), 200);
  c.rotate();
  setRaw(ctr, 0, 4); // wrapped: +20
  setRaw(c32, 0, 10); // wrapped: +16
  setRaw(g, 0, 3);
  setRaw(f, 0, 101); // one jiffy (10 ms) in a 20 ms interval
  c.compute(20e6);
  t.is(c.value[ctr], 20);
  t.is(c.value[c32], 16);
  t.is(c.value[g], 3);
  t.is(c.value[f], 0.5);
  t.is(c.value[s], 36);
  // a member without a value (offline CPU) is skipped by the sum
  c.rotate();
  setRaw(ctr, 0, 14);
  c.curOk[c32] = 0;
  c.compute(20e6);
  t.is(c.value[s], 10);
  t.true(Number.isNaN(c.value[c32]));
  t.is(TWO32, 2 ** 32);
});

test('columns: a retired column stops at its row', (t) => {
  const c = new Columns();
  const a = c.ensure({ name: 'proc.x.utime', kind: 'fraction', unit: 'fraction', source: 'proc.x' }, 3);
  t.is(c.outputs[0].fromRow, 3);
  c.retire(a, 9);
  t.is(c.outputs[0].toRow, 9);
  t.is(c.live[a], 0);
  t.true(c.dirty);
});
