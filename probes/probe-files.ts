// On-disk format of the probes stage, shared by the writer (sampler) and
// the reader. Documented in probes/README.md; bump the versions (and the
// magics) when a layout changes.

/** Under the run directory. */
import type { SkippedProbe } from '../lib/types.ts';

export type { SkippedProbe };

export const PROBES_DIR = 'probes';
export const META_FILE = 'meta.json';
export const SAMPLES_FILE = 'samples.bin';
/** The busiest other processes, a line every couple of seconds (other-processes.ts). */
export const OTHERS_FILE = 'others.ndjson';

export const META_SCHEMA = 'sockspike-probes';
/** 2: read rates (columns[].every, rates, span columns probe.everyN.dt_ns); processes[].own. Version 1 files read as every column read every sample. */
export const META_VERSION = 2;

/** samples.bin: 16-byte file header, then blocks of rows. */
export const SAMPLES_MAGIC = 'SSPKPRB1';
export const SAMPLES_VERSION = 1;
export const FILE_HEADER_BYTES = 16; // magic[8] u32 version u32 reserved
/** Block header: u32 BLOCK_MAGIC, u32 rows, u32 payload bytes. */
export const BLOCK_MAGIC = 0x42505353; // "SSPB" little-endian
export const BLOCK_HEADER_BYTES = 12;
/** Row: f64 t (ns since t0), f64 dt (ns), u16 n, then n x (u16 column, f64 value). */
export const ROW_HEADER_BYTES = 18;
export const ENTRY_BYTES = 10;
export const MAX_COLUMNS = 65535;

export type ColumnKind = 'counter' | 'gauge' | 'fraction';

export interface ProbeColumn {
  name: string;
  /**
   * counter: delta since the previous sample (the first value after the
   * column appears is NaN); gauge: the value at the sample; fraction: share
   * of the interval (CPU time / dt; for the all-CPU line, of all CPUs).
   */
  kind: ColumnKind;
  unit: string;
  /** Which probe produced it (stat, netstat, proc.client, ...). */
  source: string;
  /** First row holding a value; earlier rows read as NaN. */
  fromRow: number;
  /** Row from which on it holds no values (its process exited); null: to the end. */
  toRow: number | null;
  /**
   * Read every Nth sample (absent in version 1 files: 1). With N > 1 the
   * column has a value only in the rows where its rate group was read (the
   * rows where probe.everyN.dt_ns has one); a counter's value there is its
   * delta since the group's previous read, a fraction its share of that span.
   */
  every?: number;
}

/** meta.json readRule: what a row means for a column read every Nth sample. */
export const READ_RULE =
  "A column with every = N > 1 was read only in the rows where its rate's span column (probe.everyN.dt_ns) has a value; " +
  'there a counter holds its delta since its previous read (over that span, in ns), a fraction its share of the span, a gauge its value; ' +
  'in the other rows it was not read (nothing stored: not 0). The last row reads every rate.';

/** One read rate of meta.json: what is read every Nth sample. */
export interface ProbeRate {
  every: number;
  /** every x intervalNs */
  periodNs: number;
  /** The span column of this rate (null for every = 1): in the rows where it was read, the ns its counters cover. */
  spanColumn: string | null;
  /** What is read at this rate: files and processes. */
  reads: string[];
}

export interface ProbeProcess {
  role: string;
  pid: number;
  /** Prefix of its columns: proc.<key>.* */
  key: string;
  addedNs: number;
  exitedNs: number | null;
  /** One of sockspike's own processes besides the client and server (orchestrator, probes, bpftrace): CPU only, read slowly. */
  own?: boolean;
}

export interface JitterStats {
  /** How late each sample was against its slot (t - scheduled), ns. */
  meanNs: number;
  p50Ns: number;
  p99Ns: number;
  maxNs: number;
  /** Slots skipped because a sample was more than one interval late. */
  missedSlots: number;
}

export interface ProbeOverhead {
  /** CPU of the probe process per second of sampling, as a fraction of one core. */
  cpuPerSecond: number;
  userPerSecond: number;
  systemPerSecond: number;
  /** Span measured (first to last sample), ns. */
  wallNs: number;
  /** Time to read and parse all probes for one sample, ns. */
  meanSampleNs: number;
  maxSampleNs: number;
  /** CPU spent starting up (loading code, first layouts), ns. */
  startupCpuNs: number;
}

export interface ProbeResult {
  samples: number;
  intervalNs: number;
  columns: number;
  bytes: number;
  jitter: JitterStats;
  overhead: ProbeOverhead;
  skipped: SkippedProbe[];
  processes: ProbeProcess[];
  /** Files written, relative to the run directory. */
  files: string[];
  /** Why sampling stopped: 'stop', 'parent-gone', 'error: ...'. */
  stopReason: string;
}

/** probes/meta.json */
export interface ProbeMeta {
  schema: typeof META_SCHEMA;
  version: number;
  samples: { file: string; magic: string; version: number };
  /** CLOCK_MONOTONIC ns of the run's t0 (decimal string). */
  t0Ns: string;
  intervalNs: number;
  /** USER_HZ of /proc/stat and /proc/PID/stat (jiffies per second). */
  clkTck: number;
  /** CPUs online at start (cpuN lines of /proc/stat). */
  cpus: number;
  procRoot: string;
  netns: string | null;
  /** Time of the baseline read (row 0's deltas start here), ns since t0. */
  baselineNs: number;
  columns: ProbeColumn[];
  /** Version 2: the read rates, every sample first (absent in version 1: everything every sample). */
  rates?: ProbeRate[];
  /** Version 2: what a row holds for a column read every Nth sample, in one sentence (READ_RULE). */
  readRule?: string;
  /** Values that do not change (Tcp.RtoMin, ...), read at start. */
  constants: Record<string, number>;
  skipped: SkippedProbe[];
  processes: ProbeProcess[];
  listener: { pid: number; fd: number; port: number | null; how: string } | null;
  /** Things worth knowing about this recording, one line each. */
  notes: string[];
  /** false while sampling (or if the sampler died): rows then unknown. */
  complete: boolean;
  rows: number | null;
  result: ProbeResult | null;
}

/** Self-monitor files: probes/self-<role>.<pid>.bin */
export const SELF_PREFIX = 'self-';
export const SELF_MAGIC = 'SSPKSLF1';
export const SELF_VERSION = 1;
/** magic[8] u32 version u32 pid u32 resolution ns u32 interval us */
export const SELF_HEADER_BYTES = 24;
/** Records: 8 x f64. */
export const SELF_RECORD_BYTES = 64;
/**
 * [type=1, t end of interval, dt, mean, max, min, ticks, 0]: event-loop delay
 * in one interval, ns: how late a timer armed every resolution ns fired.
 */
export const SELF_ELD = 1;
/** [type=2, t start, duration, kind, flags, 0, 0, 0]: one GC pause, ns (kind: perf_hooks NODE_PERFORMANCE_GC_*). */
export const SELF_GC = 2;
/** [type=3, t, count, mean, p50, p99, max, min]: monitorEventLoopDelay over the whole run, ns over the resolution. */
export const SELF_RUN = 3;
