import type { RunConfig } from './types.ts';
import { externalServerArgs } from './external-server-args.ts';
import { shellQuote } from './shell.ts';

// A `sockspike run` command that reproduces a run from its resolved
// configuration (run.json `config`), with some flags changed: every setting
// the run had is kept (namespace, sysctls, faults, a scenario's settings
// spelt out, your server and protocol, the load's shape), so a suggested
// command changes exactly what it says it changes. Settings at their
// default are left out; `--concurrency` and `--close` are always written.

/** A flag's new value; true: a switch; null or false: leave the flag out (its default). */
export type FlagChange = string | number | boolean | null;

/** The defaults of `sockspike run` (harness/config.ts DEFAULTS, checked equal by test/run-args.test.ts). */
export const RUN_DEFAULTS = {
  requestBytes: 3000,
  responseBytes: 3000,
  exchanges: 2,
  thinkTimeNs: 0,
  host: '127.0.0.1',
  connectTimeoutNs: 10e9,
  ioTimeoutNs: 10e9,
  arrivals: 'uniform',
  maxInflight: 256,
  perConnection: 100,
  backlog: 128,
  splitWrites: 1,
  acceptDelayNs: 0,
  probeIntervalNs: 20e6,
  probeSlowIntervalNs: 100e6,
  kernelStates: 'off',
  seed: 1,
  clientProcesses: 1,
  serverWaitNs: 10e9,
} as const;

/** A duration in ns as a flag value in its shortest exact unit: 1ms, 1500us, 2s. */
export function durationFlag(ns: number): string {
  if (ns === 0) return '0';
  for (const [u, f] of [
    ['s', 1e9],
    ['ms', 1e6],
    ['us', 1e3],
  ] as const)
    if (ns % f === 0) return `${ns / f}${u}`;
  return `${Math.round(ns / 1e3)}us`;
}

