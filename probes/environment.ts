// The environment snapshot, taken once per run: what the machine is, how
// its clocks and CPUs are set up, and every sysctl that shapes TCP
// connection handling. Read from /proc and /sys directly; systeminformation
// only for the descriptive parts (OS, CPU model, virtualisation), bounded by
// a timeout because it shells out and can be slow.
import { execa } from 'execa';
import { existsSync, readFileSync } from 'node:fs';
import { readFile, readdir } from 'node:fs/promises';
import os from 'node:os';
import { join } from 'node:path';
import { UserError, errnoCode } from '../lib/errors.ts';
import { FILES } from '../lib/run-files.ts';
import { formatBytes } from '../lib/format.ts';
import { requireSystemBinary } from '../lib/system-binary.ts';

/** Sysctls that matter to connection-per-transaction TCP, in report order. */
export const TCP_SYSCTLS = [
  // ports and TIME_WAIT
  'net.ipv4.ip_local_port_range',
  'net.ipv4.ip_local_reserved_ports',
  'net.ipv4.tcp_tw_reuse',
  'net.ipv4.tcp_tw_reuse_delay',
  'net.ipv4.tcp_tw_recycle', // gone since 4.12; listed so its absence is explicit
  'net.ipv4.tcp_max_tw_buckets',
  'net.ipv4.tcp_fin_timeout',
  'net.ipv4.tcp_rfc1337',
  // accept and SYN queues, handshake timers
  'net.core.somaxconn',
  'net.ipv4.tcp_max_syn_backlog',
  'net.ipv4.tcp_syncookies',
  'net.ipv4.tcp_abort_on_overflow',
  'net.ipv4.tcp_syn_retries',
  'net.ipv4.tcp_synack_retries',
  'net.ipv4.tcp_syn_linear_timeouts',
  'net.ipv4.tcp_migrate_req',
  'net.ipv4.tcp_fastopen',
  // retransmission
  'net.ipv4.tcp_retries1',
  'net.ipv4.tcp_retries2',
  'net.ipv4.tcp_orphan_retries',
  'net.ipv4.tcp_max_orphans',
  'net.ipv4.tcp_rto_min_us',
  'net.ipv4.tcp_rto_max_ms',
  'net.ipv4.tcp_early_retrans',
  'net.ipv4.tcp_recovery',
  'net.ipv4.tcp_thin_linear_timeouts',
  // options, buffers, sending
  'net.ipv4.tcp_timestamps',
  'net.ipv4.tcp_sack',
  'net.ipv4.tcp_window_scaling',
  'net.ipv4.tcp_ecn',
  'net.ipv4.tcp_rmem',
  'net.ipv4.tcp_wmem',
  'net.ipv4.tcp_mem',
  'net.ipv4.tcp_congestion_control',
  'net.ipv4.tcp_slow_start_after_idle',
  'net.ipv4.tcp_autocorking',
  'net.ipv4.tcp_notsent_lowat',
  'net.ipv4.tcp_keepalive_time',
  'net.ipv4.tcp_keepalive_intvl',
  'net.ipv4.tcp_keepalive_probes',
  // device queues and socket buffer limits
  'net.core.netdev_max_backlog',
  'net.core.rmem_max',
  'net.core.wmem_max',
  'net.core.rmem_default',
  'net.core.wmem_default',
  'net.core.default_qdisc',
  // connection tracking: a full table drops new connections (absent without nf_conntrack)
  'net.netfilter.nf_conntrack_max',
  'net.netfilter.nf_conntrack_tcp_timeout_time_wait',
] as const;

