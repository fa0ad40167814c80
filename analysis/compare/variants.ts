import { formatRate, formatShare, formatUs } from '../../lib/format.ts';
import { UserError } from '../../lib/errors.ts';
import { prng } from '../../lib/prng.ts';
import type { RunManifest } from '../../lib/run-files.ts';
import { addMultinomial, binValue, holm, tInterval, twoStageVariance, varianceOf } from './statistics.ts';
import {
  differingSettings,
  digestRun,
  FAIL_BELOW,
  isOutlierCategory,
  NCATEGORIES,
  pooledMedianUs,
  variantName,
  type CpuShares,
  type RunDigest,
} from './run-digest.ts';
import { readManifest } from '../read-run.ts';
import { findKnee, KNEE_RULE, type KneeJump } from './knee.ts';
import { derivedThreshold } from '../summarize.ts';

// The comparison of runs grouped into variants (comparison.json): per
// variant throughput, p50/p99/p99.9/max, outlier rate against ONE threshold,
// top cause and CPU shares; per variant against the baseline the difference
// of each metric with a 95 % interval and a p-value from a hierarchical
// bootstrap (resample runs, then transactions within each run, from each
// run's binned histogram), widened for few repetitions; a verdict in words;
// and the scaling knee of each numeric setting.

export const COMPARISON_FORMAT = 'sockspike-comparison';
export const COMPARISON_VERSION = 1;
export const DEFAULT_RESAMPLES = 2000;
export const ALPHA = 0.05;

export type MetricId = 'p50' | 'p99' | 'p999' | 'tps' | 'outlierRate';
export const METRICS: { id: MetricId; label: string; unit: 'us' | 'tps' | 'rate'; lowerIsBetter: boolean }[] = [
  { id: 'p50', label: 'p50', unit: 'us', lowerIsBetter: true },
  { id: 'p99', label: 'p99', unit: 'us', lowerIsBetter: true },
  { id: 'p999', label: 'p99.9', unit: 'us', lowerIsBetter: true },
  { id: 'tps', label: 'throughput', unit: 'tps', lowerIsBetter: false },
  { id: 'outlierRate', label: 'outliers', unit: 'rate', lowerIsBetter: true },
];

export interface ComparisonRun {
  dir: string;
  /** Settings as given by a matrix (matrix.json); without them, variants come from run.json differences. */
  settings?: Record<string, string>;
}

export interface VariantResult {
  name: string;
  settings: Record<string, string>;
  runs: string[];
  transactions: number;
  ok: number;
  outliers: number;
  tps: number;
  latencyUs: { p50: number; p99: number; p999: number; max: number };
  outlierRate: number;
  topCause: string | null;
  /** Its outliers in words, from the runs' largest outlier mode: "1.02s connect stalls" (null: no modes). */
  stalls: string | null;
  /** Top cause of each run (summary.json causes[0]; null: none, or not analysed). */
  runCauses: (string | null)[];
  cpu: CpuShares | null;
}

export interface Difference {
  variant: string;
  metric: MetricId;
  baselineValue: number;
  value: number;
  delta: number;
  /** 95 % interval of delta; null when it cannot be estimated (throughput with a single run: no spread between runs). */
  ci: [number, number] | null;
  /** Bootstrap p-value, Holm-adjusted over the metrics of this variant. */
  pValue: number;
  /** Before Holm's adjustment. */
  pRaw: number;
  significant: boolean;
}

export interface Verdict {
  variant: string;
  significant: boolean;
  text: string;
}

export interface KneeReport {
  key: string;
  /** The other settings held fixed ('' when only this one varies). */
  group: string;
  levels: { level: number; variant: string; p99: number; p999: number; cpu: CpuShares | null }[];
  knee: { level: number; variant: string; jumps: KneeJump[] } | null;
  text: string;
}

export interface Comparison {
  format: typeof COMPARISON_FORMAT;
  version: number;
  baseline: string;
  threshold: { us: number; how: string };
  method: { resamples: number; seed: number; alpha: number; text: string; fewRepetitions: string | null };
  variants: VariantResult[];
  differences: Difference[];
  verdicts: Verdict[];
  knees: KneeReport[];
  kneeRule: string;
  notes: string[];
}

