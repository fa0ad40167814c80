import type { ColumnSpec } from './columns.ts';
import type { Token } from './template.ts';

// Names for the numbers of each /proc format. A namer sees a file's tokens
// line by line (from template.ts) and returns a column spec for each number
// slot (null: not recorded), plus derived columns (sums). Names follow the
// kernel's SNMP counter docs where they exist (Tcp.RetransSegs,
// TcpExt.ListenOverflows), else the file's own words (cpu0.steal,
// vmstat.allocstall_normal, softirq.NET_RX).

export interface NameContext {
  /** USER_HZ: jiffies per second of /proc/stat. */
  clkTck: number;
  /** Record per-CPU columns (cpuN.*, softirq.X.cpuN). */
  perCpu: boolean;
}

export interface Named {
  slots: (ColumnSpec | null)[];
  derived: ColumnSpec[];
}

export type Namer = (lines: Token[][], ctx: NameContext, source: string) => Named;

export interface SourceDef {
  id: string;
  /** Relative to the proc root. */
  path: string;
  namer: Namer;
  /**
   * Read at the slow rate (every SLOW_PERIOD_NS, sampler.ts) rather than
   * every sample: what no cause reads and only the report's tables show.
   */
  slow?: boolean;
}

const slotCount = (lines: Token[][]): number => {
  let n = 0;
  for (const line of lines) for (const t of line) if (t.kind === 'num') n++;
  return n;
};

const emptyNamed = (lines: Token[][]): Named => ({ slots: new Array(slotCount(lines)).fill(null), derived: [] });

// ---------------------------------------------------------------- /proc/stat

const CPU_FIELDS = ['user', 'nice', 'system', 'idle', 'iowait', 'irq', 'softirq', 'steal'] as const;

export const nameStat: Namer = (lines, ctx, source) => {
  const named = emptyNamed(lines);
  const cpus = lines.filter((l) => /^cpu\d+$/.test(l[0]?.text ?? '')).length || 1;
  const jiffyNs = 1e9 / ctx.clkTck;
  for (const line of lines) {
    const key = line[0]?.text;
    if (!key || line[0].kind !== 'word') continue;
    const nums = line.filter((t) => t.kind === 'num');
    if (key === 'cpu' || /^cpu\d+$/.test(key)) {
      if (key !== 'cpu' && !ctx.perCpu) continue;
      CPU_FIELDS.forEach((field, i) => {
        if (nums[i] === undefined) return;
        named.slots[nums[i].slot] = {
          name: `${key}.${field}`,
          kind: 'fraction',
          unit: 'fraction',
          source,
          scale: key === 'cpu' ? jiffyNs / cpus : jiffyNs,
        };
      });
    } else if (key === 'intr' || key === 'ctxt' || key === 'processes' || key === 'softirq') {
      if (nums[0]) named.slots[nums[0].slot] = { name: `stat.${key}`, kind: 'counter', unit: 'count', source };
    } else if (key === 'procs_running' || key === 'procs_blocked') {
      if (nums[0]) named.slots[nums[0].slot] = { name: `stat.${key}`, kind: 'gauge', unit: 'count', source };
    }
  }
  return named;
};

// ------------------------------------------------ /proc/net/snmp and netstat

// Not counters: the current value matters (Tcp.CurrEstab) or it never
// changes (RTO settings, Ip.Forwarding: sysctls, kept in meta.json).
const SNMP_GAUGES = new Set(['Tcp.CurrEstab', 'MPTcpExt.MPCurrEstab']);
const SNMP_CONSTANTS = new Set(['Tcp.RtoAlgorithm', 'Tcp.RtoMin', 'Tcp.RtoMax', 'Tcp.MaxConn', 'Ip.Forwarding', 'Ip.DefaultTTL']);
const snmpUnit = (name: string): string => (/Octets$/.test(name) ? 'bytes' : name === 'Tcp.RtoMin' || name === 'Tcp.RtoMax' ? 'ms' : 'count');