export interface Environment {
  schemaVersion: 1;
  takenAt: string;
  /** The network namespace the sysctls were read in (null: the host's). */
  netns: string | null;
  os: { distro: string; release: string; codename: string; kernel: string; arch: string; hostname: string };
  cpu: {
    manufacturer: string | null;
    brand: string | null;
    cores: number | null;
    physicalCores: number | null;
    /** Nominal GHz as systeminformation reports it (0 or null: unknown, common in VMs). */
    speedGHz: number | null;
    /** CPUs online now (/sys/devices/system/cpu/online). */
    online: number;
    onlineList: string | null;
  };
  memory: { totalBytes: number };
  virtualization: {
    /** systeminformation's verdict (null: it timed out). */
    virtual: boolean | null;
    virtualHost: string | null;
    /** "hypervisor" flag in /proc/cpuinfo: a guest of some hypervisor. */
    hypervisorFlag: boolean;
    /** /sys/hypervisor/type (xen, ...) where present. */
    hypervisorType: string | null;
    /** DMI vendor and product (names the cloud or hypervisor), where readable. */
    dmi: string | null;
    /** Container hints: docker, podman, a container= env of PID 1, cgroup paths. */
    container: string | null;
    /** /proc/1/cgroup, compacted. */
    cgroup: string | null;
  };
  node: { version: string; v8: string };
  clocksource: { current: string | null; available: string[] };
  cpufreq: { governors: Record<string, number> | null; note: string };
  /** /proc/pressure present (PSI). */
  psi: boolean;
  /** Values as read, whitespace normalised to single spaces. */
  sysctls: Record<string, string>;
  /** Keys this kernel does not have. */
  sysctlsAbsent: string[];
  /**
   * With a netns: keys the namespace does not have its own copy of
   * (tcp_mem, netdev_max_backlog, ...: host-wide), so the host's value is given.
   */
  sysctlsHostWide: string[];
  /** Parts that could not be read, one line each. */
  missing: string[];
}

export interface SnapshotOptions {
  /** Read sysctls inside this network namespace (ip netns name). */
  netns?: string;
  /** Bound on systeminformation, ms (default 5000). */
  siTimeoutMs?: number;
}

const norm = (s: string): string => s.replace(/\s+/g, ' ').trim();
const readText = (p: string): Promise<string | null> => readFile(p, 'utf8').then(norm, () => null);
const sysctlPath = (key: string): string => '/proc/sys/' + key.replaceAll('.', '/');

export async function snapshotEnvironment(opts: SnapshotOptions = {}): Promise<Environment> {
  const missing: string[] = [];
  const siMs = opts.siTimeoutMs ?? 5000;
  // loaded here, not at import: only the snapshot needs it
  const { default: si } = await import('systeminformation');
  const [osi, cpu, mem, sys, sysctls, local] = await Promise.all([
    bounded('osInfo', si.osInfo(), siMs, missing),
    bounded('cpu', si.cpu(), siMs, missing),
    bounded('mem', si.mem(), siMs, missing),
    bounded('system', si.system(), siMs, missing),
    readSysctls(opts.netns, missing),
    readLocal(),
  ]);
  return {
    schemaVersion: 1,
    takenAt: new Date().toISOString(),
    netns: opts.netns ?? null,
    os: {
      distro: osi?.distro || 'unknown',
      release: osi?.release || '',
      codename: osi?.codename || '',
      kernel: osi?.kernel || os.release(),
      arch: osi?.arch || os.arch(),
      hostname: osi?.hostname || os.hostname(),
    },
    cpu: {
      manufacturer: cpu?.manufacturer || null,
      brand: cpu?.brand || os.cpus()[0]?.model || null,
      cores: cpu?.cores ?? null,
      physicalCores: cpu?.physicalCores ?? null,
      speedGHz: cpu?.speed || null,
      online: local.online,
      onlineList: local.onlineList,
    },
    memory: { totalBytes: mem?.total ?? os.totalmem() },
    virtualization: {
      virtual: sys ? sys.virtual : null,
      virtualHost: sys?.virtualHost || null,
      hypervisorFlag: local.hypervisorFlag,
      hypervisorType: local.hypervisorType,
      dmi: local.dmi,
      container: local.container,
      cgroup: local.cgroup,
    },
    node: { version: process.version, v8: process.versions.v8 },
    clocksource: local.clocksource,
    cpufreq: local.cpufreq,
    psi: existsSync('/proc/pressure/cpu'),
    ...sysctls,
    missing,
  };
}