export interface CompareOptions {
  baseline?: string;
  resamples?: number;
  seed?: number;
  notes?: string[];
}

export interface Group {
  name: string;
  settings: Record<string, string>;
  runs: { dir: string; manifest: RunManifest }[];
}

/** Group runs into variants by their settings (given, or from run.json differences). */
export function groupVariants(runs: ComparisonRun[]): Group[] {
  const manifests = runs.map((r) => readManifest(r.dir));
  const given = runs.every((r) => r.settings !== undefined);
  const settings = given ? runs.map((r) => r.settings!) : differingSettings(manifests.map((m) => m.config as unknown as Record<string, unknown>));
  const groups = new Map<string, Group>();
  runs.forEach((r, i) => {
    const name = variantName(settings[i]);
    const g = groups.get(name) ?? { name, settings: settings[i], runs: [] };
    g.runs.push({ dir: r.dir, manifest: manifests[i] });
    groups.set(name, g);
  });
  return [...groups.values()];
}

/** The comparison of some runs. UserError when they do not make at least two variants. */
export function compareRuns(runs: ComparisonRun[], opts: CompareOptions = {}): Comparison {
  if (runs.length === 0) throw new UserError('nothing to compare: give run directories (or a matrix directory)');
  const groups = groupVariants(runs);
  if (groups.length < 2 || groups[0].name === '')
    throw new UserError(
      `${runs.length === 1 ? 'only one run' : `all ${runs.length} runs have the same configuration`}: one variant, nothing to compare (give runs that differ in a setting)`,
    );
  const baseline = opts.baseline ?? groups[0].name;
  const bIndex = groups.findIndex((g) => g.name === baseline);
  if (bIndex < 0) throw new UserError(`--baseline ${baseline}: no such variant (variants: ${groups.map((g) => g.name).join('; ')})`);
  const notes = [...(opts.notes ?? [])];

  // ONE outlier threshold for every variant.
  const given = new Set(groups.flatMap((g) => g.runs.map((r) => r.manifest.config.outlierUs)).filter((v) => v !== null));
  const bGiven = groups[bIndex].runs.map((r) => r.manifest.config.outlierUs).find((v) => v !== null);
  let threshold: { us: number; how: string };
  if (given.size === 1 && bGiven !== undefined && bGiven !== null) threshold = { us: bGiven, how: 'given with --outlier to the runs' };
  else if (bGiven !== undefined && bGiven !== null) {
    threshold = { us: bGiven, how: "the baseline's --outlier (the runs were given different thresholds)" };
    notes.push(
      `the runs were given different --outlier thresholds (${[...given].map((u) => formatUs(u!)).join(', ')}); every variant is counted against the baseline's`,
    );
  } else {
    const d = derivedThreshold(pooledMedianUs(groups[bIndex].runs));
    threshold = { us: Math.round(d.thresholdUs), how: `the baseline's derived threshold (${d.how}, pooled over its runs)` };
  }

  const scratch = new Float64Array(NCATEGORIES);
  const digests = groups.map((g) => g.runs.map((r) => digestRun(r.dir, r.manifest, threshold.us, scratch)));
  const variants = groups.map((g, i) => variantResult(g, digests[i]));
  for (const [i, d] of digests.entries()) if (d.every((r) => r.attempted === 0)) notes.push(`variant ${groups[i].name} recorded no transactions`);

  const B = opts.resamples ?? DEFAULT_RESAMPLES;
  const seed = opts.seed ?? 1;
  const reps = digests.map((d, i) => variantReplicates(d, B, seed * 7919 + i * 104729 + 1));
  const differences: Difference[] = [];
  const verdicts: Verdict[] = [];
  const minRuns = Math.min(...digests.map((d) => d.length));
  for (let i = 0; i < groups.length; i++) {
    if (i === bIndex) continue;
    const mine = differencesOf(groups[i].name, variants[bIndex], variants[i], reps[bIndex], reps[i], digests[bIndex].length, digests[i].length);
    differences.push(...mine);
    verdicts.push(verdict(variants[bIndex], variants[i], mine));
  }
  return {
    format: COMPARISON_FORMAT,
    version: COMPARISON_VERSION,
    baseline,
    threshold,
    method: {
      resamples: B,
      seed,
      alpha: ALPHA,
      text:
        `hierarchical bootstrap, ${B} resamples (seed ${seed}): runs resampled with replacement, then each run's transactions (a multinomial draw over its 0.5 % latency bins); ` +
        `each variant's variance = (hierarchical - transactions-only bootstrap variance) x n / (n - 1), at least the transactions-only one (n its runs; the hierarchical bootstrap alone counts the transactions' noise twice); ` +
        `interval = difference +- t(0.975, runs of both - 2) x the standard error; p-value from Student's t with the same degrees of freedom, Holm-adjusted over the ${METRICS.length} metrics of a variant; ` +
        `significant when the adjusted p < ${ALPHA}`,
      fewRepetitions:
        minRuns < 2
          ? 'a variant has a single run: the intervals cover the noise between transactions but not the drift between runs (a Student t with 1 degree of freedom keeps them wide); repeat (--repeat 3 or more) to trust a difference'
          : minRuns < 3
            ? `only ${minRuns} runs per variant: run-to-run variation is poorly estimated, so intervals are wide and only large differences can be significant; --repeat 5 gives firmer answers`
            : null,
    },
    variants,
    differences,
    verdicts,
    knees: knees(groups, variants),
    kneeRule: KNEE_RULE,
    notes,
  };
}

