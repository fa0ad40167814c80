import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type * as vegaLite from 'vega-lite';
import { loadStartNs, readManifest, readTransactions, type TxnColumns } from '../analysis/read-run.ts';
import { readSummaryIfAny } from '../lib/run-files.ts';
import { OUTCOME_INDEX, OUTCOME_OK, OUTCOME_TIMEOUT } from '../lib/types.ts';
import { META_FILE, PROBES_DIR } from '../probes/probe-files.ts';
import { readProbes, type ProbeData } from '../probes/read.ts';
import { txnStartNs } from '../analysis/summarize.ts';
import { formatUs } from '../lib/format.ts';
import { warmupOf } from '../analysis/warmup.ts';

// The report's timeline picture (timeline.svg beside report.md): on one time
// axis (seconds into the load: 0 is the first transaction's intended start;
// start-up before it is left out), transaction latency with outliers and failures
// marked, the CPU breakdown, and the key counters that moved, with a faint
// rule at each outlier's start across every panel. Rendered headless with
// vega-lite -> vega -> SVG (no canvas, no browser, no external fonts).
//
// Size is bounded whatever the run's length: every outlier and failure is
// kept (thinned to one per pixel cell only beyond MAX_MARKED), normal
// transactions are kept as they are up to MAX_NORMAL, else reduced to the
// min, median and max per time bucket; probe samples are averaged into at
// most PROBE_BUCKETS intervals.

export const TIMELINE_FILE = 'timeline.svg';

const WIDTH = 860;

/** The look every sockspike picture shares: self-contained SVG, no aria text, plain fonts. */
export const CHART_CONFIG = {
  aria: false,
  font: 'sans-serif',
  background: 'white',
  view: { stroke: '#dddddd' },
  // legible where a code host shows the picture (~900 px wide, a little below its own size)
  axis: { labelFontSize: 12, titleFontSize: 12 },
  legend: { labelFontSize: 12, labelLimit: 400, symbolSize: 70 },
  title: { fontSize: 16, subtitleFontSize: 12 },
};
const LAT_HEIGHT = 250;
const PANEL_HEIGHT = 120;
const COUNTER_HEIGHT = 60;
/** Panel titles. */
const PANEL_FONT = 13;
const COUNTER_COLORS = ['#1b9e77', '#d95f02', '#7570b3', '#e7298a'];
/** Normal transactions drawn one by one up to this many. */
export const MAX_NORMAL = 8_000;
/** Beyond this many normal transactions: min, median and max per bucket. */
export const NORMAL_BUCKETS = 1000;
/** Outliers + failures drawn one by one up to this many, then one per pixel cell and kind. */
export const MAX_MARKED = 12_000;
const PROBE_BUCKETS = 900;

export const AXIS = {
  time: 'time into the load (s)',
  latency: 'transaction latency (ms, log scale)',
  cpu: 'CPU, % of all CPUs',
  counters: 'per s',
  tw: 'sockets',
  pressure: 'stalled, % of time',
} as const;

const CPU_STATES: [string, string][] = [
  ['cpu.user', 'user'],
  ['cpu.system', 'system'],
  ['cpu.softirq', 'softirq'],
  ['cpu.irq', 'irq'],
  ['cpu.iowait', 'iowait'],
  ['cpu.steal', 'steal'],
];
const COUNTERS = ['TcpExt.ListenOverflows', 'TcpExt.TCPSynRetrans', 'Tcp.RetransSegs', 'Tcp.OutRsts'];
const TW = 'sockstat.TCP.tw';
/** /proc/pressure "some" counters (stall time, us, per row). */
const PRESSURE: [string, string][] = [
  ['pressure.cpu.some', 'cpu some'],
  ['pressure.io.some', 'io some'],
  ['pressure.memory.some', 'memory some'],
];
const PRESSURE_COLORS = ['#d62728', '#1f77b4', '#2ca02c'];

export type PointKind = 'normal' | 'normal (bucket min/median/max)' | 'outlier' | 'timeout' | 'error';
const KINDS: PointKind[] = ['normal', 'normal (bucket min/median/max)', 'outlier', 'timeout', 'error'];
const KIND_COLORS = ['#9ab0c8', '#6f8fb0', '#e4572e', '#7b2cbf', '#111111'];
const KIND_SHAPES = ['circle', 'circle', 'circle', 'triangle-up', 'cross'];

