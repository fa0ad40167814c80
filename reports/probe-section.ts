import { formatCount, formatNs, formatPercent, formatSeconds } from '../lib/format.ts';
import { UserError } from '../lib/errors.ts';
import { ownProcessesCpu, readProbes, type ProbeData, type StallMonitorData } from '../probes/read.ts';
import { details, fitTable, table } from './markdown.ts';

// The report's system-state section, from the probe files alone: a timeline
// on the run's time axis (CPU breakdown, pressure, the key counters that
// moved), every counter that moved, sockets, the run's processes, the
// harness's own stalls and the probes' overhead, and what was skipped.

export interface ProbeSectionOptions {
  /** Times (ns since t0) to mark on the timeline, e.g. outlier starts. */
  highlightNs?: number[];
  /** Rows of the timeline, about (default 30). */
  buckets?: number;
  /**
   * The load's start, ns since t0 (the first transaction's intended start):
   * times are shown from it, and what came before it is one "start-up" row.
   * Absent: times since t0, no start-up row (a probe-only run).
   */
  originNs?: number;
}

// The counters that name known causes come first, in this order.
const KEY_COUNTERS = [
  'TcpExt.ListenOverflows',
  'TcpExt.ListenDrops',
  'TcpExt.TCPSynRetrans',
  'TcpExt.TCPReqQFullDrop',
  'Tcp.RetransSegs',
  'TcpExt.TCPTimeouts',
  'Tcp.OutRsts',
  'Tcp.AttemptFails',
  'Tcp.EstabResets',
  'TcpExt.TCPAbortOnData',
  'TcpExt.TCPAbortOnClose',
  'TcpExt.TCPAbortOnLinger',
  'TcpExt.TCPAbortOnTimeout',
  'TcpExt.TW',
  'TcpExt.TWRecycled',
  'TcpExt.TCPTimeWaitOverflow',
  'TcpExt.DelayedACKs',
  'TcpExt.DelayedACKLost',
  'TcpExt.TCPLossProbes',
  'TcpExt.TCPSpuriousRTOs',
  'TcpExt.TCPBacklogDrop',
  'vmstat.allocstall_normal',
  'vmstat.allocstall_movable',
  'vmstat.compact_stall',
  'vmstat.pgmajfault',
];
const TIMELINE_COUNTERS = 6;
const MOVED_ROWS = 40;
/** Counters that moved shown in the report's text; the rest up to MOVED_ROWS folded. */
const MOVED_SHOWN = 8;

const short = (name: string): string => (name === 'TcpExt.TW' ? name : name.replace(/^(TcpExt|Tcp|IpExt|Ip|vmstat)\./, ''));
const pct1 = (x: number): string => (Number.isFinite(x) ? (100 * x).toFixed(1) : '-');
const ms = (ns: number): string => (Number.isFinite(ns) ? formatNs(ns) : '-');

/** A bucket width that is a round number: 1, 2, 5 x 10^k ns. */
function niceWidth(spanNs: number, buckets: number): number {
  const raw = Math.max(spanNs / buckets, 1e6);
  const mag = 10 ** Math.floor(Math.log10(raw));
  for (const m of [1, 2, 5, 10]) if (m * mag >= raw) return m * mag;
  return 10 * mag;
}

interface Agg {
  sum: number;
  max: number;
  weighted: number;
  time: number;
  n: number;
}
const agg = (): Agg => ({ sum: 0, max: -Infinity, weighted: 0, time: 0, n: 0 });

/** Per bucket: sum, max, and dt-weighted mean of a column (NaN skipped); `bucketOf` maps a sample's end time to its row. */
function bucketize(d: ProbeData, name: string, rows: number, bucketOf: (tNs: number) => number): Agg[] | null {
  const v = d.get(name);
  if (!v) return null;
  const out = Array.from({ length: rows }, agg);
  for (let r = 0; r < d.rows; r++) {
    const x = v[r];
    if (x !== x) continue;
    const b = bucketOf(d.t[r]);
    const a = out[b];
    a.sum += x;
    if (x > a.max) a.max = x;
    a.weighted += x * d.dt[r];
    a.time += d.dt[r];
    a.n++;
  }
  return out;
}

/** Total, peak rate per second and samples moved, of a counter column. */
function counterStats(d: ProbeData, name: string): { total: number; peakPerS: number; moved: number } {
  // as read: a counter read every Nth sample moved in the reads where it did, at its rate over each read's span
  const s = d.reads(name);
  let total = 0;
  let peak = 0;
  let moved = 0;
  if (!s) return { total, peakPerS: peak, moved };
  for (let i = 0; i < s.rows.length; i++) {
    const x = s.values[i];
    if (x !== x || x === 0) continue;
    total += x;
    moved++;
    const rate = (x * 1e9) / s.spanNs[i];
    if (rate > peak) peak = rate;
  }
  return { total, peakPerS: peak, moved };
}

