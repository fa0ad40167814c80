import fs from 'node:fs';
import path from 'node:path';
import { errnoCode, UserError } from '../lib/errors.ts';
import {
  BLOCK_HEADER_BYTES,
  BLOCK_MAGIC,
  ENTRY_BYTES,
  FILE_HEADER_BYTES,
  META_FILE,
  META_SCHEMA,
  META_VERSION,
  PROBES_DIR,
  ROW_HEADER_BYTES,
  SAMPLES_FILE,
  SAMPLES_MAGIC,
  SELF_ELD,
  SELF_GC,
  SELF_HEADER_BYTES,
  SELF_MAGIC,
  SELF_PREFIX,
  SELF_RECORD_BYTES,
  SELF_RUN,
  type ProbeColumn,
  type ProbeMeta,
} from './probe-files.ts';

// Reader of the probes stage's files (format in probes/README.md). Decodes
// samples.bin in two passes (count, then fill) into one sparse array pair
// per column; dense Float64Arrays are built on first use, so a run of many
// columns costs memory only for the columns an analysis looks at.
//
// Read rates (meta.json version 2): a column read every Nth sample has a
// value only in the rows where it was read, a counter's being its delta over
// the N samples since its previous read. get() and sparse() give every
// reader of rows the same per-row meaning whatever the rate: a counter's
// delta is spread over the rows it covers in proportion to their dt (so
// sums are exact and a row's rate is the rate over the span, never a spike
// every Nth row and zeros between), a fraction holds its span's share in
// each of those rows, and a gauge has its value in the rows where it was
// read and NaN ("not read") in the others. Rows after a column's last read
// are NaN. raw() and reads() give the values as read, with the span each
// covers (export, and the "samples moved" and peak rates of the report).

export interface SparseColumn {
  /** Row indices holding a value other than `fill` (or NaN). */
  rows: Uint32Array;
  values: Float64Array;
  /** The value of the rows not listed, inside the column's [fromRow, toRow): 0, or NaN for a gauge read every Nth sample. */
  fill: number;
}

/** A column's reads that were not 0 (or were NaN): their rows, values, and the ns each covers (its dt, or its rate's span). */
export interface ColumnReads {
  rows: Uint32Array;
  values: Float64Array;
  spanNs: Float64Array;
}

export interface StallMonitorData {
  role: string;
  pid: number;
  file: string;
  resolutionNs: number;
  intervalNs: number;
  /** Event-loop delay per interval, ns (how late a timer armed every resolutionNs fired); ticks: how many fired. */
  eld: { t: Float64Array; dt: Float64Array; mean: Float64Array; max: Float64Array; min: Float64Array; ticks: Float64Array };
  /** monitorEventLoopDelay over the whole run (ns over the resolution); null if the process did not stop cleanly. */
  run: { count: number; mean: number; p50: number; p99: number; max: number; min: number } | null;
  /** GC pauses: start (ns since t0), duration (ns), kind (perf_hooks constants.NODE_PERFORMANCE_GC_*). */
  gc: { start: Float64Array; duration: Float64Array; kind: Float64Array };
  /** The file ended inside a record (the process died while writing). */
  truncated: boolean;
}

export interface ProbeData {
  runDir: string;
  meta: ProbeMeta;
  rows: number;
  /** Sample times, ns since t0. */
  t: Float64Array;
  /** Interval each sample covers (t - previous t), ns. */
  dt: Float64Array;
  columns: ProbeColumn[];
  /** The file ended mid-block: the sampler was killed; rows hold what was complete. */
  truncated: boolean;
  has(name: string): boolean;
  /** Dense values of a column, one per row (NaN where it had none; read rates spread, above), or null if no such column. */
  get(name: string): Float64Array | null;
  sparse(name: string): SparseColumn | null;
  /** Every how many samples the column was read (1 for version 1 files). */
  every(name: string): number;
  /** Dense values as read: NaN in rows where the column was not read. The same as get() for a column read every sample. */
  raw(name: string): Float64Array | null;
  /** The reads of a column that were not 0, with the span each covers (for peak rates and "samples moved"). */
  reads(name: string): ColumnReads | null;
  self: StallMonitorData[];
}