export interface TimelinePoint {
  /** Start, s since t0. */
  t: number;
  /** Total latency, ms (at least 1 us, for the log scale). */
  ms: number;
  kind: PointKind;
}

export interface TimelineInput {
  txn: TxnColumns;
  /** Total latency above which a transaction is an outlier (summary.json outliers.thresholdUs); Infinity: none. */
  thresholdUs: number;
  probes?: ProbeData | null;
  /** Injected faults' actual windows, s since t0 (drawn as bands). */
  faults?: { label: string; from: number; to: number }[];
  /** The load's start, ns since t0 (analysis/read-run.ts loadStartNs): the time axis counts from it and leaves out what came before. Default 0. */
  originNs?: number;
  /** The TCP counters are the host's (no network namespace of the run's own): their panels say so. */
  hostWide?: boolean;
  /** Warm-up transactions (analysis/warmup.ts; 1: warm-up): never drawn as outliers. */
  warmup?: Uint8Array;
}

export interface TimelineSpec {
  spec: vegaLite.TopLevelSpec;
  stats: {
    transactions: number;
    outliers: number;
    failures: number;
    /** Points drawn, per kind. */
    drawn: Record<PointKind, number>;
    /** Normal transactions were reduced to per-bucket min/median/max. */
    normalReduced: boolean;
    /** Outliers/failures were thinned to one per pixel cell (there were more than MAX_MARKED). */
    markedThinned: boolean;
    probeRows: number;
    counters: string[];
  };
}

const round = (x: number, digits: number): number => {
  const f = 10 ** digits;
  return Math.round(x * f) / f;
};
/** Latency in ms, rounded to 3 significant-ish digits (keeps the SVG small). */
const msOf = (us: number): number => {
  const v = Math.max(us, 1) / 1e3;
  return Number(v.toPrecision(4));
};

function failureKind(outcome: number): PointKind {
  return outcome === OUTCOME_TIMEOUT || outcome === OUTCOME_INDEX.ETIMEDOUT ? 'timeout' : 'error';
}