function timeline(d: ProbeData, opts: ProbeSectionOptions, moved: string[]): string {
  // A sample covers (t - dt, t]: it goes in the row holding its end. With an
  // origin (the load's start), every sample ending at or before it goes in
  // one "start-up" row and the rows count from the origin.
  const origin = opts.originNs;
  const startup = origin !== undefined && d.t[0] <= origin ? 1 : 0;
  const from = origin ?? d.t[0] - d.dt[0];
  const span = Math.max(d.t[d.rows - 1] - from, 1);
  const width = niceWidth(span, opts.buckets ?? 30);
  const first = origin ?? Math.floor(d.t[0] / width) * width;
  const n = startup + Math.max(1, Math.ceil((d.t[d.rows - 1] - first) / width));
  const starts = Array.from({ length: n }, (_, i) => first + (i - startup) * width);
  const bucketOf = (t: number): number => (startup === 1 && t <= first ? 0 : Math.min(n - 1, Math.max(startup, startup + Math.floor((t - first) / width))));
  const head: string[] = ['time'];
  const cols: ((b: number) => string)[] = [];
  const frac = (name: string, label: string): void => {
    const a = bucketize(d, name, n, bucketOf);
    if (!a) return;
    head.push(label);
    cols.push((b) => (a[b].time > 0 ? pct1(a[b].weighted / a[b].time) : '-'));
  };
  frac('cpu.user', 'user %');
  frac('cpu.system', 'sys %');
  frac('cpu.softirq', 'softirq %');
  frac('cpu.irq', 'irq %');
  frac('cpu.steal', 'steal %');
  frac('cpu.iowait', 'iowait %');
  for (const res of ['cpu', 'io', 'memory']) {
    // stall us per interval / interval ns: the share of time some task stalled;
    // at most 100 %: /proc is read a little after a sample is stamped, later
    // still when the CPUs are busy, so a row's stall time can exceed its
    // interval by that read delay (and the first sample's covers the baseline read too)
    const a = bucketize(d, `pressure.${res}.some`, n, bucketOf);
    if (!a || !a.some((x) => x.sum > 0)) continue;
    head.push(`psi ${res} %`);
    cols.push((b) => (a[b].time > 0 ? pct1(Math.min(1, (a[b].sum * 1e3) / a[b].time)) : '-'));
  }
  for (const name of moved.slice(0, TIMELINE_COUNTERS)) {
    const a = bucketize(d, name, n, bucketOf) as Agg[];
    head.push(short(name));
    cols.push((b) => (a[b].n > 0 ? formatCount(a[b].sum) : '-'));
  }
  const gauge = (name: string, label: string): void => {
    const a = bucketize(d, name, n, bucketOf);
    if (!a || !a.some((x) => x.max > 0)) return;
    head.push(label);
    cols.push((b) => (a[b].n > 0 ? formatCount(a[b].max) : '-'));
  };
  gauge('sockstat.TCP.tw', 'TIME_WAIT max');
  gauge('listen.depth', 'accept q max');
  let marks: number[] | null = null;
  if (opts.highlightNs && opts.highlightNs.length > 0) {
    marks = starts.map(() => 0);
    const covered = d.t[0] - d.dt[0];
    for (const h of opts.highlightNs) {
      // before the first row's start but inside the first sample's interval: first row
      // a mark at the origin itself is the load's (a sample at the origin is start-up's)
      if (h >= covered && h <= d.t[d.rows - 1] + width) marks[startup === 1 && h >= first ? Math.max(1, bucketOf(h)) : bucketOf(h)]++;
    }
    // first: on a narrow page the marks are what a reader looks for
    head.unshift('marked');
  }
  const rows = starts.map((s, b) => {
    const row = [b < startup ? 'start-up' : formatSeconds(s - (origin ?? 0), width < 1e9 ? 2 : 0), ...cols.map((f) => f(b))];
    if (marks) row.unshift(marks[b] > 0 ? `◀ ${marks[b]}` : '');
    return row;
  });
  // split to fit a code host's page, each part led by the marks and the time
  const tables = fitTable(
    head,
    rows,
    head.map((h) => (h === 'marked' || h === 'time' ? 'l' : 'r')),
    marks ? 2 : 1,
  );
  const lines = [
    (origin === undefined
      ? `Each row covers ${formatNs(width)} from the time shown (run time, since t0). `
      : `Each row covers ${formatNs(width)} from the time shown, in seconds into the load (from the first transaction's intended start)` +
        (startup === 1 ? `; "start-up" is the ${formatNs(origin - (d.t[0] - d.dt[0]))} sampled before the load began, in one row. ` : '. ')) +
      `CPU columns are shares of all ${d.meta.cpus} CPUs; ` +
      `psi is the share of time some task stalled (/proc/pressure); counters are sums over the row; ` +
      `"TIME_WAIT max" the most sockets in TIME_WAIT (/proc/net/sockstat), "accept q max" the deepest accept queue seen.`,
  ];
  if (marks) lines.push('', `◀ n: n of the ${opts.highlightNs?.length} marked times (outliers) fall in that row.`);
  const what =
    `The system timeline as ${tables.length > 1 ? `${tables.length} tables` : 'a table'}: ${formatCount(rows.length)} rows of ${formatNs(width)}` +
    (marks ? ', ◀ marks the rows with outliers' : '') +
    ' (the timeline picture shows the same)';
  return details(what, [...lines, '', tables.join('\n\n')].join('\n'));
}

