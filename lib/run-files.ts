import { existsSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { UserError } from './errors.ts';
import type { FaultRecord, RunConfig, RunStatus, Summary, SysctlRecord } from './types.ts';
import { measureEpochOffset, type EpochOffset } from './epoch-offset.ts';
import type { SkippedProbe } from './types.ts';

// The run directory: everything about one run, enough to rebuild the
// report on another machine. Format documented in docs/run-directory.md.
export const SCHEMA_VERSION = 1;
export const TOOL_VERSION = '0.1.0';

/** A comparison's report (reports/comparison.ts writes it; the CLI names it without loading the writer). */
export const COMPARISON_REPORT = 'comparison.md';

export const FILES = {
  manifest: 'run.json',
  transactions: 'transactions.bin',
  server: 'server.bin',
  summary: 'summary.json',
  report: 'report.md',
  command: 'command.txt',
  serverLog: 'server.log',
  clientLog: 'client.log',
  /** stdout and stderr of a --server-cmd server */
  serverCommandLog: 'server-command.log',
  environment: 'environment.json',
} as const;

export interface ProcessRecord {
  role: string;
  pid: number;
  /** Exit code or signal name once it has ended. */
  exit: number | string | null;
}

/** run.json `probes`: what watched the run (harness/observers.ts writes it). */
export interface ObserverSummary {
  skipped: SkippedProbe[];
  notes: string[];
  samples: number;
  /** Kernel events seen (counted in the kernel, those recorded one by one among them). */
  kernelEvents: number | null;
  kernelEventsByKind: Record<string, number>;
  /** Kernel events recorded one by one (absent in older runs, which recorded every event). */
  kernelEventsRecorded?: number;
  /** CPU of the probe process, in percent of one core. */
  overheadPct: number | null;
}

/** run.json */
export interface RunManifest {
  schemaVersion: number;
  tool: 'sockspike';
  version: string;
  /** The command line as typed, and a normalised one that reproduces the run. */
  argv: string[];
  reproduce: string;
  startedAt: string;
  /** CLOCK_MONOTONIC ns at the run's start (decimal string: exceeds 2^53). */
  t0Ns: string;
  /** Date.now() at t0, to map run time to wall-clock time. */
  wallMsAtT0: number;
  /** Unix epoch ns minus CLOCK_MONOTONIC ns, measured at the start (maps epoch-stamped logs onto t0; absent in older runs). */
  clockOffset?: EpochOffset;
  /** ns since t0 when the workload stopped. */
  endNs: number | null;
  status: RunStatus;
  stopReason: string | null;
  config: RunConfig;
  files: { transactions: string[]; server: string[] } & Record<string, unknown>;
  processes: ProcessRecord[];
  /** What the client reported at its end (null: it never finished). */
  workload: {
    firstStartNs: number;
    lastEndNs: number;
    missedStarts: number;
    /** The client's own count, to check the records against. */
    attempted: number;
  } | null;
  /** What watched the run: probes that could not run here, with why; sample counts; overhead. */
  probes?: ObserverSummary;
  /** What the run could not do here (addon missing, ...), one line each. */
  notes: string[];
  /** The kernel side of an experiment: namespace, changed sysctls, injected faults. */
  kernel?: {
    /** The run's own network namespace (null: the host's). */
    netns: string | null;
    sysctls: SysctlRecord[];
    faults: FaultRecord[];
  };
}

/** Write a JSON file atomically, so a reader never sees half of it. */
/**
 * The one reader of a run's summary.json (written by analysis/): the
 * summary, or a UserError naming the file when it is missing or damaged.
 */
export function readSummary(dir: string): Summary {
  const path = join(dir, FILES.summary);
  if (!existsSync(path)) throw new UserError(`${path} is missing: run \`sockspike analyze ${dir}\``);
  let v: unknown;
  try {
    v = JSON.parse(readFileSync(path, 'utf8'));
  } catch {
    throw new UserError(`${path}: corrupt (not JSON); \`sockspike analyze ${dir}\` writes it anew`);
  }
  const s = v as Partial<Summary> | null;
  if (typeof s !== 'object' || s === null || typeof s.transactions !== 'object' || typeof s.outliers !== 'object' || typeof s.latencyUs?.total !== 'object')
    throw new UserError(`${path}: corrupt (not a sockspike summary); \`sockspike analyze ${dir}\` writes it anew`);
  return s as Summary;
}

/** summary.json of a run, or null when it has none (not analysed) or it is damaged. */
export function readSummaryIfAny(dir: string): Summary | null {
  try {
    return readSummary(dir);
  } catch (err) {
    if (err instanceof UserError) return null;
    throw err;
  }
}

export function writeJson(path: string, value: unknown): void {
  writeFileSync(`${path}.tmp`, JSON.stringify(value, null, 2) + '\n');
  renameSync(`${path}.tmp`, path);
}

/** A new manifest for a run starting at t0 (status running); the caller fills in the rest as it goes. */
export function newManifest(init: Pick<RunManifest, 'argv' | 'reproduce' | 'config' | 'files'> & { t0: bigint }): RunManifest {
  return {
    schemaVersion: SCHEMA_VERSION,
    tool: 'sockspike',
    version: TOOL_VERSION,
    argv: init.argv,
    reproduce: init.reproduce,
    startedAt: new Date().toISOString(),
    t0Ns: init.t0.toString(),
    wallMsAtT0: Date.now(),
    clockOffset: measureEpochOffset(),
    endNs: null,
    status: 'running',
    stopReason: null,
    config: init.config,
    files: init.files,
    processes: [],
    workload: null,
    notes: [],
  };
}