/** A systeminformation call, or null (noted in `missing`) if it fails or is too slow. */
async function bounded<T>(what: string, p: Promise<T>, ms: number, missing: string[]): Promise<T | null> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<'timeout'>((resolve) => {
    timer = setTimeout(() => resolve('timeout'), ms);
    timer.unref();
  });
  try {
    const r = await Promise.race([p, timeout]);
    if (r === 'timeout') {
      missing.push(`systeminformation ${what}: no answer within ${ms / 1000}s`);
      return null;
    }
    return r;
  } catch (err) {
    missing.push(`systeminformation ${what}: ${err instanceof Error ? err.message : String(err)}`);
    return null;
  } finally {
    clearTimeout(timer);
  }
}

type SysctlPart = Pick<Environment, 'sysctls' | 'sysctlsAbsent' | 'sysctlsHostWide'>;

async function readSysctls(netns: string | undefined, missing: string[]): Promise<SysctlPart> {
  const keys: readonly string[] = TCP_SYSCTLS;
  const host = new Map<string, string>();
  await Promise.all(
    keys.map(async (k) => {
      const v = await readText(sysctlPath(k));
      if (v !== null) host.set(k, v);
    }),
  );
  const inNs = netns === undefined ? host : await readSysctlsInNetns(netns, keys, missing);
  // Never the host's values in place of a namespace's that could not be read.
  if (inNs === null) return { sysctls: {}, sysctlsAbsent: [], sysctlsHostWide: [] };
  const sysctls: Record<string, string> = {};
  const sysctlsAbsent: string[] = [];
  const sysctlsHostWide: string[] = [];
  for (const k of keys) {
    const v = inNs.get(k) ?? host.get(k);
    if (v === undefined) sysctlsAbsent.push(k);
    else sysctls[k] = v;
    if (!inNs.has(k) && host.has(k)) sysctlsHostWide.push(k);
  }
  return { sysctls, sysctlsAbsent, sysctlsHostWide };
}

// One shell in the namespace prints "path NUL value NUL" per readable file:
// /proc/sys/net shows the namespace of the process that reads it.
const NETNS_READER = 'for f in "$@"; do [ -r "$f" ] && v=$(cat "$f" 2>/dev/null) && printf "%s\\0%s\\0" "$f" "$v"; done; exit 0';

async function readSysctlsInNetns(netns: string, keys: readonly string[], missing: string[]): Promise<Map<string, string> | null> {
  if (!/^[A-Za-z0-9_.-]+$/.test(netns) || !existsSync(`/run/netns/${netns}`)) {
    throw new UserError(`network namespace "${netns}" not found (see: ip netns list)`);
  }
  const byPath = new Map(keys.map((k) => [sysctlPath(k), k]));
  const r = await execa(
    requireSystemBinary('ip', 'reading the sysctls of a network namespace'),
    ['netns', 'exec', netns, 'sh', '-c', NETNS_READER, 'sh', ...byPath.keys()],
    {
      reject: false,
      timeout: 5000,
      stripFinalNewline: false,
    },
  );
  if (r.failed) {
    const why = errnoCode(r) === 'ENOENT' ? '`ip` not found (install iproute2)' : norm(String(r.stderr || r.message)).slice(0, 200);
    missing.push(`sysctls in network namespace ${netns}: ${why}`);
    return null;
  }
  const parts = String(r.stdout).split('\0');
  const out = new Map<string, string>();
  for (let i = 0; i + 1 < parts.length; i += 2) {
    const key = byPath.get(parts[i]);
    if (key) out.set(key, norm(parts[i + 1]));
  }
  return out;
}

interface LocalFacts {
  online: number;
  onlineList: string | null;
  hypervisorFlag: boolean;
  hypervisorType: string | null;
  dmi: string | null;
  container: string | null;
  cgroup: string | null;
  clocksource: Environment['clocksource'];
  cpufreq: Environment['cpufreq'];
}

/** Count CPUs in a kernel cpu list such as "0-3,8,10-11". */
export function countCpuList(list: string): number {
  let n = 0;
  for (const part of list.split(',')) {
    const m = /^(\d+)(?:-(\d+))?$/.exec(part.trim());
    if (m) n += m[2] === undefined ? 1 : Number(m[2]) - Number(m[1]) + 1;
  }
  return n;
}