function selfCheck(d: ProbeData): string {
  const lines: string[] = [];
  const mons: StallMonitorData[] = d.self;
  if (mons.length > 0) {
    const rows = mons.map((m) => {
      let max = 0;
      let over = 0;
      for (let i = 0; i < m.eld.max.length; i++) {
        const x = m.eld.max[i];
        if (x > max) max = x;
        if (x > 10e6) over++;
      }
      let gcMax = 0;
      let gcSum = 0;
      for (let i = 0; i < m.gc.duration.length; i++) {
        gcSum += m.gc.duration[i];
        if (m.gc.duration[i] > gcMax) gcMax = m.gc.duration[i];
      }
      return [m.role, String(m.pid), ms(max), m.run ? ms(m.run.p99) : '-', String(over), String(m.gc.duration.length), ms(gcSum), ms(gcMax)];
    });
    lines.push(table(['process', 'pid', 'loop delay max', 'p99', 'intervals > 10 ms', 'GC pauses', 'GC total', 'GC max'], rows));
  } else {
    lines.push('No stall-monitor files: event-loop delay and GC pauses of the harness were not recorded.');
  }
  const own = ownProcessesCpu(d);
  if (own !== null)
    lines.push(
      '',
      `sockspike's own processes besides the client and server: ${formatPercent(own.total)} of a core together while sampling ` +
        `(${own.processes.map((p) => `${p.role} ${formatPercent(p.share)}`).join(', ')}; /proc/PID/stat).`,
    );
  const r = d.meta.result;
  if (r) {
    const o = r.overhead;
    lines.push(
      '',
      `Probe process: ${formatPercent(o.cpuPerSecond)} of one core over ${formatNs(o.wallNs)} ` +
        `(read and parse ${ms(o.meanSampleNs)} per sample, max ${ms(o.maxSampleNs)}); samples late against their slot by ` +
        `p50 ${ms(r.jitter.p50Ns)}, p99 ${ms(r.jitter.p99Ns)}, max ${ms(r.jitter.maxNs)}` +
        (r.jitter.missedSlots > 0 ? `; ${r.jitter.missedSlots} slots missed (the probe process was more than half an interval late)` : '') +
        '.',
    );
  } else {
    lines.push('', 'The probe process did not finish cleanly: its overhead is unknown and the last second of samples may be missing.');
  }
  return lines.join('\n');
}

/** A process's CPU peak is taken over windows of at least this long: one 20 ms sample holds 0, 1 or 2 ticks of 10 ms. */
const PEAK_WINDOW_NS = 200e6;

