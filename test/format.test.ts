import test from 'ava';
import {
  formatBytes,
  formatCores,
  formatCount,
  formatNs,
  formatNumber,
  formatPercent,
  formatRate,
  formatSeconds,
  formatShare,
  formatUs,
} from '../lib/format.ts';

test('durations: a value, a space, a unit, trailing zeros dropped', (t) => {
  t.is(formatNs(850), '850 ns');
  t.is(formatNs(12_345), '12.3 us');
  t.is(formatUs(4560), '4.56 ms');
  t.is(formatUs(40_000), '40 ms');
  t.is(formatUs(200_000), '200 ms');
  t.is(formatUs(1_200_000), '1.2 s');
  t.is(formatNs(123e9), '2 min 03 s');
  t.is(formatNs(Number.NaN), '-');
});

test('percentages, counts, rates, sizes', (t) => {
  t.is(formatPercent(0.1234), '12.34 %');
  t.is(formatPercent(0), '0 %');
  t.is(formatShare(0.37), '37 %');
  t.is(formatShare(0.042), '4.2 %');
  t.is(formatShare(0.0035), '0.35 %');
  t.is(formatCount(11190), '11 190');
  t.is(formatNumber(22380), '22 380');
  t.is(formatNumber(0.734), '0.73');
  t.is(formatCores(1.63), '1.6 cores');
  t.is(formatCores(0.084), '0.08 cores');
  t.is(formatRate(136.4), '136/s');
  t.is(formatRate(4.54), '4.5/s');
  t.is(formatSeconds(24.2249e9), '24.22 s');
  t.is(formatBytes(1536), '1.5 KiB');
  t.is(formatBytes(3 * 2 ** 30), '3 GiB');
});