/** The latency panel's points: all outliers and failures, normal ones kept or reduced. Deterministic. */
export function latencyPoints(
  c: TxnColumns,
  thresholdUs: number,
  originNs = 0,
  warmup?: Uint8Array,
): { points: TimelinePoint[]; outlierStarts: number[]; stats: Omit<TimelineSpec['stats'], 'probeRows' | 'counters'> } {
  const n = c.n;
  let lo = Infinity;
  let hi = -Infinity;
  let normalCount = 0;
  let outliers = 0;
  let failures = 0;
  const marked: number[] = [];
  for (let i = 0; i < n; i++) {
    const s = txnStartNs(c, i);
    if (s < lo) lo = s;
    if (s > hi) hi = s;
    const total = c.lateUs[i] + c.endUs[i];
    if (c.outcome[i] !== OUTCOME_OK) {
      failures++;
      marked.push(i);
    } else if (total > thresholdUs && warmup?.[i] !== 1) {
      outliers++;
      marked.push(i);
    } else normalCount++;
  }
  const drawn = Object.fromEntries(KINDS.map((k) => [k, 0])) as Record<PointKind, number>;
  const points: TimelinePoint[] = [];
  const startS = (i: number): number => (txnStartNs(c, i) - originNs) / 1e9;
  const totalMs = (i: number): number => msOf(c.lateUs[i] + c.endUs[i]);
  const kindOf = (i: number): PointKind => (c.outcome[i] !== OUTCOME_OK ? failureKind(c.outcome[i]) : 'outlier');
  const span = Math.max(hi - lo, 1);
  const normalReduced = normalCount > MAX_NORMAL;
  if (!normalReduced) {
    for (let i = 0; i < n; i++) {
      if (c.outcome[i] !== OUTCOME_OK || (c.lateUs[i] + c.endUs[i] > thresholdUs && warmup?.[i] !== 1)) continue;
      points.push({ t: round(startS(i), 4), ms: totalMs(i), kind: 'normal' });
    }
  } else {
    // Counting sort of the normal transactions' latencies by time bucket.
    const B = NORMAL_BUCKETS;
    const bucketOf = (i: number): number => Math.min(B - 1, Math.floor(((txnStartNs(c, i) - lo) / span) * B));
    const count = new Uint32Array(B + 1);
    for (let i = 0; i < n; i++) {
      if (c.outcome[i] !== OUTCOME_OK || (c.lateUs[i] + c.endUs[i] > thresholdUs && warmup?.[i] !== 1)) continue;
      count[bucketOf(i) + 1]++;
    }
    for (let b = 0; b < B; b++) count[b + 1] += count[b];
    const fill = count.slice(0, B);
    const lat = new Float64Array(normalCount);
    for (let i = 0; i < n; i++) {
      if (c.outcome[i] !== OUTCOME_OK || (c.lateUs[i] + c.endUs[i] > thresholdUs && warmup?.[i] !== 1)) continue;
      lat[fill[bucketOf(i)]++] = c.lateUs[i] + c.endUs[i];
    }
    const kind: PointKind = 'normal (bucket min/median/max)';
    for (let b = 0; b < B; b++) {
      const a = count[b];
      const z = count[b + 1];
      if (z === a) continue;
      const v = lat.subarray(a, z).sort();
      const t = round((lo - originNs + ((b + 0.5) / B) * span) / 1e9, 4);
      const picks = new Set([0, (v.length - 1) >> 1, v.length - 1]);
      for (const k of picks) points.push({ t, ms: msOf(v[k]), kind });
    }
  }
  let markedThinned = false;
  if (marked.length <= MAX_MARKED) {
    for (const i of marked) points.push({ t: round(startS(i), 4), ms: totalMs(i), kind: kindOf(i) });
  } else {
    // One per (pixel column, ~1/40 decade of latency, kind): looks the same;
    // if that is still too many, every k-th of those.
    markedThinned = true;
    const seen = new Set<string>();
    const kept: number[] = [];
    for (const i of marked) {
      const k = kindOf(i);
      const px = Math.floor(((txnStartNs(c, i) - lo) / span) * WIDTH);
      const py = Math.floor(Math.log10(Math.max(c.lateUs[i] + c.endUs[i], 1)) * 40);
      const key = `${px}:${py}:${k}`;
      if (seen.has(key)) continue;
      seen.add(key);
      kept.push(i);
    }
    const stride = Math.ceil(kept.length / MAX_MARKED);
    for (let j = 0; j < kept.length; j += stride) points.push({ t: round(startS(kept[j]), 4), ms: totalMs(kept[j]), kind: kindOf(kept[j]) });
  }
  for (const p of points) drawn[p.kind]++;
  // Outlier start times for the rules across panels, one per pixel column.
  const cols = new Set<number>();
  const outlierStarts: number[] = [];
  for (const i of marked) {
    if (c.outcome[i] !== OUTCOME_OK && !(c.lateUs[i] + c.endUs[i] > thresholdUs && warmup?.[i] !== 1)) continue;
    const px = Math.floor(((txnStartNs(c, i) - lo) / span) * WIDTH);
    if (cols.has(px)) continue;
    cols.add(px);
    outlierStarts.push(round(startS(i), 4));
  }
  outlierStarts.sort((a, b) => a - b);
  return { points, outlierStarts, stats: { transactions: n, outliers, failures, drawn, normalReduced, markedThinned } };
}

interface ProbeRows {
  cpu: { t: number; state: string; pct: number }[];
  counters: { t: number; counter: string; perS: number }[];
  tw: { t: number; sockets: number }[];
  /** Stall time as % of each interval, per /proc/pressure resource present and non-zero. */
  pressure: { t: number; resource: string; pct: number }[];
  counterNames: string[];
  rows: number;
}

/**
 * Probe samples grouped into at most PROBE_BUCKETS intervals: CPU % (time-weighted), counter rates, TIME_WAIT max.
 * Times in s from `originNs`; samples that end at or before it (start-up) are left out.
 */
