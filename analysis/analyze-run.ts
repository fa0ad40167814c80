import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { FILES, writeJson, type RunManifest } from '../lib/run-files.ts';
import { warmupOf } from './warmup.ts';
import { formatUs } from '../lib/format.ts';
import { OUTCOME_OK, OUTCOME_TIMEOUT, type Cause, type Summary } from '../lib/types.ts';
import { findModes } from './modes.ts';
import { normalPhaseMedians, phaseBreakdown, type PhaseMedians } from './phases.ts';
import { sharedChain } from './phase-timers.ts';
import { readManifest, readServer, readTransactions, type TxnColumns } from './read-run.ts';
import { summarize, totalUs } from './summarize.ts';
import { nth } from './latency.ts';
import { timerConstants } from './timers.ts';
import { analyzeSystemState } from './system-state.ts';
import { comparisonWindows } from './windows.ts';
import { readProbes, readStallMonitors, type ProbeData } from '../probes/read.ts';
import { findCauses } from './causes/index.ts';
import { checkFaults } from './fault-match.ts';
import { buildCauseInput, type InputSources } from './causes/input.ts';
import { mergeWindowCauses, outlierWindows } from './cause-windows.ts';
import { readKernelEventsFile } from '../probes/kernel-events/events-file.ts';
import type { Modes, Phases } from './causes/types.ts';
import { META_FILE, PROBES_DIR } from '../probes/probe-files.ts';
import { readEnvironment } from '../probes/environment.ts';
import { readOtherProcesses } from '../probes/other-processes.ts';

/**
 * Rebuild summary.json of a run directory from its files alone (any
 * machine, nothing re-run). `outlierUs` overrides the run's threshold.
 */
export function analyzeRun(dir: string, opts: { outlierUs?: number } = {}): Summary {
  const m = readManifest(dir);
  if (opts.outlierUs !== undefined) m.config.outlierUs = opts.outlierUs;
  const c = readTransactions(dir, m);
  const s = readServer(dir, m);
  const summary = summarize(m, c, s);
  const sysctls = readSysctls(dir);
  const { outliers, normal } = describeOutliers(summary, c, sysctls, m.config);
  // the normal transactions and their phase medians, the same for every subset of the outliers described
  let medians: PhaseMedians | null = null;
  const normalMedians = (): PhaseMedians => (medians ??= normalPhaseMedians(c, normal));
  const probes = outliers.length > 0 && existsSync(join(dir, PROBES_DIR, META_FILE)) ? readProbes(dir) : null;
  if (probes !== null) summary.systemState = systemState(probes, c, outliers);
  const clean = outliers.length === 0 && summary.transactions.failed + summary.transactions.timedOut === 0;
  const sources: InputSources | null = clean
    ? null
    : {
        config: m.config,
        summary,
        sysctls,
        c,
        s,
        outliers,
        probes,
        others: probes !== null ? readOtherProcesses(dir) : [],
        self: probes?.self ?? readStallMonitors(dir),
        events: readKernelEventsFile(dir),
        describe: (idx) => describeSubset(c, idx, normal, normalMedians, summary.outliers.referenceUs ?? summary.latencyUs.total.p50, sysctls),
      };
  const input = sources === null ? null : buildCauseInput(sources);
  summary.causes = input === null ? [] : findCauses(input);
  if (sources !== null) summary.causes = causesByWindow(summary.causes, sources);
  if (input?.harness) summary.selfCheck = input.harness;
  const faults = m.kernel?.faults ?? [];
  if (faults.length > 0) summary.faults = checkFaults(faults, summary, c, outliers);
  writeJson(join(dir, FILES.summary), summary);
  return summary;
}

/** Each spell of outliers looked at on its own (cause-windows.ts): the run's causes with their windows, and any other a spell names first. */
function causesByWindow(causes: Cause[], src: InputSources): Cause[] {
  const windows = outlierWindows(src.c, src.outliers);
  if (windows.length === 0) return causes;
  const perWindow = windows.map((window) => {
    const { modes, phases } = src.describe(window.outliers);
    const summary = { ...src.summary, outliers: { ...src.summary.outliers, modes, phases: phases ?? undefined } };
    return { window, causes: findCauses(buildCauseInput({ ...src, summary, outliers: window.outliers })) };
  });
  return mergeWindowCauses(causes, perWindow, src.outliers.length);
}