/** Pairs of lines "Group: Name Name ..." / "Group: 1 2 ...": every field, by name. */
export const nameTable: Namer = (lines, _ctx, source) => {
  const named = emptyNamed(lines);
  for (let i = 0; i + 1 < lines.length; i++) {
    const head = lines[i];
    const vals = lines[i + 1];
    const prefix = head[0]?.text ?? '';
    if (!prefix.endsWith(':') || vals[0]?.text !== prefix) continue;
    if (!head.slice(1).every((t) => t.kind === 'word')) continue;
    const nums = vals.slice(1);
    if (nums.length !== head.length - 1 || !nums.every((t) => t.kind === 'num')) continue;
    const group = prefix.slice(0, -1);
    head.slice(1).forEach((t, j) => {
      const name = `${group}.${t.text}`;
      const kind = SNMP_CONSTANTS.has(name) ? 'constant' : SNMP_GAUGES.has(name) ? 'gauge' : 'counter';
      named.slots[nums[j].slot] = { name, kind, unit: snmpUnit(name), source };
    });
    i++;
  }
  return named;
};

// ------------------------------------------------------------ /proc/net/snmp6

/** "Ip6InReceives   123" lines: Ip6.InReceives, Icmp6.*, Udp6.*, UdpLite6.*. */
export const nameSnmp6: Namer = (lines, _ctx, source) => {
  const named = emptyNamed(lines);
  for (const line of lines) {
    if (line.length !== 2 || line[0].kind !== 'word' || line[1].kind !== 'num') continue;
    const m = /^(Ip6|Icmp6|UdpLite6|Udp6)(.+)$/.exec(line[0].text);
    const name = m ? `${m[1]}.${m[2]}` : `Snmp6.${line[0].text}`;
    named.slots[line[1].slot] = { name, kind: 'counter', unit: /Octets$/.test(name) ? 'bytes' : 'count', source };
  }
  return named;
};

// ---------------------------------------------------- /proc/net/sockstat{,6}

/** "TCP: inuse 1 orphan 0 tw 0 alloc 1 mem 292": all gauges, sockstat.TCP.inuse. */
export const nameSockstat: Namer = (lines, _ctx, source) => {
  const named = emptyNamed(lines);
  for (const line of lines) {
    const proto = line[0]?.text ?? '';
    if (!proto.endsWith(':')) continue;
    for (let j = 1; j + 1 < line.length; j++) {
      if (line[j].kind !== 'word' || line[j + 1].kind !== 'num') continue;
      const key = line[j].text;
      named.slots[line[j + 1].slot] = {
        name: `${source}.${proto.slice(0, -1)}.${key}`,
        kind: 'gauge',
        unit: key === 'mem' ? 'pages' : key === 'memory' ? 'bytes' : 'count',
        source,
      };
      j++;
    }
  }
  return named;
};

// -------------------------------------------------------------- /proc/softirqs

export const SOFTIRQS = ['NET_RX', 'NET_TX', 'TIMER', 'SCHED'];

/** Per CPU (softirq.NET_RX.cpu0, unsigned int: 32-bit) and their sum (softirq.NET_RX). */
export const nameSoftirqs: Namer = (lines, ctx, source) => {
  const named = emptyNamed(lines);
  const head = lines[0] ?? [];
  const cpus = head.filter((t) => t.kind === 'word' && /^CPU\d+$/.test(t.text)).map((t) => Number(t.text.slice(3)));
  for (const line of lines.slice(1)) {
    const type = (line[0]?.text ?? '').replace(/:$/, '');
    if (!SOFTIRQS.includes(type)) continue;
    const nums = line.slice(1).filter((t) => t.kind === 'num');
    const members: string[] = [];
    nums.forEach((t, i) => {
      const name = `softirq.${type}.cpu${cpus[i] ?? i}`;
      members.push(name);
      named.slots[t.slot] = { name, kind: 'counter', unit: 'count', source, width: 32, hidden: !ctx.perCpu };
    });
    named.derived.push({ name: `softirq.${type}`, kind: 'counter', unit: 'count', source, sumOf: members });
  }
  return named;
};

// ---------------------------------------------------------- /proc/pressure/*

/** "some avg10=0.00 avg60=0.00 avg300=0.00 total=123": the total (us), as a delta. */
export const namePressure =
  (resource: string): Namer =>
  (lines, _ctx, source) => {
    const named = emptyNamed(lines);
    for (const line of lines) {
      const which = line[0]?.text;
      if (which !== 'some' && which !== 'full') continue;
      for (let j = 1; j + 1 < line.length; j++) {
        if (line[j].text === 'total=' && line[j + 1].kind === 'num') {
          named.slots[line[j + 1].slot] = { name: `pressure.${resource}.${which}`, kind: 'counter', unit: 'us', source };
        }
      }
    }
    return named;
  };

