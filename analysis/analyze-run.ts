import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { FILES, writeJson } from '../lib/rundir.ts';
import { OUTCOME_OK, type Summary } from '../lib/types.ts';
import { findModes } from './modes.ts';
import { phaseBreakdown } from './phases.ts';
import { readManifest, readServer, readTransactions, type TxnColumns } from './read-run.ts';
import { summarize, totalUs } from './summarize.ts';
import { timerConstants } from './timers.ts';

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
  describeOutliers(summary, c, readSysctls(dir));
  writeJson(join(dir, FILES.summary), summary);
  return summary;
}

/** The run's sysctls from environment.json (timer constants follow them); {} when absent. */
function readSysctls(dir: string): Record<string, string> {
  const path = join(dir, FILES.environment);
  if (!existsSync(path)) return {};
  try {
    const env = JSON.parse(readFileSync(path, 'utf8')) as { sysctls?: Record<string, string> };
    return env.sysctls ?? {};
  } catch {
    return {};
  }
}

/** Modes of the outliers (named after the timers of this run's kernel settings) and the phase that holds their time. */
function describeOutliers(summary: Summary, c: TxnColumns, sysctls: Record<string, string>): void {
  const threshold = summary.outliers.thresholdUs;
  let n = 0;
  for (let i = 0; i < c.n; i++) if (totalUs(c, i) > threshold) n++;
  const outliers = new Uint32Array(n);
  const normal = new Uint32Array(c.n - n);
  const latencies = new Float64Array(n);
  let a = 0;
  let b = 0;
  for (let i = 0; i < c.n; i++) {
    if (totalUs(c, i) > threshold) {
      latencies[a] = totalUs(c, i);
      outliers[a++] = i;
    } else if (c.outcome[i] === OUTCOME_OK) normal[b++] = i;
  }
  const modes = findModes(latencies, summary.latencyUs.total.p50, timerConstants(sysctls));
  summary.outliers.modes = modes.map((m) => ({
    label: m.label,
    count: m.count,
    share: round3(m.share),
    minUs: Math.round(m.minUs),
    medianUs: Math.round(m.medianUs),
    maxUs: Math.round(m.maxUs),
    timer: m.match?.id ?? null,
  }));
  const p = phaseBreakdown(c, outliers, normal.subarray(0, b));
  summary.outliers.phases = {
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

const round3 = (v: number): number => Math.round(v * 1000) / 1000;