/** The run's sysctls from environment.json (timer constants follow them); {} when absent or damaged. */
const readSysctls = (dir: string): Record<string, string> => readEnvironment(dir).env?.sysctls ?? {};

/** Modes of the outliers (named after the timers of this run's kernel settings) and the phase that holds their time. */
function describeOutliers(
  summary: Summary,
  c: TxnColumns,
  sysctls: Record<string, string>,
  config: RunManifest['config'],
): { outliers: Uint32Array; normal: Uint32Array } {
  const threshold = summary.outliers.thresholdUs;
  // warm-up transactions are neither outliers nor normal (analysis/warmup.ts)
  const warm = warmupOf(c, config).mask;
  let n = 0;
  for (let i = 0; i < c.n; i++) if (warm[i] === 0 && totalUs(c, i) > threshold) n++;
  const outliers = new Uint32Array(n);
  const normal = new Uint32Array(c.n - n);
  const latencies = new Float64Array(n);
  let a = 0;
  let b = 0;
  for (let i = 0; i < c.n; i++) {
    if (warm[i] === 1) continue;
    if (totalUs(c, i) > threshold) {
      latencies[a] = totalUs(c, i);
      outliers[a++] = i;
    } else if (c.outcome[i] === OUTCOME_OK) normal[b++] = i;
  }
  const ok = normal.subarray(0, b);
  const ref = referenceUs(c, ok, n);
  let medians: PhaseMedians | null = null;
  const normalMedians = (): PhaseMedians => (medians ??= normalPhaseMedians(c, ok));
  summary.outliers.referenceUs = ref;
  summary.outliers.modes = modesOf(c, outliers, latencies, ref, normalMedians, sysctls);
  summary.outliers.phases = phasesOf(c, outliers, ok, normalMedians);
  return { outliers, normal: ok };
}

/**
 * The latency an outlier's excess is measured from: the median of the normal
 * (ok, under threshold) transactions. When (almost) every transaction is an
 * outlier (a Nagle stall on each one, say) there is no normal latency to
 * speak of, and the excess is the whole latency (reference 0).
 */
function referenceUs(c: TxnColumns, normal: Uint32Array, outliers: number): number {
  if (normal.length < Math.max(20, 0.01 * (normal.length + outliers))) return 0;
  const v = new Float64Array(normal.length);
  for (let k = 0; k < normal.length; k++) v[k] = totalUs(c, normal[k]);
  return Math.round(nth(v, v.length >> 1));
}

/**
 * Modes of the outliers' latencies, each named for the kernel timer its
 * excess matches, or else for the chain of timers (one per phase) most of
 * its outliers share (phase-timers.ts).
 */
function modesOf(
  c: TxnColumns,
  idx: Uint32Array,
  latencies: Float64Array,
  ref: number,
  normalMedians: () => PhaseMedians,
  sysctls: Record<string, string>,
): Modes {
  const timers = timerConstants(sysctls);
  // a timed-out transaction lasted the run's own timeout, a wait no kernel timer chose: it gets a mode of its
  // own, matched to no timer (a 1.5 s --connect-timeout is otherwise taken for the third RTO, 1.4 s)
  const keep: number[] = [];
  const timedOut: number[] = [];
  for (let k = 0; k < idx.length; k++) (c.outcome[idx[k]] === OUTCOME_TIMEOUT ? timedOut : keep).push(k);
  const modes =
    timedOut.length === 0
      ? timerModes(c, idx, latencies, ref, normalMedians, timers)
      : timerModes(
          c,
          Uint32Array.from(keep, (k) => idx[k]),
          Float64Array.from(keep, (k) => latencies[k]),
          ref,
          normalMedians,
          timers,
        );
  for (const m of modes) {
    m.share = round3(m.count / idx.length);
  }
  if (timedOut.length > 0) {
    const v = timedOut.map((k) => latencies[k]).sort((a, b) => a - b);
    const connect = timedOut.filter((k) => Number.isNaN(c.connectUs[idx[k]])).length;
    modes.push({
      label: `timed out (${connect === timedOut.length ? "the run's --connect-timeout" : connect === 0 ? "the run's --io-timeout" : "the run's --connect-timeout or --io-timeout"}), not a kernel timer: ${formatUs(v[v.length >> 1])}`,
      count: timedOut.length,
      share: round3(timedOut.length / idx.length),
      minUs: Math.round(v[0]),
      medianUs: Math.round(v[v.length >> 1]),
      maxUs: Math.round(v[v.length - 1]),
      timer: null,
    });
  }
  return modes;
}

