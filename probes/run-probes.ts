import { fork, spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { formatNs } from '../lib/format.ts';
import { UserError } from '../lib/errors.ts';
import { COMPILED, moduleFile, packageFile } from '../lib/paths.ts';
import { requireSystemBinary } from '../lib/system-binary.ts';
import { META_FILE, PROBES_DIR, type ProbeMeta, type ProbeResult, type SkippedProbe } from './probe-files.ts';
import type { ListenerTarget } from './listen-queue.ts';
import type { FromSampler, SamplerConfig, ToSampler } from './messages.ts';

// Start and stop the probe process (sampler-process.ts) from a run.

export const DEFAULT_PROBE_INTERVAL_NS = 20e6;
export const MIN_PROBE_INTERVAL_NS = 10e6;

export interface ProbeOptions {
  runDir: string;
  /** The run's t0 (CLOCK_MONOTONIC ns): sample times are stored relative to it. */
  t0: bigint;
  /** Default 20 ms; at least 10 ms. */
  intervalNs?: number;
  /** How often what is not read every sample is read (default 100 ms; at most every sample). */
  slowPeriodNs?: number;
  /** Processes to sample (client, server, ...); own: one of sockspike's own (orchestrator, bpftrace), its CPU only, read every ~500 ms. */
  processes?: { role: string; pid: number; own?: boolean }[];
  /** The server's listening socket, by pid/fd or by port. */
  listener?: ListenerTarget;
  /** Sample inside this network namespace (ip netns exec): its /proc/net counters. */
  netns?: string;
  /** For tests: another /proc, per-CPU columns on/off, a subset of system probes. */
  procRoot?: string;
  perCpu?: boolean | 'auto';
  sources?: string[];
  /** How long the probe process may take to start (default 20 s). */
  startTimeoutMs?: number;
}

export interface ProbeHandle {
  /** The probe process. */
  pid: number;
  /** Probes that cannot run here, known at start. */
  skipped: SkippedProbe[];
  columns: number;
  /** Sample one more process from the next sample on; own: one of sockspike's own (CPU only). */
  addProcess(role: string, pid: number, own?: boolean): void;
  /** Watch a listening socket (replaces the one given at start). */
  setListener(listener: ListenerTarget): void;
  /** Stop sampling; resolves once the files are complete. Never rejects. */
  stop(): Promise<ProbeResult>;
}

/** Check a probe interval, in ns: at least 10 ms. */
export function checkProbeInterval(ns: number): number {
  if (!Number.isFinite(ns) || ns < MIN_PROBE_INTERVAL_NS) {
    throw new UserError(`probe interval ${formatNs(ns)} is too short: use at least ${formatNs(MIN_PROBE_INTERVAL_NS)}`);
  }
  return ns;
}

/** Check that a named network namespace (ip netns) exists. */
export function checkNetns(name: string): void {
  if (!/^[\w.-]+$/.test(name) || !['/run/netns', '/var/run/netns'].some((d) => fs.existsSync(path.join(d, name)))) {
    throw new UserError(`network namespace ${name} does not exist (see ip netns list)`);
  }
}

// Compiled, the probe process is sampler-process.js itself; from sources,
// sampler-boot.cjs loads sampler-process.ts with tsx's in-thread require
// hook (see there why not --import tsx).
const SAMPLER = COMPILED ? moduleFile('probes/sampler-process.ts') : packageFile('probes/sampler-boot.cjs');

// V8 without helper threads and without the memory reducer: the probe
// process's JavaScript wakes twice a second to parse a few kB and allocates
// almost nothing, and V8's concurrent GC and compiler threads cost more
// waking up than the work they take off it (~0.1 % of a core), as do the
// reducer's full collections of an idle heap (~0.1 %).
const SAMPLER_FLAGS = ['--single-threaded', '--no-memory-reducer'];

function spawnSampler(netns: string | undefined): ChildProcess {
  const stdio: ['ignore', 'ignore', 'pipe', 'ipc'] = ['ignore', 'ignore', 'pipe', 'ipc'];
  if (!netns) return fork(SAMPLER, [], { execArgv: SAMPLER_FLAGS, stdio });
  // The IPC channel's fd and NODE_CHANNEL_FD survive ip's exec of node.
  return spawn(requireSystemBinary('ip', 'sampling a network namespace'), ['netns', 'exec', netns, process.execPath, ...SAMPLER_FLAGS, SAMPLER], { stdio });
}

/** Start the probe process; resolves once it has taken its baseline sample. */
export async function startProbes(opts: ProbeOptions): Promise<ProbeHandle> {
  const intervalNs = checkProbeInterval(opts.intervalNs ?? DEFAULT_PROBE_INTERVAL_NS);
  if (opts.netns !== undefined) checkNetns(opts.netns);
  const config: SamplerConfig = {
    runDir: path.resolve(opts.runDir),
    t0: opts.t0.toString(),
    intervalNs,
    ...(opts.slowPeriodNs !== undefined ? { slowPeriodNs: opts.slowPeriodNs } : {}),
    processes: opts.processes ?? [],
    listener: opts.listener,
    netns: opts.netns ?? null,
    procRoot: opts.procRoot,
    perCpu: opts.perCpu,
    sources: opts.sources,
  };
  const child = spawnSampler(opts.netns);
  let stderr = '';
  child.stderr?.setEncoding('utf8');
  child.stderr?.on('data', (d: string) => {
    stderr = (stderr + d).slice(-4000);
  });
  let exited: string | null = null;
  let onExit: (() => void) | null = null;
  const exitPromise = new Promise<void>((resolve) => {
    child.on('exit', (code, signal) => {
      exited = signal ? `killed by ${signal}` : `exited with code ${code}`;
      onExit?.();
      resolve();
    });
  });
  let stopped: ((r: ProbeResult) => void) | null = null;
  let lastError: string | null = null;
  const send = (msg: ToSampler): void => {
    if (child.connected) child.send(msg);
  };
  const lastLine = (): string => stderr.trim().split('\n').filter(Boolean).pop() ?? '';

  const ready = await new Promise<Extract<FromSampler, { type: 'ready' }>>((resolve, reject) => {
    const timer = setTimeout(() => {
      reject(new UserError(`the probe process did not start within ${(opts.startTimeoutMs ?? 20000) / 1000} s`));
      child.kill('SIGKILL');
    }, opts.startTimeoutMs ?? 20000);
    child.on('message', (msg: FromSampler) => {
      if (msg.type === 'ready') {
        clearTimeout(timer);
        resolve(msg);
      } else if (msg.type === 'error') {
        lastError = msg.message;
      } else if (msg.type === 'stopped') {
        stopped?.(msg.result);
      }
    });
    onExit = () => {
      clearTimeout(timer);
      const why = lastError ?? lastLine() ?? '';
      reject(new UserError(`the probe process ${exited}${opts.netns ? ` (netns ${opts.netns})` : ''}${why ? `: ${why}` : ''}`));
    };
    child.on('error', (err) => {
      // After a spawn, a failed send (EPIPE) means the process is dying: its exit says why.
      if (child.pid !== undefined) return;
      clearTimeout(timer);
      reject(new UserError(`cannot start the probe process: ${err.message}`));
    });
    send({ type: 'start', config });
  });
  onExit = null;

  let result: Promise<ProbeResult> | null = null;
  return {
    pid: child.pid ?? -1,
    skipped: ready.skipped,
    columns: ready.columns,
    addProcess: (role, pid, own) => send({ type: 'addProcess', role, pid, ...(own === true ? { own } : {}) }),
    setListener: (listener) => send({ type: 'setListener', listener }),
    stop: () => {
      result ??= new Promise<ProbeResult>((resolve) => {
        let done = false;
        const fallback = (why: string): void => {
          if (!done) resolve(resultFromDisk(config.runDir, intervalNs, why));
          done = true;
        };
        if (exited) {
          fallback(`error: the probe process ${exited} early${lastError ? `: ${lastError}` : ''}`);
          return;
        }
        const timer = setTimeout(() => {
          // Ours to end: we started it.
          child.kill('SIGKILL');
          fallback('error: the probe process did not stop within 10 s');
        }, 10_000);
        stopped = (r) => {
          clearTimeout(timer);
          done = true;
          exitPromise.then(() => resolve(r));
          setTimeout(() => child.kill('SIGKILL'), 5000).unref();
        };
        onExit = () => {
          // 'exit' can overtake the last IPC message: give it until the channel closes.
          const late = (): void => {
            clearTimeout(timer);
            fallback(`error: the probe process ${exited} while stopping${lastError ? `: ${lastError}` : ''}`);
          };
          if (child.connected) child.once('disconnect', () => setImmediate(late));
          else setImmediate(late);
        };
        send({ type: 'stop' });
      });
      return result;
    },
  };
}

/** What can be said from the files when the probe process did not report. */
function resultFromDisk(runDir: string, intervalNs: number, stopReason: string): ProbeResult {
  let meta: Partial<ProbeMeta> = {};
  try {
    meta = JSON.parse(fs.readFileSync(path.join(runDir, PROBES_DIR, META_FILE), 'utf8')) as ProbeMeta;
  } catch {
    // nothing on disk
  }
  return {
    samples: meta.rows ?? 0,
    intervalNs,
    columns: meta.columns?.length ?? 0,
    bytes: 0,
    jitter: { meanNs: NaN, p50Ns: NaN, p99Ns: NaN, maxNs: NaN, missedSlots: 0 },
    overhead: {
      cpuPerSecond: NaN,
      userPerSecond: NaN,
      systemPerSecond: NaN,
      wallNs: NaN,
      meanSampleNs: NaN,
      maxSampleNs: NaN,
      startupCpuNs: NaN,
    },
    skipped: meta.skipped ?? [],
    processes: meta.processes ?? [],
    files: [path.join(PROBES_DIR, META_FILE)],
    stopReason,
  };
}
