import test from 'ava';
import { tailThreshold } from '../analysis/summarize.ts';
import { prng } from '../lib/prng.ts';

// The derived outlier threshold: where the tail separates from the body, or
// 10 x the median (at least 1 ms) when it runs on from it.

/** n latencies: a lognormal body around 300 us with a continuous jitter tail to ~40 ms, plus `spikes`. */
function run(n: number, spikes: number[]): Float64Array {
  const rnd = prng(7);
  const v = new Float64Array(n + spikes.length);
  for (let i = 0; i < n; i++) {
    const g = Math.sqrt(-2 * Math.log(1 - rnd())) * Math.cos(2 * Math.PI * rnd());
    v[i] = 300 * Math.exp(0.3 * g);
    // scheduling jitter: 1 in 200 waits 1-40 ms, spread evenly on a log scale
    if (rnd() < 0.005) v[i] += 1000 * Math.exp(Math.log(40) * rnd());
  }
  spikes.forEach((s, k) => (v[n + k] = s));
  return v;
}
const pct = (v: Float64Array, q: number): number => Float64Array.from(v).sort()[Math.min(v.length - 1, Math.floor(q * v.length))];
const threshold = (v: Float64Array) => tailThreshold((i) => v[i], v.length, pct(v, 0.5), pct(v, 0.99));

test('SYN retransmissions (1 s) above a jitter tail: the threshold sits in the gap, so only they are outliers', (t) => {
  const v = run(
    20_000,
    Array.from({ length: 12 }, (_, k) => 1_000_000 + k * 3000),
  );
  const th = threshold(v);
  t.true(th.thresholdUs > 45_000 && th.thresholdUs < 1_000_000, String(th.thresholdUs));
  t.regex(th.how, /where the tail separates from the body/);
  t.is(v.filter((x) => x > th.thresholdUs).length, 12);
});

test('a tail that runs on from the body: 10 x the median (1 ms floor), as before', (t) => {
  const v = run(20_000, []);
  const th = threshold(v);
  t.is(th.thresholdUs, Math.max(1000, 10 * pct(v, 0.5)));
  t.regex(th.how, /^10 x the median latency/);
});

test('more than 1 % slow (p99 inside the spikes): 10 x the median, so the spikes stay outliers', (t) => {
  const v = run(
    2_000,
    Array.from({ length: 60 }, () => 200_000),
  );
  const th = threshold(v);
  t.regex(th.how, /^10 x the median latency/);
  t.is(v.filter((x) => x > th.thresholdUs).length >= 60, true);
});