async function readLocal(): Promise<LocalFacts> {
  const cs = '/sys/devices/system/clocksource/clocksource0/';
  const [onlineList, cpuinfo, hvType, vendor, product, current, available, cgroupRaw, environ, governors] = await Promise.all([
    readText('/sys/devices/system/cpu/online'),
    readFile('/proc/cpuinfo', 'utf8').catch(() => ''),
    readText('/sys/hypervisor/type'),
    readText('/sys/class/dmi/id/sys_vendor'),
    readText('/sys/class/dmi/id/product_name'),
    readText(cs + 'current_clocksource'),
    readText(cs + 'available_clocksource'),
    readFile('/proc/1/cgroup', 'utf8').catch(() => null),
    readFile('/proc/1/environ', 'utf8').catch(() => ''),
    readGovernors(),
  ]);
  const flags = /^flags\s*:(.*)$/m.exec(cpuinfo)?.[1] ?? '';
  const hints: string[] = [];
  if (existsSync('/.dockerenv')) hints.push('docker (/.dockerenv)');
  if (existsSync('/run/.containerenv')) hints.push('podman (/run/.containerenv)');
  const envContainer = /(?:^|\0)container=([^\0]*)/.exec(environ)?.[1];
  if (envContainer) hints.push(`container=${envContainer} (PID 1 environment)`);
  const cgroup = cgroupRaw === null ? null : compactCgroup(cgroupRaw);
  const cgHint = /docker|kubepods|containerd|lxc|libpod|crio/.exec(cgroupRaw ?? '')?.[0];
  if (cgHint) hints.push(`${cgHint} in /proc/1/cgroup`);
  return {
    online: onlineList ? countCpuList(onlineList) : os.cpus().length,
    onlineList,
    hypervisorFlag: /\bhypervisor\b/.test(flags),
    hypervisorType: hvType || null,
    dmi: [vendor, product].filter((s) => s).join(' ') || null,
    container: hints.length ? hints.join('; ') : null,
    cgroup,
    clocksource: { current, available: available ? available.split(' ') : [] },
    cpufreq: governors,
  };
}

/** "0::/" alone, or the distinct paths of /proc/1/cgroup: enough to spot a container. */
function compactCgroup(text: string): string {
  const paths = new Set(
    text
      .split('\n')
      .filter((l) => l.trim())
      .map((l) => l.split(':').slice(2).join(':')),
  );
  return [...paths].join(' ');
}

async function readGovernors(): Promise<Environment['cpufreq']> {
  const base = '/sys/devices/system/cpu';
  const cpus = (await readdir(base).catch(() => [] as string[])).filter((d) => /^cpu\d+$/.test(d));
  const counts: Record<string, number> = {};
  for (const c of cpus) {
    const g = await readText(`${base}/${c}/cpufreq/scaling_governor`);
    if (g) counts[g] = (counts[g] ?? 0) + 1;
  }
  if (Object.keys(counts).length === 0) return { governors: null, note: 'absent (no cpufreq: likely a VM)' };
  const note = Object.entries(counts)
    .map(([g, n]) => `${g} on ${n} CPU${n === 1 ? '' : 's'}`)
    .join(', ');
  return { governors: counts, note };
}

// ---------- Markdown ----------

export interface FormatOptions {
  /** Replace the host name (for reports attached to tickets). */
  redact?: boolean;
}

const cell = (s: string): string => s.replaceAll('|', '\\|').replace(/\s+/g, ' ').trim() || '(empty)';

/**
 * The one reader of a run's environment.json: the snapshot, or null with
 * why (missing: none was taken; damaged: one line naming the file). A
 * damaged snapshot never stops an analysis: the report says it is damaged
 * and the timer constants fall back to the kernel's defaults.
 */
export function readEnvironment(runDir: string): { env: Environment | null; problem: string | null } {
  const path = join(runDir, FILES.environment);
  if (!existsSync(path)) return { env: null, problem: null };
  let v: unknown;
  try {
    v = JSON.parse(readFileSync(path, 'utf8'));
  } catch {
    return { env: null, problem: `${path}: corrupt (not JSON)` };
  }
  const why = environmentShape(v);
  return why === null ? { env: v as Environment, problem: null } : { env: null, problem: `${path}: corrupt (${why})` };
}