const fail = (file: string, what: string): never => {
  throw new UserError(`${file}: ${what}`);
};

function readMeta(runDir: string): ProbeMeta {
  const file = path.join(runDir, PROBES_DIR, META_FILE);
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (err) {
    const code = errnoCode(err);
    if (code === 'ENOENT') fail(file, 'missing: this run directory has no probe samples (were probes skipped?)');
    fail(file, `cannot be read (${code ?? String(err)})`);
  }
  let meta: ProbeMeta;
  try {
    meta = JSON.parse(text!) as ProbeMeta;
  } catch {
    return fail(file, 'corrupt (not JSON)');
  }
  if (meta?.schema !== META_SCHEMA) fail(file, 'is not a sockspike probes meta file');
  if (meta.version > META_VERSION) fail(file, `has format version ${meta.version}; this sockspike reads up to ${META_VERSION}: upgrade sockspike`);
  if (!Array.isArray(meta.columns) || typeof meta.samples?.file !== 'string') fail(file, 'corrupt (no column list)');
  return meta;
}

/** Read a run's probe samples and stall-monitor files. UserError on a missing or corrupt file. */
export function readProbes(runDir: string): ProbeData {
  // The analysis and then the report's pictures and sections read the same
  // run in one process: decode it once (readers never write into ProbeData).
  const key = probesKey(runDir);
  if (lastProbes !== null && key !== null && lastProbes.key === key) return lastProbes.data;
  const data = readProbesNow(runDir);
  lastProbes = key === null ? null : { key, data };
  return data;
}

let lastProbes: { key: string; data: ProbeData } | null = null;

/** The identity of a run's probe files (meta.json, samples.bin, the folder's listing), or null when one cannot be seen. */
function probesKey(runDir: string): string | null {
  const dir = path.join(runDir, PROBES_DIR);
  const parts: string[] = [];
  for (const p of [dir, path.join(dir, META_FILE), path.join(dir, SAMPLES_FILE)]) {
    try {
      const st = fs.statSync(p);
      parts.push(`${p}:${st.size}:${st.mtimeMs}:${st.ino}`);
    } catch {
      return null;
    }
  }
  return parts.join('|');
}