// ------------------------------------------------------------------ /proc/vmstat

// Memory stalls and reclaim: direct reclaim and compaction stall the
// allocating task (a client in connect()), major faults stall on I/O.
const VMSTAT_COUNTERS =
  /^(allocstall_\w+|pgmajfault|pgfault|pgscan_direct\w*|pgscan_kswapd|pgsteal_direct|pgsteal_kswapd|compact_stall|compact_fail|compact_success|oom_kill|pswpin|pswpout|workingset_refault_\w+|thp_fault_fallback)$/;
const VMSTAT_GAUGES = new Set(['nr_free_pages']);

export const nameVmstat: Namer = (lines, _ctx, source) => {
  const named = emptyNamed(lines);
  for (const line of lines) {
    if (line.length !== 2 || line[1].kind !== 'num') continue;
    const key = line[0].text;
    if (VMSTAT_COUNTERS.test(key)) named.slots[line[1].slot] = { name: `vmstat.${key}`, kind: 'counter', unit: 'count', source };
    else if (VMSTAT_GAUGES.has(key)) named.slots[line[1].slot] = { name: `vmstat.${key}`, kind: 'gauge', unit: 'pages', source };
  }
  return named;
};

// ---------------------------------------------------------------- the list

/**
 * The columns read every sample; every other column of the system files
 * is read at the slow rate (every ~100 ms). Read every sample: what is
 * cheap to read and means something over one interval: CPU and memory
 * pressure (stall time in microseconds), and the accept queue
 * (listen-queue.ts). At the slow rate: what costs the kernel most to write
 * (/proc/net/netstat, /proc/net/snmp, /proc/stat: ~70 % of a sample's read
 * time) or is counted in clock ticks: CPU times in /proc/stat and
 * /proc/PID/stat move in 10 ms ticks, so a 20 ms read holds 0-2 ticks per
 * CPU and only an average over ~100 ms says how busy a CPU was. The TCP
 * counters (retransmits, timeouts, overflows) are exact at any rate; what
 * the slow rate costs them is time resolution, 100 ms instead of 20 ms,
 * which the outlier joins allow for (their per-event timing comes from the
 * kernel events); and the socket counts of /proc/net/sockstat (TIME_WAIT
 * lasts 60 s: 100 ms is plenty). `--probe-slow-interval` equal to
 * `--probe-interval` reads every file every sample.
 */
export const EVERY_SAMPLE = /^pressure\.(cpu|memory)\.\w+$/;

/**
 * Every system-wide source, in sampling order. A file holding EVERY_SAMPLE
 * columns is read every sample (its other columns parsed at the slow rate);
 * the others only at the slow rate: /proc/stat, /proc/net/snmp and netstat
 * (see EVERY_SAMPLE), I/O pressure, IPv6 socket counts, softirqs, vmstat
 * (direct reclaim: a stall of 100 ms shows at 100 ms), snmp6.
 */
export const SYSTEM_SOURCES: SourceDef[] = [
  { id: 'stat', path: 'stat', namer: nameStat },
  { id: 'pressure.cpu', path: 'pressure/cpu', namer: namePressure('cpu') },
  { id: 'pressure.io', path: 'pressure/io', namer: namePressure('io'), slow: true },
  { id: 'pressure.memory', path: 'pressure/memory', namer: namePressure('memory') },
  { id: 'snmp', path: 'net/snmp', namer: nameTable },
  { id: 'netstat', path: 'net/netstat', namer: nameTable },
  { id: 'snmp6', path: 'net/snmp6', namer: nameSnmp6, slow: true },
  { id: 'sockstat', path: 'net/sockstat', namer: nameSockstat },
  { id: 'sockstat6', path: 'net/sockstat6', namer: nameSockstat, slow: true },
  { id: 'softirqs', path: 'softirqs', namer: nameSoftirqs, slow: true },
  { id: 'vmstat', path: 'vmstat', namer: nameVmstat, slow: true },
];

/**
 * Sampled unless asked otherwise. Not snmp6: IPv6-only IP/ICMP/UDP counters
 * (TCP counts both families in Tcp.*) cost ~15% of a sample's read time.
 */
export const DEFAULT_SOURCES = SYSTEM_SOURCES.map((d) => d.id).filter((id) => id !== 'snmp6');