function processes(d: ProbeData, originNs: number): string | null {
  if (d.meta.processes.length === 0) return null;
  // sockspike's own (orchestrator, probes, bpftrace: CPU only) after the run's
  const procs = [...d.meta.processes].sort((a, b) => Number(a.own === true) - Number(b.own === true));
  const rows = procs.map((p) => {
    const k = `proc.${p.key}`;
    const f = (name: string): Float64Array | null => d.get(`${k}.${name}`);
    let cpuTime = 0;
    let time = 0;
    let peak = 0;
    const u = f('utime');
    const s = f('stime');
    if (u && s) {
      // the peak over windows of PEAK_WINDOW_NS (a single sample's share is
      // quantised to whole ticks over a jittered interval: 616 % on 2 CPUs),
      // and never above the CPUs there are
      let wCpu = 0;
      let wTime = 0;
      for (let r = 0; r < d.rows; r++) {
        const x = u[r] + s[r];
        if (x !== x) continue;
        cpuTime += x * d.dt[r];
        time += d.dt[r];
        wCpu += x * d.dt[r];
        wTime += d.dt[r];
        if (wTime >= PEAK_WINDOW_NS) {
          peak = Math.max(peak, wCpu / wTime);
          wCpu = 0;
          wTime = 0;
        }
      }
      if (peak === 0 && wTime > 0) peak = wCpu / wTime;
      peak = Math.min(peak, d.meta.cpus);
    }
    const sum = (name: string): number => (d.has(`${k}.${name}`) ? counterStats(d, `${k}.${name}`).total : NaN);
    const count = (x: number): string => (Number.isFinite(x) ? formatCount(x) : '-');
    const wait = d.reads(`${k}.wait_ns`);
    let waitMax = 0;
    if (wait) for (let i = 0; i < wait.values.length; i++) if (wait.values[i] > waitMax) waitMax = wait.values[i];
    return [
      p.role,
      String(p.pid),
      time > 0 ? pct1(cpuTime / time) : '-',
      pct1(peak),
      count(sum('voluntary_ctxt_switches')),
      count(sum('nonvoluntary_ctxt_switches')),
      ms(sum('wait_ns')),
      wait ? ms(waitMax) : '-',
      p.exitedNs === null ? '' : `exited at ${formatSeconds(p.exitedNs - originNs)}`,
    ];
  });
  // figures right-aligned between the process and its note
  const align = ['l', 'r', 'r', 'r', 'r', 'r', 'r', 'r', 'l'] as const;
  // short headers, to fit a code host's page (the note under the table says what they are)
  return table(['process', 'pid', 'CPU %', 'peak %', 'vol. cs', 'invol. cs', 'run-queue wait', 'max wait', ''], rows, [...align]);
}

