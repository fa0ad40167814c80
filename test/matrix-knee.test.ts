import test from 'ava';
import { findKnee, expectedAt, type KneeLevel } from '../analysis/compare/knee.ts';

// The scaling-knee rule (analysis/compare/knee.ts) on synthetic level data.

const lv = (level: number, values: KneeLevel['values']): KneeLevel => ({ level, values });

test('the pub/sub cliff: 14 % CPU at 300 clients, 98 % (mostly system and steal) at 400 -> knee at 400', (t) => {
  const levels = [
    lv(100, { p99: 2100, p999: 3000, cpuBusy: 0.05, cpuSystem: 0.02, cpuSoftirq: 0.01, cpuSteal: 0.0 }),
    lv(200, { p99: 2200, p999: 3300, cpuBusy: 0.09, cpuSystem: 0.04, cpuSoftirq: 0.01, cpuSteal: 0.0 }),
    lv(300, { p99: 2400, p999: 3600, cpuBusy: 0.14, cpuSystem: 0.06, cpuSoftirq: 0.02, cpuSteal: 0.01 }),
    lv(400, { p99: 2600, p999: 4000, cpuBusy: 0.98, cpuSystem: 0.5, cpuSoftirq: 0.08, cpuSteal: 0.3 }),
  ];
  const k = findKnee(levels);
  t.is(k.level, 400);
  const ids = k.jumps.map((j) => j.metric);
  t.true(ids.includes('cpuBusy'), ids.join());
  t.true(ids.includes('cpuSystem') && ids.includes('cpuSteal'), ids.join());
  t.false(ids.includes('p99'), 'latency stayed in line');
  const busy = k.jumps.find((j) => j.metric === 'cpuBusy')!;
  t.is(busy.previous, 0.14);
  t.true(busy.expected > 0.17 && busy.expected < 0.2, `expected from the line through 5, 9, 14 %: ${busy.expected}`);
});

test("linear growth (latency rising with clients by Little's law, CPU with load) is no knee", (t) => {
  const levels = [100, 200, 300, 400, 500].map((c, i) =>
    lv(c, { p99: 10 * c * (1 + 0.05 * ((i % 2) - 0.5)), p999: 15 * c, cpuBusy: 0.15 + 0.18 * i, cpuSystem: 0.05 + 0.06 * i, cpuSteal: 0 }),
  );
  const k = findKnee(levels);
  t.is(k.level, null);
  t.deepEqual(k.jumps, []);
});

test('a tail-latency jump is found at the first level out of line, levels in any order', (t) => {
  const levels = [
    lv(32, { p99: 900_000, p999: 1_100_000 }),
    lv(4, { p99: 900, p999: 1500 }),
    lv(16, { p99: 60_000, p999: 1_020_000 }),
    lv(8, { p99: 1700, p999: 2600 }),
  ];
  const k = findKnee(levels);
  t.is(k.level, 16);
  t.is(k.index, 2);
  t.deepEqual(k.jumps.map((j) => j.metric).sort(), ['p99', 'p999']);
});

test('one level before: proportional growth is in line, a jump beyond it is not; small absolute changes never count', (t) => {
  t.is(findKnee([lv(100, { p99: 1000 }), lv(200, { p99: 2500 })]).level, null, '2.5x for 2x the load');
  t.is(findKnee([lv(100, { p99: 1000 }), lv(200, { p99: 4100 })]).level, 200, 'beyond 2x the proportional 2 ms');
  t.is(findKnee([lv(1, { p99: 50 }), lv(2, { p99: 60 }), lv(3, { p99: 400 })]).level, null, '400 us: under the 1 ms floor');
  t.is(findKnee([lv(1, { cpuBusy: 0.01 }), lv(2, { cpuBusy: 0.02 }), lv(3, { cpuBusy: 0.1 })]).level, null, 'under 15 points');
  t.is(findKnee([lv(1, { cpuBusy: 0.5 }), lv(2, { cpuBusy: 0.99 }), lv(3, { cpuBusy: 1 })]).level, null, 'a saturated CPU stays saturated');
});

test('missing measurements are skipped, not read as zero', (t) => {
  t.is(findKnee([lv(1, { p99: 1000, cpuBusy: null }), lv(2, { p99: 1100 }), lv(3, { p99: 1200, cpuBusy: 0.9 })]).level, null);
  t.is(expectedAt([], [], 5), null);
  t.is(expectedAt([1, 2], [10, 20], 3), 30);
  t.is(expectedAt([1, 2], [20, 10], 3), 20, 'never less than the largest value before');
});