function readProbesNow(runDir: string): ProbeData {
  const meta = readMeta(runDir);
  const file = path.join(runDir, PROBES_DIR, meta.samples.file);
  let buf: Buffer;
  try {
    buf = fs.readFileSync(file);
  } catch (err) {
    return fail(file, errnoCode(err) === 'ENOENT' ? 'missing (probes/meta.json names it)' : `cannot be read (${errnoCode(err) ?? String(err)})`);
  }
  if (buf.length < FILE_HEADER_BYTES || buf.toString('latin1', 0, 8) !== SAMPLES_MAGIC) fail(file, 'corrupt (not a sockspike samples file)');
  const ncols = meta.columns.length;
  const counts = new Uint32Array(ncols);
  let rows = 0;
  let truncated = false;
  // Pass 1: validate the framing, count rows and entries per column.
  let pos = FILE_HEADER_BYTES;
  let blocks = 0;
  while (pos < buf.length) {
    if (pos + BLOCK_HEADER_BYTES > buf.length) {
      truncated = true;
      break;
    }
    if (buf.readUInt32LE(pos) !== BLOCK_MAGIC) fail(file, `corrupt (block ${blocks} at byte ${pos}: bad marker)`);
    const nrows = buf.readUInt32LE(pos + 4);
    const bytes = buf.readUInt32LE(pos + 8);
    const end = pos + BLOCK_HEADER_BYTES + bytes;
    if (end > buf.length) {
      truncated = true;
      break;
    }
    let p = pos + BLOCK_HEADER_BYTES;
    for (let r = 0; r < nrows; r++) {
      if (p + ROW_HEADER_BYTES > end) fail(file, `corrupt (block ${blocks}: rows overrun the block)`);
      const n = buf.readUInt16LE(p + 16);
      p += ROW_HEADER_BYTES;
      if (p + n * ENTRY_BYTES > end) fail(file, `corrupt (block ${blocks}: rows overrun the block)`);
      for (let i = 0; i < n; i++, p += ENTRY_BYTES) {
        const c = buf.readUInt16LE(p);
        if (c >= ncols) fail(file, `corrupt (column ${c} not in meta.json, which lists ${ncols})`);
        counts[c]++;
      }
    }
    if (p !== end) fail(file, `corrupt (block ${blocks}: ${end - p} stray bytes)`);
    rows += nrows;
    blocks++;
    pos = end;
  }
  if (meta.complete && meta.rows !== null && rows !== meta.rows) {
    fail(file, `corrupt (holds ${rows} rows, meta.json says ${meta.rows})`);
  }
  // Pass 2: fill.
  const t = new Float64Array(rows);
  const dt = new Float64Array(rows);
  const stored: SparseColumn[] = meta.columns.map((_, c) => ({ rows: new Uint32Array(counts[c]), values: new Float64Array(counts[c]), fill: 0 }));
  const fill = new Uint32Array(ncols);
  pos = FILE_HEADER_BYTES;
  let row = 0;
  for (let b = 0; b < blocks; b++) {
    const nrows = buf.readUInt32LE(pos + 4);
    let p = pos + BLOCK_HEADER_BYTES;
    for (let r = 0; r < nrows; r++, row++) {
      t[row] = buf.readDoubleLE(p);
      dt[row] = buf.readDoubleLE(p + 8);
      const n = buf.readUInt16LE(p + 16);
      p += ROW_HEADER_BYTES;
      for (let i = 0; i < n; i++, p += ENTRY_BYTES) {
        const c = buf.readUInt16LE(p);
        const k = fill[c]++;
        stored[c].rows[k] = row;
        stored[c].values[k] = buf.readDoubleLE(p + 2);
      }
    }
    pos = p;
  }
  const index = new Map(meta.columns.map((c, i) => [c.name, i]));
  const everyOf = (c: number): number => {
    const n = meta.columns[c].every ?? 1;
    return n > 1 && index.has(spanColumnName(n)) ? n : 1;
  };
  // The rows where each rate was read: those holding its span column.
  const readRows = new Map<number, Uint32Array>();
  const readsOf = (n: number): Uint32Array => {
    let r = readRows.get(n);
    if (!r) {
      const s = stored[index.get(spanColumnName(n)) as number];
      r = s.rows.filter((_, i) => s.values[i] > 0);
      readRows.set(n, r);
    }
    return r;
  };
  const perRow: (SparseColumn | null)[] = meta.columns.map((_, c) => (everyOf(c) === 1 ? stored[c] : null));
  const sparseOf = (c: number): SparseColumn => {
    let s = perRow[c];
    if (!s) {
      s = spread(meta.columns[c], stored[c], readsOf(everyOf(c)), dt, rows);
      perRow[c] = s;
    }
    return s;
  };
  const dense = new Map<number, Float64Array>();
  const get = (name: string): Float64Array | null => {
    const c = index.get(name);
    if (c === undefined) return null;
    let d = dense.get(c);
    if (!d) {
      const s = sparseOf(c);
      d = new Float64Array(rows);
      const col = meta.columns[c];
      const to = Math.min(rows, col.toRow ?? rows);
      const from = Math.min(col.fromRow, rows);
      d.fill(NaN, 0, from);
      if (s.fill !== 0) d.fill(s.fill, from, to);
      d.fill(NaN, to);
      for (let i = 0; i < s.rows.length; i++) d[s.rows[i]] = s.values[i];
      dense.set(c, d);
    }
    return d;
  };
  const spanAt = new Map<number, Map<number, number>>();
  const spansOf = (n: number): Map<number, number> => {
    let m = spanAt.get(n);
    if (!m) {
      const span = stored[index.get(spanColumnName(n)) as number];
      m = new Map();
      for (let i = 0; i < span.rows.length; i++) m.set(span.rows[i], span.values[i]);
      spanAt.set(n, m);
    }
    return m;
  };
  const reads = (name: string): ColumnReads | null => {
    const c = index.get(name);
    if (c === undefined) return null;
    const n = everyOf(c);
    const s = stored[c];
    const spans = n === 1 ? null : spansOf(n);
    return { rows: s.rows, values: s.values, spanNs: Float64Array.from(s.rows, (r) => (spans === null ? dt[r] : (spans.get(r) ?? NaN))) };
  };
  return {
    runDir,
    meta,
    rows,
    t,
    dt,
    columns: meta.columns,
    truncated,
    has: (name) => index.has(name),
    get,
    sparse: (name) => {
      const c = index.get(name);
      return c === undefined ? null : sparseOf(c);
    },
    every: (name) => {
      const c = index.get(name);
      return c === undefined ? 1 : everyOf(c);
    },
    raw: (name) => {
      const c = index.get(name);
      if (c === undefined) return null;
      const n = everyOf(c);
      if (n === 1) return get(name);
      const col = meta.columns[c];
      const d = new Float64Array(rows).fill(NaN);
      const to = Math.min(rows, col.toRow ?? rows);
      for (const r of readsOf(n)) if (r >= col.fromRow && r < to) d[r] = 0;
      const s = stored[c];
      for (let i = 0; i < s.rows.length; i++) d[s.rows[i]] = s.values[i];
      return d;
    },
    reads,
    self: readStallMonitors(runDir),
  };
}