export function probeRows(d: ProbeData, originNs = 0): ProbeRows {
  let r0 = 0;
  while (r0 < d.rows && d.t[r0] <= originNs) r0++;
  const rows = d.rows - r0;
  const out: ProbeRows = { cpu: [], counters: [], tw: [], pressure: [], counterNames: [], rows };
  if (rows === 0) return out;
  const start = Math.max(d.t[r0] - d.dt[r0], originNs);
  const end = d.t[d.rows - 1];
  const nb = Math.min(rows, PROBE_BUCKETS);
  const width = Math.max(end - start, 1) / nb;
  // Bucket of each row (by its end time; a row per bucket when there are few rows); start-up rows: none (-1).
  const bucket = new Int32Array(d.rows).fill(-1);
  for (let r = r0; r < d.rows; r++) bucket[r] = nb === rows ? r - r0 : Math.min(nb - 1, Math.max(0, Math.floor((d.t[r] - start) / width)));
  // Covered time per bucket and its start (the first row's interval start, not before the origin).
  const time = new Float64Array(nb);
  const bStart = new Float64Array(nb).fill(NaN);
  for (let r = r0; r < d.rows; r++) {
    const b = bucket[r];
    time[b] += d.dt[r];
    if (Number.isNaN(bStart[b])) bStart[b] = Math.max(d.t[r] - d.dt[r], originNs);
  }
  const ts = (b: number): number => round((bStart[b] - originNs) / 1e9, 4);
  for (const [name, state] of CPU_STATES) {
    const v = d.get(name);
    if (!v) continue;
    const w = new Float64Array(nb);
    const wt = new Float64Array(nb);
    let any = false;
    for (let r = r0; r < d.rows; r++) {
      const x = v[r];
      if (x !== x) continue;
      w[bucket[r]] += x * d.dt[r];
      wt[bucket[r]] += d.dt[r];
      if (x > 0) any = true;
    }
    if (!any && state !== 'user' && state !== 'system') continue;
    for (let b = 0; b < nb; b++) if (wt[b] > 0) out.cpu.push({ t: ts(b), state, pct: round((100 * w[b]) / wt[b], 2) });
  }
  for (const name of COUNTERS) {
    const v = d.get(name);
    if (!v) continue;
    const sum = new Float64Array(nb);
    let any = false;
    for (let r = r0; r < d.rows; r++) {
      const x = v[r];
      if (x !== x) continue;
      sum[bucket[r]] += x;
      if (x !== 0) any = true;
    }
    if (!any) continue;
    const label = name.replace(/^(TcpExt|Tcp)\./, '');
    out.counterNames.push(name);
    for (let b = 0; b < nb; b++) if (time[b] > 0) out.counters.push({ t: ts(b), counter: label, perS: round((sum[b] * 1e9) / time[b], 1) });
  }
  for (const [name, resource] of PRESSURE) {
    const v = d.get(name);
    if (!v) continue;
    // Stall microseconds over the bucket's covered nanoseconds: delta_us * 1e3 / dt_ns * 100.
    const sum = new Float64Array(nb);
    const cov = new Float64Array(nb);
    let any = false;
    for (let r = r0; r < d.rows; r++) {
      const x = v[r];
      if (x !== x) continue;
      sum[bucket[r]] += x;
      cov[bucket[r]] += d.dt[r];
      if (x > 0) any = true;
    }
    if (!any) continue;
    out.counterNames.push(name);
    for (let b = 0; b < nb; b++) if (cov[b] > 0) out.pressure.push({ t: ts(b), resource, pct: round(Math.min(100, (sum[b] * 1e3 * 100) / cov[b]), 2) });
  }
  const tw = d.get(TW);
  if (tw) {
    const max = new Float64Array(nb).fill(NaN);
    let any = false;
    for (let r = r0; r < d.rows; r++) {
      const x = tw[r];
      if (x !== x) continue;
      const b = bucket[r];
      if (!(max[b] >= x)) max[b] = x;
      if (x > 0) any = true;
    }
    if (any) {
      out.counterNames.push(TW);
      for (let b = 0; b < nb; b++) if (!Number.isNaN(max[b])) out.tw.push({ t: ts(b), sockets: max[b] });
    }
  }
  return out;
}