const isObj = (x: unknown): x is Record<string, unknown> => typeof x === 'object' && x !== null && !Array.isArray(x);

/** What formatEnvironment and the analysis need of a snapshot; null when it is all there. */
function environmentShape(v: unknown): string | null {
  if (!isObj(v)) return 'not an object';
  for (const k of ['os', 'cpu', 'memory', 'virtualization', 'node', 'clocksource', 'cpufreq', 'sysctls'] as const) if (!isObj(v[k])) return `no ${k}`;
  for (const k of ['sysctlsAbsent', 'sysctlsHostWide', 'missing'] as const) if (!Array.isArray(v[k])) return `no ${k} list`;
  if (!Array.isArray((v.clocksource as Record<string, unknown>).available)) return 'no clocksource.available';
  if (Object.values(v.sysctls as object).some((x) => typeof x !== 'string')) return 'a sysctl value is not text';
  return null;
}

/** The report's environment section: a compact table, then the sysctls (folded). */
export function formatEnvironment(env: Environment, opts: FormatOptions = {}): string {
  const o = env.os;
  const c = env.cpu;
  const v = env.virtualization;
  const virt = [
    v.virtual === null ? 'unknown' : v.virtual ? `virtual${v.virtualHost ? ` (${v.virtualHost})` : ''}` : 'bare metal',
    v.hypervisorFlag ? 'hypervisor CPU flag' : null,
    v.hypervisorType ? `hypervisor type ${v.hypervisorType}` : null,
    v.dmi ? `DMI: ${v.dmi}` : null,
  ].filter((s): s is string => s !== null);
  const cores = [
    c.cores !== null ? `${c.cores} cores` : null,
    c.physicalCores !== null ? `${c.physicalCores} physical` : null,
    `${c.online} online${c.onlineList ? ` (${c.onlineList})` : ''}`,
    c.speedGHz ? `${c.speedGHz} GHz` : null,
  ].filter((s): s is string => s !== null);
  const rows: [string, string][] = [
    ['OS', `${o.distro} ${o.release}${o.codename ? ` (${o.codename})` : ''}, ${o.arch}`],
    ['Kernel', o.kernel],
    ['Host', opts.redact ? '(redacted)' : o.hostname],
    ['CPU', `${[c.manufacturer, c.brand].filter((s) => s).join(' ') || 'unknown'}: ${cores.join(', ')}`],
    ['Memory', formatBytes(env.memory.totalBytes)],
    ['Virtualisation', virt.join('; ')],
    ['Container', v.container ?? 'no hint'],
    [
      'Clock source',
      `${env.clocksource.current ?? 'unknown'}${env.clocksource.available.length ? ` (available: ${env.clocksource.available.join(', ')})` : ''}`,
    ],
    ['CPU governor', env.cpufreq.note],
    ['Pressure stall info', env.psi ? 'yes (/proc/pressure)' : 'no'],
    ['Node.js', `${env.node.version} (V8 ${env.node.v8})`],
    ['Network namespace', env.netns ?? 'host'],
  ];
  const lines = ['## Environment', '', '| | |', '|---|---|', ...rows.map(([k, val]) => `| ${k} | ${cell(val)} |`), ''];
  // the sysctls folded (<details>, blank lines around the Markdown inside): a ticket's reader opens them when needed
  const n = Object.keys(env.sysctls).length;
  lines.push(`### TCP sysctls (${env.netns ? `in network namespace ${env.netns}` : 'host'})`, '');
  lines.push('<details>', `<summary>${n} TCP sysctls as the run found them</summary>`, '', '| sysctl | value |', '|---|---|');
  const hostWide = new Set(env.sysctlsHostWide);
  for (const [k, val] of Object.entries(env.sysctls)) lines.push(`| ${k} | ${cell(val)}${hostWide.has(k) ? ' (host-wide)' : ''} |`);
  lines.push('', '</details>', '');
  if (env.sysctlsAbsent.length) lines.push(`Absent on this kernel: ${env.sysctlsAbsent.join(', ')}.`, '');
  if (env.missing.length) lines.push('Not read:', '', ...env.missing.map((m) => `- ${m}`), '');
  return lines.join('\n');
}
