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

export interface SparseColumn {
  /** Row indices holding a non-zero value (or NaN). */
  rows: Uint32Array;
  values: Float64Array;
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
  /** Dense values of a column (NaN where it had none), or null if no such column. */
  get(name: string): Float64Array | null;
  sparse(name: string): SparseColumn | null;
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
  const sparse: SparseColumn[] = meta.columns.map((_, c) => ({ rows: new Uint32Array(counts[c]), values: new Float64Array(counts[c]) }));
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
        sparse[c].rows[k] = row;
        sparse[c].values[k] = buf.readDoubleLE(p + 2);
      }
    }
    pos = p;
  }
  const index = new Map(meta.columns.map((c, i) => [c.name, i]));
  const dense = new Map<number, Float64Array>();
  const get = (name: string): Float64Array | null => {
    const c = index.get(name);
    if (c === undefined) return null;
    let d = dense.get(c);
    if (!d) {
      d = new Float64Array(rows);
      const col = meta.columns[c];
      const to = Math.min(rows, col.toRow ?? rows);
      d.fill(NaN, 0, Math.min(col.fromRow, rows));
      d.fill(NaN, to);
      const s = sparse[c];
      for (let i = 0; i < s.rows.length; i++) d[s.rows[i]] = s.values[i];
      dense.set(c, d);
    }
    return d;
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
      return c === undefined ? null : sparse[c];
    },
    self: readStallMonitors(runDir),
  };
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