/** The vega-lite spec of the timeline, from columns (pure: no files read). null when there is nothing to draw. */
export function buildTimelineSpec(input: TimelineInput): TimelineSpec | null {
  const { txn, thresholdUs } = input;
  if (txn.n === 0) return null;
  const origin = input.originNs ?? 0;
  const lat = latencyPoints(txn, thresholdUs, origin, input.warmup);
  const probes = input.probes && input.probes.rows > 0 ? probeRows(input.probes, origin) : null;
  // One x domain for every panel.
  let lo = Infinity;
  let hi = -Infinity;
  for (const p of lat.points) {
    if (p.t < lo) lo = p.t;
    if (p.t > hi) hi = p.t;
  }
  if (probes) {
    for (const r of probes.cpu) if (r.t < lo) lo = r.t;
    const d = input.probes!;
    hi = Math.max(hi, (d.t[d.rows - 1] - origin) / 1e9);
  }
  const faults = (input.faults ?? []).map((f) => ({ ...f, from: Math.max(0, f.from - origin / 1e9), to: f.to - origin / 1e9 }));
  for (const f of faults) hi = Math.max(hi, f.from);
  lo = Math.min(0, Math.floor(lo * 10) / 10);
  hi = Math.ceil(hi * 10) / 10;
  if (!(hi > lo)) hi = lo + 1;
  const x = (title: string | null) => ({
    field: 't',
    type: 'quantitative' as const,
    title,
    scale: { domain: [lo, hi], nice: false, zero: false },
    axis: title === null ? { labels: false, ticks: true, title: null } : {},
  });
  const rules = (): object[] =>
    lat.outlierStarts.length === 0
      ? []
      : [
          {
            data: { name: 'outlierStarts' },
            mark: { type: 'rule', color: '#e4572e', opacity: 0.18, strokeWidth: 1 },
            encoding: { x: { field: 't', type: 'quantitative' } },
          },
        ];
  // injected faults: a shaded band over the time each was on, labelled in the latency panel
  const faultBands = (labelled: boolean): object[] =>
    faults.length === 0
      ? []
      : [
          {
            data: { name: 'faults' },
            mark: { type: 'rect', color: '#f2b134', opacity: 0.16 },
            encoding: { x: { field: 'from', type: 'quantitative' }, x2: { field: 'to' } },
          },
          ...(labelled
            ? [
                {
                  data: { name: 'faults' },
                  mark: { type: 'text', align: 'left', baseline: 'top', dx: 3, dy: 3, fontSize: 12, color: '#9a6a00' },
                  encoding: { x: { field: 'from', type: 'quantitative' }, y: { value: 0 }, text: { field: 'label' } },
                },
              ]
            : []),
        ];
  const panels: object[] = [];
  const lastTitle = (i: number, count: number): string | null => (i === count - 1 ? AXIS.time : null);
  const count =
    1 +
    (probes && probes.cpu.length > 0 ? 1 : 0) +
    (probes && probes.pressure.length > 0 ? 1 : 0) +
    (probes ? new Set(probes.counters.map((r) => r.counter)).size : 0) +
    (probes && probes.tw.length > 0 ? 1 : 0);
  let k = 0;
  const presentKinds = KINDS.filter((kind) => lat.stats.drawn[kind] > 0);
  panels.push({
    title: {
      text: `transactions (${lat.stats.transactions} total, ${lat.stats.outliers} outliers above ${formatUs(thresholdUs)}, ${lat.stats.failures} failed)`,
      anchor: 'start',
      fontSize: PANEL_FONT,
    },
    width: WIDTH,
    height: LAT_HEIGHT,
    layer: [
      ...faultBands(true),
      ...rules(),
      {
        data: { name: 'points' },
        mark: { type: 'point', filled: true, size: 9, opacity: 0.7 },
        encoding: {
          x: x(lastTitle(k, count)),
          y: { field: 'ms', type: 'quantitative', title: AXIS.latency, scale: { type: 'log' }, axis: { format: '~g' } },
          color: {
            field: 'kind',
            type: 'nominal',
            title: null,
            scale: { domain: presentKinds, range: presentKinds.map((p) => KIND_COLORS[KINDS.indexOf(p)]) },
            legend: { orient: 'top', direction: 'horizontal' },
          },
          shape: {
            field: 'kind',
            type: 'nominal',
            title: null,
            scale: { domain: presentKinds, range: presentKinds.map((p) => KIND_SHAPES[KINDS.indexOf(p)]) },
            legend: { orient: 'top', direction: 'horizontal' },
          },
          order: { field: 'rank', type: 'quantitative' },
        },
      },
    ],
  });
  k++;
  const datasets: Record<string, object[]> = {
    points: lat.points.map((p) => ({ t: p.t, ms: p.ms, kind: p.kind, rank: KINDS.indexOf(p.kind) })),
    outlierStarts: lat.outlierStarts.map((t) => ({ t })),
    faults: faults.map((f) => ({ ...f, to: Math.min(f.to, hi) })),
  };
  if (probes && probes.cpu.length > 0) {
    const states = CPU_STATES.map(([, s]) => s).filter((s) => probes.cpu.some((r) => r.state === s));
    datasets.cpu = probes.cpu.map((r) => ({ ...r, order: states.indexOf(r.state) }));
    panels.push({
      title: { text: 'CPU breakdown per probe sample', anchor: 'start', fontSize: PANEL_FONT },
      width: WIDTH,
      height: PANEL_HEIGHT,
      layer: [
        ...faultBands(false),
        {
          data: { name: 'cpu' },
          mark: { type: 'area', interpolate: 'step-after', opacity: 0.85, clip: true },
          encoding: {
            x: x(lastTitle(k, count)),
            y: { field: 'pct', type: 'quantitative', stack: 'zero', title: AXIS.cpu, scale: { domain: [0, 100] } },
            color: {
              field: 'state',
              type: 'nominal',
              title: null,
              scale: { domain: states, scheme: 'tableau10' },
              legend: { orient: 'top', direction: 'horizontal' },
            },
            order: { field: 'order', type: 'quantitative' },
          },
        },
        ...rules(),
      ],
    });
    k++;
  }
  if (probes && probes.pressure.length > 0) {
    const resources = PRESSURE.map(([, r]) => r).filter((r) => probes.pressure.some((p) => p.resource === r));
    datasets.pressure = probes.pressure;
    panels.push({
      title: { text: 'pressure stall (/proc/pressure, "some": share of each interval with a task stalled)', anchor: 'start', fontSize: PANEL_FONT, offset: 2 },
      width: WIDTH,
      height: PANEL_HEIGHT,
      layer: [
        ...rules(),
        {
          data: { name: 'pressure' },
          mark: { type: 'line', interpolate: 'step-after', strokeWidth: 1.2, clip: true },
          encoding: {
            x: x(lastTitle(k, count)),
            y: { field: 'pct', type: 'quantitative', title: AXIS.pressure, scale: { domain: [0, 100] }, axis: { tickCount: 3 } },
            color: {
              field: 'resource',
              type: 'nominal',
              title: null,
              scale: { domain: resources, range: resources.map((r) => PRESSURE_COLORS[PRESSURE.findIndex(([, n]) => n === r)]) },
              legend: { orient: 'top', direction: 'horizontal' },
            },
          },
        },
      ],
    });
    k++;
  }
  const counterNames = probes ? [...new Set(probes.counters.map((r) => r.counter))] : [];
  if (probes && counterNames.length > 0) datasets.counters = probes.counters;
  for (const [ci, name] of counterNames.entries()) {
    // One strip per counter, each on its own y scale: their magnitudes differ by orders.
    panels.push({
      title: {
        text: `${name}: events per second${input.hostWide ? " (host-wide: other programs' traffic too)" : ''}`,
        anchor: 'start',
        fontSize: PANEL_FONT,
        offset: 2,
      },
      width: WIDTH,
      height: COUNTER_HEIGHT,
      layer: [
        ...rules(),
        {
          data: { name: 'counters' },
          transform: [{ filter: { field: 'counter', equal: name } }],
          mark: {
            type: 'area',
            interpolate: 'step-after',
            color: COUNTER_COLORS[ci % COUNTER_COLORS.length],
            opacity: 0.8,
            line: { color: COUNTER_COLORS[ci % COUNTER_COLORS.length], strokeWidth: 1 },
          },
          encoding: {
            x: x(lastTitle(k, count)),
            y: { field: 'perS', type: 'quantitative', title: AXIS.counters, axis: { format: ',.3~r', tickCount: 3 } },
          },
        },
      ],
    });
    k++;
  }
  if (probes && probes.tw.length > 0) {
    datasets.tw = probes.tw;
    panels.push({
      title: { text: 'sockets in TIME_WAIT (sockstat, max per interval)', anchor: 'start', fontSize: PANEL_FONT, offset: 2 },
      width: WIDTH,
      height: COUNTER_HEIGHT,
      layer: [
        ...rules(),
        {
          data: { name: 'tw' },
          mark: { type: 'line', interpolate: 'step-after', color: '#555555', strokeWidth: 1.2 },
          encoding: {
            x: x(lastTitle(k, count)),
            y: { field: 'sockets', type: 'quantitative', title: AXIS.tw, axis: { format: ',.3~r', tickCount: 3 } },
          },
        },
      ],
    });
    k++;
  }
  const spec = {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    title: { text: 'sockspike timeline', anchor: 'start', fontSize: 16 },
    datasets,
    vconcat: panels,
    spacing: 14,
    resolve: { scale: { x: 'shared', color: 'independent', shape: 'independent' }, legend: { color: 'independent' } },
    config: CHART_CONFIG,
  } as unknown as vegaLite.TopLevelSpec;
  return {
    spec,
    stats: { ...lat.stats, probeRows: probes?.rows ?? 0, counters: probes?.counterNames ?? [] },
  };
}

