import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { readSummaryIfAny, type RunManifest } from '../../lib/run-files.ts';
import { OUTCOME_OK, type Summary } from '../../lib/types.ts';
import { META_FILE, PROBES_DIR } from '../../probes/probe-files.ts';
import { readProbes } from '../../probes/read.ts';
import { binOf, binValue, NBINS } from './statistics.ts';
import { readTransactions } from '../read-run.ts';
import { totalUs, txnStartNs } from '../summarize.ts';
import { durationFlag } from '../../lib/run-args.ts';

// One run directory reduced to what a comparison needs, read once and then
// dropped: its latencies as a sparse histogram of categories (bins of 0.5 %,
// split at the common outlier threshold; failed transactions in two
// categories of their own), throughput, max, CPU shares and its top cause.
// Memory per run is a few thousand numbers whatever the run's length.

/** Category of a successful transaction: 2 x bin + (1 if above the threshold). */
export const okCategory = (us: number, thresholdUs: number): number => 2 * binOf(us) + (us > thresholdUs ? 1 : 0);
export const FAIL_BELOW = 2 * NBINS;
export const FAIL_ABOVE = 2 * NBINS + 1;
export const NCATEGORIES = 2 * NBINS + 2;
export const isOutlierCategory = (k: number): boolean => k === FAIL_ABOVE || (k < FAIL_BELOW && (k & 1) === 1);

/** CPU shares during the workload, fractions of all CPUs (time-weighted mean of the probe samples). */
export interface CpuShares {
  busy: number;
  user: number;
  system: number;
  softirq: number;
  irq: number;
  steal: number;
}

export interface RunDigest {
  dir: string;
  attempted: number;
  ok: number;
  /** Transactions above the threshold (failed ones included, as in summary.json). */
  outliers: number;
  durationS: number;
  tps: number;
  maxUs: number;
  /** Sparse category histogram: keys ascending, counts beside them; sums to attempted. */
  keys: Uint32Array;
  counts: Float64Array;
  topCause: string | null;
  /** The run's largest outlier mode and the phase holding the outliers' time (summary.json), if any. */
  stall: { medianUs: number; count: number; timer: string | null; phase: string | null } | null;
  cpu: CpuShares | null;
}

/** Read one run into a digest, outliers counted above thresholdUs. */
export function digestRun(dir: string, manifest: RunManifest, thresholdUs: number, scratch: Float64Array): RunDigest {
  const c = readTransactions(dir, manifest);
  scratch.fill(0);
  let ok = 0;
  let outliers = 0;
  let maxUs = 0;
  let first = Infinity;
  let last = -Infinity;
  for (let i = 0; i < c.n; i++) {
    const us = totalUs(c, i);
    const start = txnStartNs(c, i);
    if (c.intendedNs[i] < first) first = c.intendedNs[i];
    if (start + c.endUs[i] * 1e3 > last) last = start + c.endUs[i] * 1e3;
    const above = us > thresholdUs;
    if (above) outliers++;
    if (c.outcome[i] === OUTCOME_OK) {
      ok++;
      if (us > maxUs) maxUs = us;
      scratch[okCategory(us, thresholdUs)]++;
    } else scratch[above ? FAIL_ABOVE : FAIL_BELOW]++;
  }
  let k = 0;
  for (let i = 0; i < NCATEGORIES; i++) if (scratch[i] > 0) k++;
  const keys = new Uint32Array(k);
  const counts = new Float64Array(k);
  k = 0;
  for (let i = 0; i < NCATEGORIES; i++)
    if (scratch[i] > 0) {
      keys[k] = i;
      counts[k++] = scratch[i];
    }
  const durationS = c.n > 0 ? Math.max(1e-9, (last - first) / 1e9) : 0;
  const summary = readSummaryIfAny(dir);
  return {
    dir,
    attempted: c.n,
    ok,
    outliers,
    durationS,
    tps: durationS > 0 ? ok / durationS : 0,
    maxUs,
    keys,
    counts,
    topCause: summary?.causes?.[0]?.id ?? null,
    stall: stallOf(summary),
    cpu: cpuShares(dir, manifest),
  };
}

function stallOf(s: Summary | null): RunDigest['stall'] {
  const modes = s?.outliers?.modes ?? [];
  if (modes.length === 0) return null;
  const top = modes.reduce((a, b) => (b.count > a.count ? b : a));
  return { medianUs: top.medianUs, count: top.count, timer: top.timer, phase: s?.outliers?.phases?.dominant ?? null };
}

/** Median total latency of the successful transactions of some runs, pooled (us, from 0.5 % bins). */
export function pooledMedianUs(runs: { dir: string; manifest: RunManifest }[]): number {
  const h = new Float64Array(NBINS);
  let n = 0;
  for (const r of runs) {
    const c = readTransactions(r.dir, r.manifest);
    for (let i = 0; i < c.n; i++)
      if (c.outcome[i] === OUTCOME_OK) {
        h[binOf(totalUs(c, i))]++;
        n++;
      }
  }
  if (n === 0) return 0;
  const rank = Math.ceil(0.5 * n);
  let cum = 0;
  for (let b = 0; b < NBINS; b++) {
    cum += h[b];
    if (cum >= rank) return binValue(b);
  }
  return 0;
}

