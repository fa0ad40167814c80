import { differencesOf, variantReplicates, variantResult } from '../analysis/compare/variants.ts';
import { NBINS } from '../analysis/compare/statistics.ts';
import { NCATEGORIES, okCategory, type RunDigest } from '../analysis/compare/run-digest.ts';
import { prng } from '../lib/prng.ts';

// How often the comparison calls a difference significant (analysis/compare/variants.ts),
// by simulation: many trials of two variants of R runs each, drawn in
// memory (no files), with run-to-run drift (each run's latencies and
// throughput scaled by a log-normal factor) on top of the transaction noise.
//   - false alarms: both variants from the same distribution; the share of
//     trials in which any of the five metrics is called significant (the
//     target is at most 5 %);
//   - power: the baseline has 1 s outliers in a share of its transactions,
//     the variant none; the share of trials in which p99.9 or the outlier
//     rate is called significant.
//
//   npx tsx bench/compare-calibration.ts [--trials 200] [--runs 2,3,5] [--drift 0.05] [--resamples 500]

const arg = (name: string, def: string): string => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? process.argv[i + 1] : def;
};
const trials = Number(arg('trials', '200'));
const runsList = arg('runs', '2,3,5').split(',').map(Number);
const drift = Number(arg('drift', '0.05'));
const B = Number(arg('resamples', '500'));
const THRESHOLD_US = 100_000;

function makeRun(rand: () => number, n: number, outlierShare: number): RunDigest {
  const gauss = (): number => Math.sqrt(-2 * Math.log(1 - rand())) * Math.cos(2 * Math.PI * rand());
  const f = Math.exp(drift * gauss());
  const h = new Float64Array(NCATEGORIES);
  let outliers = 0;
  let maxUs = 0;
  for (let i = 0; i < n; i++) {
    let us = 2000 * f * Math.exp(0.3 * gauss());
    if (rand() < outlierShare) us += 1_000_000;
    if (us > THRESHOLD_US) outliers++;
    if (us > maxUs) maxUs = us;
    h[okCategory(us, THRESHOLD_US)]++;
  }
  const keys: number[] = [];
  const counts: number[] = [];
  for (let k = 0; k < NCATEGORIES; k++)
    if (h[k] > 0) {
      keys.push(k);
      counts.push(h[k]);
    }
  return {
    dir: '-',
    attempted: n,
    ok: n,
    outliers,
    durationS: 2,
    tps: (n / 2 / f) * (1 + 0.03 * gauss()),
    maxUs,
    keys: Uint32Array.from(keys),
    counts: Float64Array.from(counts),
    topCause: null,
    stall: null,
    cpu: null,
  };
}

function trial(seed: number, runs: number, baseShare: number, variantShare: number, n: number): { any: boolean; tail: boolean } {
  const rand = prng(seed);
  const a = Array.from({ length: runs }, () => makeRun(rand, n, baseShare));
  const b = Array.from({ length: runs }, () => makeRun(rand, n, variantShare));
  const va = variantResult({ name: 'a', settings: {} }, a);
  const vb = variantResult({ name: 'b', settings: {} }, b);
  const d = differencesOf('b', va, vb, variantReplicates(a, B, seed + 1), variantReplicates(b, B, seed + 2), runs, runs);
  return { any: d.some((x) => x.significant), tail: d.some((x) => x.significant && (x.metric === 'p999' || x.metric === 'outlierRate')) };
}

console.log(`${trials} trials per row, ${B} resamples, run-to-run drift ${drift} (log-normal sigma), bins of ${NBINS}`);
for (const runs of runsList) {
  let alarms = 0;
  let hits = 0;
  for (let t = 0; t < trials; t++) {
    if (trial(1000 + t * 7, runs, 0.002, 0.002, 3000).any) alarms++;
    if (trial(500_000 + t * 7, runs, 0.008, 0, 1000).tail) hits++;
  }
  console.log(
    `runs per variant ${runs}: false alarms ${((100 * alarms) / trials).toFixed(1)} % (identical variants, any metric); ` +
      `power ${((100 * hits) / trials).toFixed(1)} % (0.8 % of 1000 transactions per run with 1 s outliers vs none)`,
  );
}