/** The span column of a rate read every n samples. */
export const spanColumnName = (n: number): string => `probe.every${n}.dt_ns`;

/**
 * A column read every Nth sample, row by row (see the top of this file):
 * stored holds its values in the rows where it was read (0 not stored),
 * reads the rows where its rate was read, ascending.
 */
export function spread(col: ProbeColumn, stored: SparseColumn, reads: Uint32Array, dt: Float64Array, rows: number): SparseColumn {
  const from = Math.min(col.fromRow, rows);
  const to = Math.min(rows, col.toRow ?? rows);
  const gauge = col.kind === 'gauge';
  const counter = col.kind === 'counter';
  // pass 1: how many entries; pass 2: fill (typed arrays, no per-entry allocation)
  let n = 0;
  for (let pass = 0; pass < 2; pass++) {
    const outRows = pass === 1 ? new Uint32Array(n) : null;
    const outValues = pass === 1 ? new Float64Array(n) : null;
    let k = 0;
    let j = 0;
    let prev = -1;
    for (let i = 0; i < reads.length; i++) {
      const r = reads[i];
      while (j < stored.rows.length && stored.rows[j] < r) j++;
      const v = j < stored.rows.length && stored.rows[j] === r ? stored.values[j] : 0;
      const lo = Math.max(prev + 1, from);
      const hi = Math.min(r, to - 1);
      prev = r;
      if (gauge) {
        if (r >= from && r < to) {
          if (outRows !== null && outValues !== null) {
            outRows[k] = r;
            outValues[k] = v;
          }
          k++;
        }
        continue;
      }
      if (v === 0 || hi < lo) continue;
      if (outRows === null || outValues === null) {
        k += hi - lo + 1;
        continue;
      }
      let span = 0;
      for (let q = lo; q <= hi; q++) span += dt[q];
      for (let q = lo; q <= hi; q++) {
        outRows[k] = q;
        // a counter's delta shared by dt; a fraction is already the span's share; NaN stays NaN
        outValues[k] = counter && v === v ? (span > 0 ? (v * dt[q]) / span : q === hi ? v : 0) : v;
        k++;
      }
    }
    if (!gauge) {
      // after the last read: not read
      for (let q = Math.max(prev + 1, from); q < to; q++) {
        if (outRows !== null && outValues !== null) {
          outRows[k] = q;
          outValues[k] = NaN;
        }
        k++;
      }
    }
    if (outRows !== null && outValues !== null) return { rows: outRows, values: outValues, fill: gauge ? NaN : 0 };
    n = k;
  }
  throw new Error('unreachable');
}

/** Every stall-monitor file of the run (probes/self-<role>.<pid>.bin). */
export function readStallMonitors(runDir: string): StallMonitorData[] {
  const dir = path.join(runDir, PROBES_DIR);
  let names: string[];
  try {
    names = fs
      .readdirSync(dir)
      .filter((n) => n.startsWith(SELF_PREFIX) && n.endsWith('.bin'))
      .sort();
  } catch {
    return [];
  }
  return names.map((name) => readSelfFile(path.join(dir, name)));
}

