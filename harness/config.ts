import { isIP } from 'node:net';
import { parseDurationNs } from '../lib/duration.ts';
import { findSystemBinary } from '../lib/system-binary.ts';
import { UserError } from '../lib/errors.ts';
import { CLOSE_MODES, type CloseMode, type RunConfig } from '../lib/types.ts';
import { needsNetns, parseFault } from './kernel/fault-spec.ts';
import { requireRoot } from './kernel/netns.ts';
import { mayBePerNetns, parseSysctl } from './kernel/sysctl-spec.ts';
import { resolveExternal, type ExternalServerOptions } from './external/options.ts';
import { resolveTemplate } from './workload/request-template.ts';
import { resolveEngine } from './engine.ts';

// From the command line's strings to a validated RunConfig. Every bound is
// here, so a bad value fails before anything starts.

export interface RunOptions extends ExternalServerOptions {
  transactions?: string;
  duration?: string;
  concurrency: string;
  requestBytes: string;
  responseBytes: string;
  exchanges: string;
  serverExchanges?: string;
  thinkTime: string;
  host: string;
  port?: string;
  connectTimeout: string;
  ioTimeout: string;
  rate?: string;
  arrivals: string;
  maxInflight: string;
  close: string;
  perConnection: string;
  backlog: string;
  nodelay: string;
  splitWrites: string;
  acceptDelay: string;
  outlier?: string;
  warmup?: string;
  probeInterval: string;
  probeSlowInterval?: string;
  kernelStates: string;
  seed: string;
  clientProcesses: string;
  netns?: boolean;
  sysctl?: string[];
  hostSysctl?: boolean;
  fault?: string[];
  scenario?: string;
  engine?: string;
}

export const DEFAULTS = {
  duration: '10s',
  concurrency: '1',
  requestBytes: '3000',
  responseBytes: '3000',
  exchanges: '2',
  thinkTime: '0',
  host: '127.0.0.1',
  connectTimeout: '10s',
  ioTimeout: '10s',
  arrivals: 'uniform',
  maxInflight: '256',
  close: 'client-fin',
  perConnection: '100',
  backlog: '128',
  nodelay: 'off',
  splitWrites: '1',
  acceptDelay: '0',
  probeInterval: '20ms',
  probeSlowInterval: '100ms',
  kernelStates: 'off',
  seed: '1',
  clientProcesses: '1',
} as const;

const MAX_TIMEOUT_NS = 300e9;

export function int(text: string, flag: string, min: number, max: number): number {
  if (!/^\d+$/.test(text.trim())) throw new UserError(`${flag}: "${text}" is not a whole number`);
  const n = Number(text);
  if (n < min || n > max) throw new UserError(`${flag}: ${n} is out of range (${min}..${max})`);
  return n;
}

/** Root, ip(8) and a server the run starts (not --target's, which lives in the host's namespace). */
function defaultNetns(o: RunOptions): boolean {
  return typeof process.getuid === 'function' && process.getuid() === 0 && o.target === undefined && findSystemBinary('ip') !== null;
}

function duration(text: string, flag: string, bare: 's' | 'ms', minNs: number, maxNs: number): number {
  const ns = parseDurationNs(text, flag, bare);
  if (ns < minNs || ns > maxNs) throw new UserError(`${flag}: ${text} is out of range`);
  return ns;
}

export function parseClose(text: string): { close: CloseMode; lingerSeconds: number } {
  const m = /^linger:(\d+)$/.exec(text);
  if (m) return { close: 'linger', lingerSeconds: int(m[1], '--close linger:N', 0, 3600) };
  if (text === 'linger') throw new UserError('--close linger needs a timeout: linger:N (seconds)');
  if (!(CLOSE_MODES as readonly string[]).includes(text))
    throw new UserError(`--close: unknown variant "${text}" (one of client-fin, server-fin, client-rst, server-rst, linger:N, keepalive)`);
  return { close: text as CloseMode, lingerSeconds: 0 };
}

/**
 * Loopback only: a load generator must not flood another host by a typo.
 * The one place that decides which addresses load may go to: `ownAddresses`
 * are those of the run's own network namespaces (allowed), `allowRemote`
 * is --allow-remote (with --target).
 */