/** Coordinates in transform and path attributes to 2 decimals (vega writes ~15): a third of the size, same picture. */
export function compact(svg: string): string {
  return svg.replace(/ (transform|d|points)="([^"]*)"/g, (_, attr: string, v: string) => ` ${attr}="${v.replace(/(\d+\.\d\d)\d+/g, '$1')}"`);
}

/** Render a vega-lite spec to a self-contained SVG string, headless. */
export async function renderSvg(spec: vegaLite.TopLevelSpec): Promise<string> {
  // loaded here, not at import: together about a second of CPU that only rendering needs
  const [vega, { compile }] = await Promise.all([import('vega'), import('vega-lite')]);
  const vg = compile(spec).spec;
  const view = new vega.View(vega.parse(vg), { renderer: 'none', logLevel: vega.Warn });
  try {
    return compact(await view.toSVG());
  } finally {
    view.finalize();
  }
}

function thresholdOf(runDir: string): number {
  const v = readSummaryIfAny(runDir)?.outliers.thresholdUs;
  return typeof v === 'number' && Number.isFinite(v) ? v : Infinity;
}

/**
 * Write timeline.svg into the run directory; returns its file name, or null
 * when there is nothing to draw (no transactions). Reads run.json, the
 * transactions, summary.json (outlier threshold; none: no outliers marked)
 * and the probe samples when probes/meta.json exists.
 */
export async function writeTimelineChart(runDir: string): Promise<string | null> {
  const manifest = readManifest(runDir);
  const txn = readTransactions(runDir, manifest);
  if (txn.n === 0) return null;
  const probes = existsSync(join(runDir, PROBES_DIR, META_FILE)) ? readProbes(runDir) : null;
  const faults = (manifest.kernel?.faults ?? [])
    .filter((f) => f.startNs !== null)
    .map((f) => ({ label: `fault ${f.text}`, from: (f.startNs as number) / 1e9, to: (f.stopNs ?? manifest.endNs ?? (f.startNs as number)) / 1e9 }));
  const built = buildTimelineSpec({
    txn,
    thresholdUs: thresholdOf(runDir),
    probes,
    faults,
    originNs: loadStartNs(manifest, txn),
    warmup: warmupOf(txn, manifest.config).mask,
    hostWide: probes !== null && !probes.meta.netns,
  });
  if (!built) return null;
  const svg = await renderSvg(built.spec);
  writeFileSync(join(runDir, TIMELINE_FILE), svg);
  return TIMELINE_FILE;
}