/**
 * The differences of one variant from the baseline, each metric with its
 * interval and Holm-adjusted p-value, from the two variants' replicates.
 */
export function differencesOf(
  name: string,
  base: VariantResult,
  v: VariantResult,
  baseReps: VariantReplicates,
  reps: VariantReplicates,
  baseRuns: number,
  runs: number,
): Difference[] {
  const B = reps.hier.p50.length;
  const rows = METRICS.map((m) => {
    const observed = pointValue(v, m.id) - pointValue(base, m.id);
    // throughput is one number per run: with a single run there is no spread to resample
    if (m.id === 'tps' && Math.min(runs, baseRuns) < 2) return { m, observed, ci: null, pRaw: 1 };
    const variance = (r: VariantReplicates, n: number): number => twoStageVariance(varianceOf(r.hier[m.id]), varianceOf(r.within[m.id]), n);
    const se = Math.sqrt(variance(reps, runs) + variance(baseReps, baseRuns));
    const { ci, pValue } = tInterval(observed, se, runs + baseRuns - 2, 1 / (B + 1));
    return { m, observed, ci: ci as [number, number] | null, pRaw: pValue };
  });
  const adjusted = holm(rows.map((r) => r.pRaw));
  return rows.map((r, j) => ({
    variant: name,
    metric: r.m.id,
    baselineValue: pointValue(base, r.m.id),
    value: pointValue(v, r.m.id),
    delta: r.observed,
    ci: r.ci,
    pValue: adjusted[j],
    pRaw: r.pRaw,
    significant: r.ci !== null && adjusted[j] < ALPHA && (r.ci[0] > 0 || r.ci[1] < 0),
  }));
}

export function variantResult(g: Pick<Group, 'name' | 'settings'>, d: RunDigest[]): VariantResult {
  const pooled = new Float64Array(NCATEGORIES);
  let attempted = 0;
  let ok = 0;
  let outliers = 0;
  let maxUs = 0;
  for (const r of d) {
    for (let i = 0; i < r.keys.length; i++) pooled[r.keys[i]] += r.counts[i];
    attempted += r.attempted;
    ok += r.ok;
    outliers += r.outliers;
    maxUs = Math.max(maxUs, r.maxUs);
  }
  const q = quantiles(pooled, allKeys(d), ok);
  const causes = d.map((r) => r.topCause);
  const cpus = d.map((r) => r.cpu).filter((c) => c !== null);
  return {
    name: g.name,
    settings: g.settings,
    runs: d.map((r) => r.dir),
    transactions: attempted,
    ok,
    outliers,
    tps: d.length > 0 ? d.reduce((a, r) => a + r.tps, 0) / d.length : 0,
    latencyUs: { p50: q.p50, p99: q.p99, p999: q.p999, max: Math.round(maxUs) },
    outlierRate: attempted > 0 ? outliers / attempted : 0,
    topCause: mostCommon(causes),
    stalls: stallsOf(d),
    runCauses: causes,
    cpu: cpus.length === 0 ? null : meanCpu(cpus),
  };
}