export function checkLoopback(host: string, opts: { flag?: string; allowRemote?: boolean; ownAddresses?: readonly string[] } = {}): void {
  const loop = host === 'localhost' || host === '::1' || (isIP(host) === 4 && host.startsWith('127.'));
  if (loop || opts.allowRemote === true || (opts.ownAddresses ?? []).includes(host)) return;
  const flag = opts.flag ?? '--host';
  throw new UserError(
    `${flag} ${host}: only loopback addresses (127.0.0.0/8, ::1, localhost) are allowed` +
      (flag === '--target' ? '; add --allow-remote if you really mean to load another host' : ''),
  );
}

export function resolveConfig(o: RunOptions): RunConfig {
  const noLimit = o.transactions === undefined && o.duration === undefined;
  const transactions = o.transactions === undefined ? null : int(o.transactions, '--transactions', 1, 1e9);
  const durationText = o.duration ?? (noLimit ? DEFAULTS.duration : undefined);
  const durationNs = durationText === undefined ? null : duration(durationText, '--duration', 's', 1e6, 7 * 86400e9);
  const close = parseClose(o.close);
  const rate = o.rate === undefined ? null : Number(o.rate);
  if (rate !== null && !(Number.isFinite(rate) && rate > 0 && rate <= 1e6))
    throw new UserError(`--rate: "${o.rate}" must be a number of transactions per second in (0, 1000000]`);
  if (o.arrivals !== 'uniform' && o.arrivals !== 'poisson') throw new UserError(`--arrivals: "${o.arrivals}" must be uniform or poisson`);
  if (o.nodelay !== 'on' && o.nodelay !== 'off') throw new UserError(`--nodelay: "${o.nodelay}" must be on or off`);
  const ext = resolveExternal(o, DEFAULTS); // --server-cmd / --target: harness/external/options.ts
  if (ext.target !== null) checkLoopback(ext.target.host, { flag: '--target', allowRemote: o.allowRemote === true });
  else checkLoopback(o.host);
  const requestBytes = int(o.requestBytes, '--request-bytes', 1, 64 << 20);
  const splitWrites = int(o.splitWrites, '--split-writes', 1, 1024);
  if (splitWrites > requestBytes) throw new UserError(`--split-writes ${splitWrites} exceeds --request-bytes ${requestBytes}`);
  const cfg: RunConfig = {
    host: ext.target?.host ?? (o.host === 'localhost' ? '127.0.0.1' : o.host),
    port: ext.target?.port ?? (o.port === undefined ? 0 : int(o.port, '--port', 1, 65535)),
    transactions,
    durationNs,
    concurrency: int(o.concurrency, '--concurrency', 1, 10000),
    requestBytes,
    responseBytes: int(o.responseBytes, '--response-bytes', 1, 64 << 20),
    exchanges: int(o.exchanges, '--exchanges', 1, 1000),
    serverExchanges: o.serverExchanges === undefined ? int(o.exchanges, '--exchanges', 1, 1000) : int(o.serverExchanges, '--server-exchanges', 1, 1000),
    thinkTimeNs: duration(o.thinkTime, '--think-time', 'ms', 0, 3600e9),
    connectTimeoutNs: duration(o.connectTimeout, '--connect-timeout', 'ms', 1e6, MAX_TIMEOUT_NS),
    ioTimeoutNs: duration(o.ioTimeout, '--io-timeout', 'ms', 1e6, MAX_TIMEOUT_NS),
    rate,
    arrivals: o.arrivals,
    maxInflight: int(o.maxInflight, '--max-inflight', 1, 10000),
    close: close.close,
    lingerSeconds: close.lingerSeconds,
    perConnection: int(o.perConnection, '--per-connection', 1, 1e9),
    backlog: int(o.backlog, '--backlog', 0, 65535),
    nodelay: o.nodelay === 'on',
    splitWrites,
    acceptDelayNs: duration(o.acceptDelay, '--accept-delay', 'ms', 0, 60e9),
    outlierUs: o.outlier === undefined ? null : Math.round(duration(o.outlier, '--outlier', 'ms', 1e3, 3600e9) / 1e3),
    warmupNs: o.warmup === undefined ? null : duration(o.warmup, '--warmup', 's', 0, 3600e9),
    probeIntervalNs: duration(o.probeInterval, '--probe-interval', 'ms', 10e6, 60e9),
    probeSlowIntervalNs: duration(o.probeSlowInterval ?? DEFAULTS.probeSlowInterval, '--probe-slow-interval', 'ms', 10e6, 60e9),
    kernelStates: kernelStates(o.kernelStates),
    seed: int(o.seed, '--seed', 0, 2 ** 31),
    clientProcesses: int(o.clientProcesses, '--client-processes', 1, 64),
    // a namespace of the run's own by default where it can have one: its counters are then the run's alone
    netns: o.netns ?? defaultNetns(o),
    sysctls: lastPerKey((o.sysctl ?? []).map(parseSysctl)),
    hostSysctl: o.hostSysctl === true,
    faults: (o.fault ?? []).map(parseFault),
    scenario: o.scenario ?? null,
  };
  // per-namespace sysctls and packet faults live in the run's own namespace
  if (cfg.sysctls.some((s) => mayBePerNetns(s.key)) || cfg.faults.some(needsNetns)) cfg.netns = true;
  const workers = cfg.rate === null ? cfg.concurrency : cfg.maxInflight;
  if (cfg.clientProcesses > workers)
    throw new UserError(
      `--client-processes ${cfg.clientProcesses} exceeds ${cfg.rate === null ? `--concurrency ${cfg.concurrency}` : `--max-inflight ${cfg.maxInflight}`}: each process needs a share`,
    );
  if (cfg.transactions !== null && cfg.clientProcesses > cfg.transactions)
    throw new UserError(`--client-processes ${cfg.clientProcesses} exceeds --transactions ${cfg.transactions}`);
  if (cfg.serverExchanges > cfg.exchanges) throw new UserError(`--server-exchanges ${cfg.serverExchanges} exceeds --exchanges ${cfg.exchanges}`);
  if (cfg.serverExchanges < cfg.exchanges && cfg.close === 'keepalive')
    throw new UserError('--server-exchanges cuts a connection short: it does not go with --close keepalive');
  if (cfg.netns && cfg.external?.kind === 'target')
    throw new UserError(
      "--target drives a server that is already running, and the run's new namespace has none: use --server-cmd to start it inside, or leave out --netns, --sysctl and packet faults",
    );
  if (cfg.external != null && cfg.faults.some((f) => f.kind === 'accept-delay'))
    throw new UserError("--fault accept-delay slows the built-in server's accept loop: it cannot slow your own server");
  if (cfg.netns) requireRoot(o.netns === true ? '--netns' : cfg.sysctls.length > 0 ? '--sysctl' : '--fault');
  else if (cfg.sysctls.length > 0) requireRoot('--sysctl');
  if (cfg.faults.some((f) => f.kind === 'accept-delay') && cfg.acceptDelayNs > 0)
    throw new UserError('--fault accept-delay and --accept-delay together: use one (the fault is --accept-delay in a window)');
  if (cfg.faults.some((f) => f.kind === 'cpu-hog') && cfg.faults.filter((f) => f.kind === 'cpu-hog').length > 1)
    throw new UserError('--fault cpu-hog: give it once, with the number of processes');
  if (ext.external !== null) cfg.external = ext.external;
  const template = resolveTemplate(o, cfg.exchanges); // --request / --response-until: harness/workload/request-template.ts
  if (template !== null) {
    if (ext.external === null)
      throw new UserError(
        `${template.source.split(' ')[0]} drives your own server: add --server-cmd "CMD" or --target HOST:PORT (the built-in server speaks only its echo protocol)`,
      );
    cfg.template = template;
    cfg.requestBytes = Buffer.from(template.requestBase64, 'base64').length;
    cfg.responseBytes = template.until.kind === 'bytes' ? template.until.bytes : 0;
    if (splitWrites > cfg.requestBytes) throw new UserError(`--split-writes ${splitWrites} exceeds the request's ${cfg.requestBytes} bytes`);
  }
  cfg.engine = resolveEngine(o.engine, cfg); // harness/engine.ts: native where it is built, else node
  return cfg;
}

/** A key given twice keeps its last value (scenario first, then the command line). */
function lastPerKey(list: { key: string; value: string }[]): { key: string; value: string }[] {
  const m = new Map<string, string>();
  for (const s of list) {
    m.delete(s.key);
    m.set(s.key, s.value);
  }
  return [...m].map(([key, value]) => ({ key, value }));
}

function kernelStates(text: string): RunConfig['kernelStates'] {
  if (text === 'off' || text === 'handshake' || text === 'all') return text;
  throw new UserError(`--kernel-states: "${text}" must be off, handshake or all`);
}

/** The configuration `sockspike run` resolves with no flags at all. */
export const defaultConfig = (): RunConfig => resolveConfig({ ...DEFAULTS });