export function readSelfFile(file: string): StallMonitorData {
  const buf = fs.readFileSync(file);
  if (buf.length < SELF_HEADER_BYTES || buf.toString('latin1', 0, 8) !== SELF_MAGIC) fail(file, 'corrupt (not a sockspike stall-monitor file)');
  const pid = buf.readUInt32LE(12);
  const m = /^self-(.*)\.(\d+)\.bin$/.exec(path.basename(file));
  const n = Math.floor((buf.length - SELF_HEADER_BYTES) / SELF_RECORD_BYTES);
  let neld = 0;
  let ngc = 0;
  for (let i = 0; i < n; i++) {
    const type = buf.readDoubleLE(SELF_HEADER_BYTES + i * SELF_RECORD_BYTES);
    if (type === SELF_ELD) neld++;
    else if (type === SELF_GC) ngc++;
    else if (type !== SELF_RUN) fail(file, `corrupt (record ${i} has type ${type})`);
  }
  const f = (k: number): Float64Array => new Float64Array(k);
  const eld = { t: f(neld), dt: f(neld), mean: f(neld), max: f(neld), min: f(neld), ticks: f(neld) };
  const gc = { start: f(ngc), duration: f(ngc), kind: f(ngc) };
  let run: StallMonitorData['run'] = null;
  let e = 0;
  let g = 0;
  for (let i = 0; i < n; i++) {
    const p = SELF_HEADER_BYTES + i * SELF_RECORD_BYTES;
    const at = (k: number): number => buf.readDoubleLE(p + 8 * k);
    const type = at(0);
    if (type === SELF_ELD) {
      eld.t[e] = at(1);
      eld.dt[e] = at(2);
      eld.mean[e] = at(3);
      eld.max[e] = at(4);
      eld.min[e] = at(5);
      eld.ticks[e] = at(6);
      e++;
    } else if (type === SELF_GC) {
      gc.start[g] = at(1);
      gc.duration[g] = at(2);
      gc.kind[g] = at(3);
      g++;
    } else {
      run = { count: at(2), mean: at(3), p50: at(4), p99: at(5), max: at(6), min: at(7) };
    }
  }
  return {
    role: m ? m[1] : 'unknown',
    pid,
    file: path.relative(path.dirname(path.dirname(file)), file),
    resolutionNs: buf.readUInt32LE(16),
    intervalNs: buf.readUInt32LE(20) * 1e3,
    eld,
    gc,
    run,
    truncated: (buf.length - SELF_HEADER_BYTES) % SELF_RECORD_BYTES !== 0,
  };
}

/** A process's CPU (utime + stime of proc.<key>) as a share of one core over the time it was sampled; null without its columns. */
export function processCpuShare(d: ProbeData, key: string): { share: number; spanNs: number } | null {
  const u = d.get(`proc.${key}.utime`);
  const s = d.get(`proc.${key}.stime`);
  if (u === null || s === null) return null;
  let cpu = 0;
  let span = 0;
  for (let r = 0; r < d.rows; r++) {
    const x = u[r] + s[r];
    if (x !== x) continue;
    cpu += x * d.dt[r];
    span += d.dt[r];
  }
  return span > 0 ? { share: cpu / span, spanNs: span } : null;
}

/**
 * CPU of sockspike's own processes besides the client and server (meta.json
 * processes marked own: the orchestrator, the probe process, bpftrace), each
 * over the time it was sampled, and their sum. null when none was sampled
 * (runs recorded before version 2).
 */
export function ownProcessesCpu(d: ProbeData): { total: number; processes: { role: string; pid: number; share: number }[] } | null {
  const processes: { role: string; pid: number; share: number }[] = [];
  for (const p of d.meta.processes) {
    if (p.own !== true) continue;
    const c = processCpuShare(d, p.key);
    if (c !== null) processes.push({ role: p.role, pid: p.pid, share: c.share });
  }
  return processes.length === 0 ? null : { total: processes.reduce((a, p) => a + p.share, 0), processes };
}