/** The largest outlier mode over the runs, in words: "1.02s connect stalls". */
function stallsOf(d: RunDigest[]): string | null {
  let best: NonNullable<RunDigest['stall']> | null = null;
  for (const r of d) if (r.stall && (best === null || r.stall.count > best.count)) best = r.stall;
  if (best === null) return null;
  return `${formatUs(best.medianUs)} ${best.phase !== null ? `${best.phase} ` : ''}stalls`;
}

function meanCpu(c: CpuShares[]): CpuShares {
  const out: CpuShares = { busy: 0, user: 0, system: 0, softirq: 0, irq: 0, steal: 0 };
  for (const x of c) for (const k of Object.keys(out) as (keyof CpuShares)[]) out[k] += x[k] / c.length;
  return out;
}

/** The most frequent non-null cause of the runs (null when no run has one). */
function mostCommon(xs: (string | null)[]): string | null {
  const n = new Map<string, number>();
  for (const x of xs) if (x !== null) n.set(x, (n.get(x) ?? 0) + 1);
  let best: string | null = null;
  for (const [k, v] of n) if (best === null || v > n.get(best)!) best = k;
  return best;
}

const pointValue = (v: VariantResult, m: MetricId): number => (m === 'tps' ? v.tps : m === 'outlierRate' ? v.outlierRate : v.latencyUs[m]);

/** The union of the category keys of some runs, ascending. */
function allKeys(d: RunDigest[]): Uint32Array {
  const s = new Set<number>();
  for (const r of d) for (const k of r.keys) s.add(k);
  return Uint32Array.from([...s].sort((a, b) => a - b));
}

/** p50/p99/p99.9 of the successful transactions in a dense category histogram, scanning only `keys`. */
function quantiles(h: Float64Array, keys: Uint32Array, ok: number): { p50: number; p99: number; p999: number } {
  const out = { p50: 0, p99: 0, p999: 0 };
  if (ok <= 0) return out;
  const targets: [keyof typeof out, number][] = [
    ['p50', Math.ceil(0.5 * ok)],
    ['p99', Math.ceil(0.99 * ok)],
    ['p999', Math.ceil(0.999 * ok)],
  ];
  let t = 0;
  let cum = 0;
  for (let i = 0; i < keys.length && t < targets.length; i++) {
    const k = keys[i];
    if (k >= FAIL_BELOW) break;
    cum += h[k];
    while (t < targets.length && cum >= targets[t][1]) out[targets[t++][0]] = Math.round(binValue(k >> 1));
  }
  return out;
}

export type Replicates = Record<MetricId, Float64Array>;
/** A variant's replicates of both bootstraps: over runs and transactions, and over transactions only. */
export interface VariantReplicates {
  hier: Replicates;
  within: Replicates;
}

export function variantReplicates(d: RunDigest[], B: number, seed: number): VariantReplicates {
  return { hier: resampleVariant(d, B, prng(seed), true), within: resampleVariant(d, B, prng(seed + 15485863), false) };
}