/** What was read at which rate (meta.json rates), in one or two lines; null when everything was read every sample. */
function readRates(m: ProbeData['meta']): string | null {
  const rates = m.rates ?? [];
  if (rates.length < 2) return null;
  const what = (reads: string[]): string => {
    // files by name, with how many of their columns ("net/netstat: 23 columns", "the rest of net/netstat");
    // processes by name: "client stat", "server status, schedstat"
    const file = (x: string): string => {
      const [f, cols] = x.replace(/^\/proc\//, '').split(': ');
      if (cols === undefined) return f;
      return cols === 'the other columns' ? `the rest of ${f}` : `${f} (${cols.split(', ').length} columns)`;
    };
    const files = reads.filter((x) => !x.startsWith('proc.')).map(file);
    const procs = reads.filter((x) => x.startsWith('proc.')).map((x) => x.replace(/^proc\.(\S+) \(\/proc\/\d+\/(.*)\)$/, '$1 $2'));
    return [...files, ...procs].join('; ');
  };
  const parts = rates.map((r) => `${r.every === 1 ? 'every sample' : `every ${r.every} samples (${formatNs(r.periodNs)})`}: ${what(r.reads)}`);
  return (
    `Read rates: ${parts.join('. ')}. ` +
    'A counter read every Nth sample holds its delta over those N samples (`probe.everyN.dt_ns`); the tables and the comparisons spread it evenly over them.'
  );
}

function sockets(d: ProbeData): string | null {
  const names = [
    'sockstat.TCP.inuse',
    'sockstat.TCP.orphan',
    'sockstat.TCP.tw',
    'sockstat.TCP.alloc',
    'sockstat.TCP.mem',
    'sockstat6.TCP6.inuse',
    'Tcp.CurrEstab',
    'listen.depth',
    'listen.limit',
  ];
  const rows: string[][] = [];
  for (const name of names) {
    const v = d.get(name);
    if (!v) continue;
    let min = Infinity;
    let max = -Infinity;
    let sum = 0;
    let n = 0;
    for (let r = 0; r < d.rows; r++) {
      const x = v[r];
      if (x !== x) continue;
      if (x < min) min = x;
      if (x > max) max = x;
      sum += x;
      n++;
    }
    if (n === 0) continue;
    const unit = d.columns.find((c) => c.name === name)?.unit ?? '';
    rows.push([name, formatCount(min), formatCount(sum / n), formatCount(max), unit === 'count' ? '' : unit]);
  }
  return rows.length ? table(['gauge', 'min', 'mean', 'max', 'unit'], rows, ['l', 'r', 'r', 'r', 'l']) : null;
}

/** The probe section of a run's report (Markdown). Never throws: a missing or corrupt probe file becomes a line. */
export function renderProbeSection(runDir: string, opts: ProbeSectionOptions = {}): string {
  let d: ProbeData;
  try {
    d = readProbes(runDir);
  } catch (err) {
    if (err instanceof UserError) return `## System state\n\nNo probe samples: ${err.message}\n`;
    throw err;
  }
  const out: string[] = ['## System state'];
  const m = d.meta;
  out.push(
    '',
    `Sampled every ${formatNs(m.intervalNs)}: ${formatCount(d.rows)} samples, ${d.columns.length} columns` +
      (m.netns
        ? `, TCP counters of network namespace ${m.netns}`
        : ", TCP counters host-wide (the host's network namespace: other programs' traffic counts too)") +
      ` (probes/meta.json, probes/samples.bin).` +
      (d.truncated || !m.complete ? ' The probe process did not finish cleanly: the last samples may be missing.' : ''),
  );
  const rates = readRates(m);
  if (rates) out.push('', rates);
  if (d.rows === 0) {
    out.push('', 'No samples were taken (the run ended before the first interval).');
  }
  // counters that moved, known causes first
  const counters = d.columns.filter((c) => c.kind === 'counter' && !c.name.startsWith('probe.') && !c.name.startsWith('proc.') && !/\.cpu\d+$/.test(c.name));
  const stats = new Map(counters.map((c) => [c.name, counterStats(d, c.name)]));
  const movedNames = counters
    .map((c) => c.name)
    .filter((n) => (stats.get(n)?.total ?? 0) > 0)
    .sort((a, b) => {
      const ka = KEY_COUNTERS.indexOf(a);
      const kb = KEY_COUNTERS.indexOf(b);
      if (ka >= 0 || kb >= 0) return (ka < 0 ? 1e9 : ka) - (kb < 0 ? 1e9 : kb);
      return (stats.get(b)?.total ?? 0) - (stats.get(a)?.total ?? 0);
    });
  const keyMoved = movedNames.filter((n) => KEY_COUNTERS.includes(n));
  if (d.rows > 0) {
    out.push('', '### Timeline', '', timeline(d, opts, keyMoved));
    out.push('', '### Counters that moved', '');
    if (movedNames.length === 0) out.push('No counter moved during the run.');
    else {
      // the counters that name known causes (and the busiest) in sight, the full list folded
      const counterTable = (names: string[]): string =>
        table(
          ['counter', 'total', 'peak /s', 'samples'],
          names.map((n) => {
            const s = stats.get(n) as { total: number; peakPerS: number; moved: number };
            return [n, formatCount(s.total), formatCount(s.peakPerS), formatCount(s.moved)];
          }),
          ['l', 'r', 'r', 'r'],
        );
      const listed = Math.min(movedNames.length, MOVED_ROWS);
      // a few more are not worth folding
      const shown = listed <= MOVED_SHOWN + 3 ? listed : Math.max(Math.min(keyMoved.length, MOVED_ROWS), MOVED_SHOWN);
      out.push(counterTable(movedNames.slice(0, shown)));
      const rest = movedNames.slice(shown, MOVED_ROWS);
      if (rest.length > 0)
        out.push(
          '',
          details(
            `${formatCount(movedNames.length - shown)} more counters that moved`,
            counterTable(rest) +
              (movedNames.length > MOVED_ROWS ? `\n\n… and ${movedNames.length - MOVED_ROWS} more (sockspike export DIR --what probes).` : ''),
          ),
        );
    }
    const sock = sockets(d);
    if (sock) out.push('', '### Sockets', '', sock);
    const procs = processes(d, opts.originNs ?? 0);
    if (procs) {
      out.push(
        '',
        '### Processes',
        '',
        procs,
        '',
        `CPU % is of one core, from /proc/PID/stat: the whole process, so threads can take it past 100 % (at most ${d.meta.cpus * 100} % on ${d.meta.cpus} CPUs). ` +
          `Peak % is the busiest ${formatNs(PEAK_WINDOW_NS)} (one sample holds whole 10 ms ticks, too coarse to show alone). Voluntary and involuntary context switches (cs) and run-queue wait (time runnable ` +
          'but not running; max wait: the most in one read) are of the main thread, i.e. the event loop.',
      );
    }
  }
  out.push('', '### Harness self-check', '', selfCheck(d));
  // a process's exit is in the Processes table already
  const notes = m.notes.filter((n) => !/^process .* ended during the run/.test(n));
  if (m.skipped.length > 0 || notes.length > 0) {
    out.push('', '### Probes skipped and notes', '');
    for (const s of m.skipped) out.push(`- skipped **${s.probe}**: ${s.reason}`);
    for (const n of notes) out.push(`- ${n}`);
  }
  return out.join('\n') + '\n';
}