/** Modes of the outliers that did not time out, named for a timer or a chain of timers (phase-timers.ts). */
function timerModes(
  c: TxnColumns,
  idx: Uint32Array,
  latencies: Float64Array,
  ref: number,
  normalMedians: () => PhaseMedians,
  timers: ReturnType<typeof timerConstants>,
): Modes {
  let medians: PhaseMedians | null = null;
  return findModes(latencies, ref, timers).map((m) => {
    let label = m.label;
    let timer = m.match?.id ?? null;
    if (timer === null) {
      medians ??= normalMedians();
      const members: number[] = [];
      const excess: number[] = [];
      for (let k = 0; k < idx.length; k++)
        if (latencies[k] >= m.minUs && latencies[k] <= m.maxUs) {
          members.push(idx[k]);
          excess.push(latencies[k] - ref);
        }
      const chain = sharedChain(c, members, excess, medians, timers);
      if (chain !== null) {
        timer = chain.id;
        label = `${chain.label}, one per phase (${[...new Set(chain.phases)].join(', ')}): median excess ${formatUs(m.medianExcessUs)}`;
      }
    }
    return {
      label,
      count: m.count,
      share: round3(m.share),
      minUs: Math.round(m.minUs),
      medianUs: Math.round(m.medianUs),
      maxUs: Math.round(m.maxUs),
      timer,
    };
  });
}

function phasesOf(c: TxnColumns, outliers: Uint32Array, normal: Uint32Array, normalMedians: () => PhaseMedians): Phases {
  const p = phaseBreakdown(c, outliers, normal, normalMedians());
  return {
    dominant: p.dominant,
    rows: p.phases.map((r) => ({
      phase: r.phase,
      outliers: r.outliers,
      share: round3(r.share),
      medianExcessUs: Math.round(r.medianExcessUs),
      normalMedianUs: Number.isFinite(r.normalMedianUs) ? Math.round(r.normalMedianUs) : null,
      unfinished: r.unfinished,
    })),
  };
}

/** Modes and phases of a subset of the outliers (those the self-check left). */
function describeSubset(
  c: TxnColumns,
  subset: Uint32Array,
  normal: Uint32Array,
  normalMedians: () => PhaseMedians,
  p50: number,
  sysctls: Record<string, string>,
): { modes: Modes; phases: Phases } {
  const latencies = new Float64Array(subset.length);
  for (let k = 0; k < subset.length; k++) latencies[k] = totalUs(c, subset[k]);
  return { modes: modesOf(c, subset, latencies, p50, normalMedians, sysctls), phases: phasesOf(c, subset, normal, normalMedians) };
}

const STRONGEST = 10;
const MIN_EFFECT = 0.1;

/**
 * Every probe metric in the samples around outliers against the rest of the
 * load. Windows span each outlier; when spans cover most of the load (1 s
 * stalls every second or so) they leave too little to compare with, so only
 * the samples at each outlier's start and end are taken.
 */
function systemState(probes: ProbeData, c: TxnColumns, outliers: Uint32Array): NonNullable<Summary['systemState']> {
  const exclude = (name: string): boolean => name.startsWith('probe.');
  const { consider, windows, mode: window } = comparisonWindows(probes, c, outliers);
  const res = analyzeSystemState(probes, windows.rows, { consider, exclude });
  return {
    window,
    rows: res.rows,
    metrics: res.metrics
      // a tiny effect on a huge sample can still test significant: not evidence
      .filter((m) => m.significant && Math.abs(m.effect) >= MIN_EFFECT)
      .slice(0, STRONGEST)
      .map((m) => ({
        metric: m.metric,
        unit: m.unit,
        effect: Math.round(m.effect * 1000) / 1000,
        qValue: m.qValue,
        outlierMedian: m.outlierMedian,
        normalMedian: m.normalMedian,
        total: m.total,
      })),
  };
}

const round3 = (v: number): number => Math.round(v * 1000) / 1000;