/** B bootstrap replicates of each metric of one variant: runs resampled (runsToo) or each run once, then its transactions. */
export function resampleVariant(d: RunDigest[], B: number, rand: () => number, runsToo = true): Replicates {
  const out: Replicates = {
    p50: new Float64Array(B),
    p99: new Float64Array(B),
    p999: new Float64Array(B),
    tps: new Float64Array(B),
    outlierRate: new Float64Array(B),
  };
  if (d.length === 0) return out;
  const keys = allKeys(d);
  const h = new Float64Array(NCATEGORIES);
  for (let j = 0; j < B; j++) {
    let attempted = 0;
    let tps = 0;
    for (let r = 0; r < d.length; r++) {
      const run = runsToo ? d[Math.floor(rand() * d.length)] : d[r];
      addMultinomial(run.keys, run.counts, run.attempted, h, rand);
      attempted += run.attempted;
      tps += run.tps;
    }
    let ok = 0;
    let outliers = 0;
    for (const k of keys) {
      if (k < FAIL_BELOW) ok += h[k];
      if (isOutlierCategory(k)) outliers += h[k];
    }
    const q = quantiles(h, keys, ok);
    out.p50[j] = q.p50;
    out.p99[j] = q.p99;
    out.p999[j] = q.p999;
    out.tps[j] = tps / d.length;
    out.outlierRate[j] = attempted > 0 ? outliers / attempted : 0;
    for (const k of keys) h[k] = 0;
  }
  return out;
}

// ---- words ----

/** A metric's value for people: latency with its unit, throughput per second, a rate in %. */
export function formatMetric(m: MetricId, v: number): string {
  if (m === 'tps') return formatRate(v);
  if (m === 'outlierRate') return formatShare(v);
  return formatUs(v);
}

/** "backlog 1 -> 128" for the settings that differ between the baseline and a variant. */
function settingChange(b: VariantResult, v: VariantResult): string {
  const keys = [...new Set([...Object.keys(b.settings), ...Object.keys(v.settings)])].sort();
  const changed = keys.filter((k) => b.settings[k] !== v.settings[k]);
  return changed.map((k) => `${k} ${b.settings[k] ?? 'none'} -> ${v.settings[k] ?? 'none'}`).join(', ') || v.name;
}

/** A variant's settings as `sockspike run` flags ("--fault syn-drop:5% --backlog 1"), for people. */
export function variantFlags(settings: Record<string, string>): string {
  return (
    Object.keys(settings)
      .sort()
      .map((k) => {
        const v = settings[k];
        if (k.startsWith('sysctl.')) return v === 'none' ? '' : `--sysctl ${k.slice(7)}=${v}`;
        if (k === 'fault')
          return v === 'none'
            ? ''
            : v
                .split('+')
                .map((f) => `--fault ${f}`)
                .join(' ');
        if (v === 'on' && k !== 'nodelay') return `--${k}`;
        if (v === 'off' && k !== 'nodelay') return '';
        return v === 'none' ? '' : `--${k} ${v}`;
      })
      .filter((x) => x !== '')
      .join(' ') || '(defaults)'
  );
}

function verdict(b: VariantResult, v: VariantResult, diffs: Difference[]): Verdict {
  const change = settingChange(b, v);
  const by = Object.fromEntries(diffs.map((d) => [d.metric, d])) as Record<MetricId, Difference>;
  const sig = diffs.filter((d) => d.significant);
  const arrow = (m: MetricId): string => `${METRICS.find((x) => x.id === m)!.label} ${formatMetric(m, by[m].baselineValue)} -> ${formatMetric(m, by[m].value)}`;
  if (sig.length === 0) {
    const minP = Math.min(...diffs.map((d) => d.pValue));
    if (Math.min(b.runs.length, v.runs.length) < 2)
      return {
        variant: v.name,
        significant: false,
        text: `${change}: no difference can be shown with a single run per variant (${arrow('outlierRate')}, ${arrow('p999')}, ${arrow('p50')}; smallest p = ${minP.toPrecision(2)}); repeat the runs (--repeat 3 or more) to test it`,
      };
    return {
      variant: v.name,
      significant: false,
      text: `${change}: no detectable difference (${arrow('outlierRate')}, ${arrow('p999')}, ${arrow('p50')}; smallest p = ${minP.toPrecision(2)})`,
    };
  }
  const tail = sig.filter((d) => d.metric === 'outlierRate' || d.metric === 'p999' || d.metric === 'p99');
  let lead: string;
  const o = by.outlierRate;
  const what = b.stalls !== null ? `the ${b.stalls}` : 'the outliers';
  const why = b.topCause ? ` (${b.topCause} in ${b.name})` : '';
  if (o.significant && o.delta < 0 && v.outliers === 0) lead = `removes ${what}${why}`;
  else if (o.significant && o.delta < 0) lead = `cuts ${what}${why}`;
  else if (o.significant && o.delta > 0) lead = `adds outliers${v.topCause ? ` (${v.topCause})` : ''}`;
  else if (tail.length > 0) lead = tail[0].delta < 0 ? 'shortens the tail' : 'lengthens the tail';
  else lead = 'changes the bulk, not the tail';
  const shown = [...new Set(['outlierRate', 'p999', ...sig.map((d) => d.metric)])] as MetricId[];
  const maxP = Math.max(...sig.map((d) => d.pValue));
  return {
    variant: v.name,
    significant: true,
    text: `${change} ${lead}: ${shown.map(arrow).join(', ')}; significant (${sig.map((d) => METRICS.find((x) => x.id === d.metric)!.label).join(', ')}: p <= ${maxP.toPrecision(2)})`,
  };
}