const CPU_COLUMNS: [keyof CpuShares, string][] = [
  ['user', 'cpu.user'],
  ['system', 'cpu.system'],
  ['softirq', 'cpu.softirq'],
  ['irq', 'cpu.irq'],
  ['steal', 'cpu.steal'],
];

/** Mean CPU shares over the samples inside the workload's span; null without probe samples. */
export function cpuShares(dir: string, manifest: RunManifest): CpuShares | null {
  if (!existsSync(join(dir, PROBES_DIR, META_FILE))) return null;
  let p;
  try {
    p = readProbes(dir);
  } catch {
    return null;
  }
  const from = manifest.workload?.firstStartNs ?? -Infinity;
  const to = manifest.workload?.lastEndNs ?? Infinity;
  const idle = p.get('cpu.idle');
  const iowait = p.get('cpu.iowait');
  if (idle === null) return null;
  const cols = CPU_COLUMNS.map(([k, name]) => [k, p.get(name)] as const);
  const sum: CpuShares = { busy: 0, user: 0, system: 0, softirq: 0, irq: 0, steal: 0 };
  let w = 0;
  for (let r = 0; r < p.rows; r++) {
    if (p.t[r] - p.dt[r] < from || p.t[r] > to || !(idle[r] >= 0)) continue;
    const dt = p.dt[r];
    w += dt;
    sum.busy += (1 - idle[r] - (iowait !== null && iowait[r] >= 0 ? iowait[r] : 0)) * dt;
    for (const [k, v] of cols) if (v !== null && v[r] >= 0) sum[k] += v[r] * dt;
  }
  if (w === 0) return null;
  for (const k of Object.keys(sum) as (keyof CpuShares)[]) sum[k] /= w;
  return sum;
}

// ---- variants from run configurations ----

/** Configuration fields that are not a setting of the workload: they differ between identical runs, or only change the analysis. */
const NOT_SETTINGS = new Set(['port', 'outlierUs']);

const kebab = (s: string): string => s.replace(/[A-Z]/g, (c) => '-' + c.toLowerCase());

/** A run's configuration as flag-named settings ("backlog" -> "1", "accept-delay" -> "1ms", "sysctl.net.core.somaxconn" -> "16"). */
export function flattenConfig(config: Record<string, unknown>): Record<string, string> {
  const out: Record<string, string> = {};
  const put = (key: string, v: unknown): void => {
    if (v === null || v === undefined) out[key] = 'none';
    else if (typeof v === 'boolean') out[key] = v ? 'on' : 'off';
    else if (Array.isArray(v)) out[key] = v.map((x) => (typeof x === 'object' && x !== null ? JSON.stringify(x) : String(x))).join('+') || 'none';
    else if (typeof v === 'object') for (const [k, x] of Object.entries(v as Record<string, unknown>)) put(`${key}.${k}`, x);
    else out[key] = String(v);
  };
  for (const [k, v] of Object.entries(config)) {
    if (NOT_SETTINGS.has(k) || k === 'lingerSeconds') continue;
    if (k === 'close') put('close', v === 'linger' ? `linger:${String(config.lingerSeconds)}` : v);
    else if (/Ns$/.test(k) && typeof v === 'number') put(kebab(k.slice(0, -2)), durationFlag(v));
    // in flag syntax, as `sockspike run` and `matrix --vary` take them: fault=syn-drop:5%, sysctl.net.ipv4.tcp_tw_reuse=0
    else if (k === 'sysctl' || k === 'sysctls') {
      // a list of {key, value} (run.json), or a map of key to value
      const list = Array.isArray(v)
        ? (v as { key: string; value: string }[])
        : Object.entries((v ?? {}) as Record<string, string>).map(([key, value]) => ({ key, value }));
      for (const x of list) put(`sysctl.${x.key}`, x.value);
    } else if (k === 'faults') put('fault', Array.isArray(v) ? (v as { text: string }[]).map((f) => f.text).join('+') || 'none' : v);
    else if (k === 'scenario')
      continue; // its settings are in the other fields
    else if (k === 'template' && v !== null && typeof v === 'object') put('request', (v as { source: string }).source);
    else put(kebab(k), v);
  }
  return out;
}

/** The name of a variant: its settings as key=value, keys sorted, comma-separated. */
export const variantName = (settings: Record<string, string>): string =>
  Object.keys(settings)
    .sort()
    .map((k) => `${k}=${settings[k]}`)
    .join(',');

/** The settings in which the runs' configurations differ, per run (keys that are the same everywhere left out). */
export function differingSettings(configs: Record<string, unknown>[]): Record<string, string>[] {
  const flat = configs.map(flattenConfig);
  const keys = new Set(flat.flatMap((f) => Object.keys(f)));
  const differ = [...keys].filter((k) => new Set(flat.map((f) => f[k] ?? 'none')).size > 1);
  return flat.map((f) => Object.fromEntries(differ.map((k) => [k, f[k] ?? 'none'])));
}