/** The run's settings as [flag, value] pairs in a fixed order (value true: a switch); repeatable flags appear once per value. */
export function runFlags(c: Partial<RunConfig>): [string, string | true][] {
  const out: [string, string | true][] = [];
  const put = (flag: string, v: string | number | true): void => void out.push([flag, v === true ? true : String(v)]);
  const differs = <K extends keyof typeof RUN_DEFAULTS>(key: K, v: unknown): boolean => v !== undefined && v !== null && v !== RUN_DEFAULTS[key];
  if (c.transactions != null) put('--transactions', c.transactions);
  if (c.durationNs != null) put('--duration', durationFlag(c.durationNs));
  if (c.rate != null) {
    put('--rate', c.rate);
    if (differs('arrivals', c.arrivals)) put('--arrivals', c.arrivals as string);
    if (differs('maxInflight', c.maxInflight)) put('--max-inflight', c.maxInflight as number);
  } else put('--concurrency', c.concurrency ?? 1);
  if (differs('thinkTimeNs', c.thinkTimeNs)) put('--think-time', durationFlag(c.thinkTimeNs as number));
  if (differs('clientProcesses', c.clientProcesses)) put('--client-processes', c.clientProcesses as number);
  if (!c.template) {
    if (differs('requestBytes', c.requestBytes)) put('--request-bytes', c.requestBytes as number);
    if (differs('responseBytes', c.responseBytes)) put('--response-bytes', c.responseBytes as number);
    if (differs('exchanges', c.exchanges)) put('--exchanges', c.exchanges as number);
  }
  if (c.serverExchanges !== undefined && c.exchanges !== undefined && c.serverExchanges !== c.exchanges && !c.external)
    put('--server-exchanges', c.serverExchanges);
  put('--close', c.close === 'linger' ? `linger:${c.lingerSeconds ?? 0}` : (c.close ?? 'client-fin'));
  if (c.close === 'keepalive' && differs('perConnection', c.perConnection)) put('--per-connection', c.perConnection as number);
  if (!c.external) {
    if (differs('backlog', c.backlog)) put('--backlog', c.backlog as number);
    if (differs('acceptDelayNs', c.acceptDelayNs)) put('--accept-delay', durationFlag(c.acceptDelayNs as number));
  }
  if (c.nodelay) put('--nodelay', 'on');
  if (differs('splitWrites', c.splitWrites)) put('--split-writes', c.splitWrites as number);
  if (c.external?.kind !== 'target' && differs('host', c.host)) put('--host', c.host as string);
  if (differs('connectTimeoutNs', c.connectTimeoutNs)) put('--connect-timeout', durationFlag(c.connectTimeoutNs as number));
  if (differs('ioTimeoutNs', c.ioTimeoutNs)) put('--io-timeout', durationFlag(c.ioTimeoutNs as number));
  if (c.outlierUs != null) put('--outlier', durationFlag(c.outlierUs * 1e3));
  if (c.warmupNs != null) put('--warmup', durationFlag(c.warmupNs));
  if (differs('probeIntervalNs', c.probeIntervalNs)) put('--probe-interval', durationFlag(c.probeIntervalNs as number));
  if (c.probeSlowIntervalNs !== undefined && differs('probeSlowIntervalNs', c.probeSlowIntervalNs))
    put('--probe-slow-interval', durationFlag(c.probeSlowIntervalNs));
  if (differs('kernelStates', c.kernelStates)) put('--kernel-states', c.kernelStates as string);
  if (c.rate != null && c.arrivals === 'poisson' && differs('seed', c.seed)) put('--seed', c.seed as number);
  if (c.netns) put('--netns', true);
  for (const s of c.sysctls ?? []) put('--sysctl', `${s.key}=${s.value}`);
  if (c.hostSysctl) put('--host-sysctl', true);
  for (const f of c.faults ?? []) put('--fault', f.text);
  if (c.external?.kind === 'command' && c.external.waitNs !== RUN_DEFAULTS.serverWaitNs) put('--server-wait', durationFlag(c.external.waitNs));
  // the Node client and server where the run had them (the native engine is the default where it is built)
  if (c.engine === 'node') put('--engine', 'node');
  return out;
}

/**
 * `sockspike run ...` for this configuration with `change` applied: a flag in
 * `change` replaces every value the run had for it (null or false: drop it,
 * back to its default); a flag the run did not have is added at the end.
 */
export function suggestedRun(c: Partial<RunConfig>, change: Record<string, FlagChange> = {}): string {
  const flags = runFlags(c);
  const words: string[] = ['sockspike run', ...externalServerArgs(c)];
  const done = new Set<string>();
  const emit = (flag: string, v: FlagChange): void => {
    if (v === null || v === false) return;
    words.push(v === true ? flag : `${flag} ${shellQuote(String(v))}`);
  };
  for (const [flag, v] of flags) {
    if (flag in change) {
      if (!done.has(flag)) emit(flag, change[flag]);
      done.add(flag);
    } else emit(flag, v);
  }
  for (const [flag, v] of Object.entries(change)) if (!done.has(flag) && !flags.some(([f]) => f === flag)) emit(flag, v);
  return words.join(' ');
}

/**
 * The change that lowers the offered load about by half, never a no-op:
 * half the rate (open loop), half the clients, or with one client a think
 * time as long as a typical transaction (twice the one it had).
 */
export function lowerLoad(c: Partial<RunConfig>, typicalUs: number): Record<string, FlagChange> {
  if (c.rate != null) return { '--rate': Math.max(1, Math.round(c.rate / 2)) };
  const n = c.concurrency ?? 1;
  if (n > 1) return { '--concurrency': Math.floor(n / 2) };
  const think = Math.max(2 * (c.thinkTimeNs ?? 0), Math.ceil(Math.max(typicalUs, 100) / 100) * 100e3);
  return { '--think-time': durationFlag(think) };
}