// ---- knees ----

const numeric = (s: string): number | null => (/^-?\d+(\.\d+)?$/.test(s) ? Number(s) : null);

function knees(groups: Group[], variants: VariantResult[]): KneeReport[] {
  const keys = [...new Set(groups.flatMap((g) => Object.keys(g.settings)))].sort();
  const out: KneeReport[] = [];
  for (const key of keys) {
    const vals = groups.map((g) => numeric(g.settings[key] ?? ''));
    if (vals.some((v) => v === null) || new Set(vals).size < 3) continue;
    // one knee per combination of the other settings
    const byRest = new Map<string, number[]>();
    groups.forEach((g, i) => {
      const rest = variantName(Object.fromEntries(Object.entries(g.settings).filter(([k]) => k !== key)));
      byRest.set(rest, [...(byRest.get(rest) ?? []), i]);
    });
    for (const [rest, idx] of byRest) {
      if (new Set(idx.map((i) => vals[i])).size < 3) continue;
      const levels = idx
        .map((i) => ({ level: vals[i]!, variant: variants[i].name, p99: variants[i].latencyUs.p99, p999: variants[i].latencyUs.p999, cpu: variants[i].cpu }))
        .sort((a, b) => a.level - b.level);
      const k = findKnee(
        levels.map((l) => ({
          level: l.level,
          values: { p99: l.p99, p999: l.p999, cpuBusy: l.cpu?.busy, cpuSystem: l.cpu?.system, cpuSoftirq: l.cpu?.softirq, cpuSteal: l.cpu?.steal },
        })),
      );
      const where = rest === '' ? '' : ` (with ${rest})`;
      const fmt = (j: KneeJump): string =>
        j.metric.startsWith('cpu')
          ? `${j.label} ${formatShare(j.previous)} -> ${formatShare(j.value)} (in line would be about ${formatShare(j.expected)})`
          : `${j.label} ${formatUs(j.previous)} -> ${formatUs(j.value)} (in line would be about ${formatUs(j.expected)})`;
      let text: string;
      if (k.level === null)
        text = `${key}${where}: no knee; every level from ${levels[0].level} to ${levels[levels.length - 1].level} is in line with the ones before it`;
      else {
        const lv = levels[k.index!];
        const cpu = lv.cpu;
        const kernel = cpu
          ? ` (CPU at ${key}=${lv.level}: user ${formatShare(cpu.user)}, system ${formatShare(cpu.system)}, softirq ${formatShare(cpu.softirq)}, steal ${formatShare(cpu.steal)})`
          : '';
        text = `${key}${where}: the knee is at ${key}=${k.level}, after ${levels[k.index! - 1].level}: ${k.jumps.map(fmt).join('; ')}${kernel}`;
      }
      out.push({
        key,
        group: rest,
        levels,
        knee: k.level === null ? null : { level: k.level, variant: levels[k.index!].variant, jumps: k.jumps },
        text,
      });
    }
  }
  return out;
}
