// Shared helpers for the harness tests: run the real CLI as a child process,
// temporary run directories, run.json / summary.json, process liveness.
import type { ExecutionContext } from 'ava';
import { execa, type Options, type ResultPromise } from 'execa';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { RunManifest } from '../../lib/run-files.ts';
import type { Summary } from '../../lib/types.ts';
import { timeWaitSides } from './netns.ts';

export const ROOT = resolve(fileURLToPath(new URL('../..', import.meta.url)));
export const BIN = join(ROOT, 'bin', 'sockspike.js');

/** Bytes of one transaction record with E exchanges (docs/run-directory.md), and of the file header. */
export const txnRecordSize = (exchanges: number): number => 48 + 4 * exchanges;
export const HEADER_BYTES = 16;

/** A fresh directory under the OS temp dir, removed when the test ends (pass or fail). */
export function tempDir(t: ExecutionContext): string {
  const dir = mkdtempSync(join(tmpdir(), 'sockspike-test-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

const BASE: Options = { cwd: ROOT, reject: false, stdin: 'ignore', env: { NO_COLOR: '1' } };

/** `node bin/sockspike.js ...args`, never rejecting, killed after timeoutMs. */
export function sockspike(args: string[], opts: Options = {}): ResultPromise<Options> {
  return execa('node', [BIN, ...args], { ...BASE, timeout: 90_000, ...opts });
}

/**
 * `sockspike ...args` left running while the test acts on it; SIGKILLed by
 * pid in teardown if the test ends (e.g. fails) before it does.
 */
export function startSockspike(t: ExecutionContext, args: string[], opts: Options = {}): ResultPromise<Options> {
  const child = sockspike(args, opts);
  child.catch(() => {});
  t.teardown(() => {
    if (child.exitCode === null && child.signalCode === null && child.pid !== undefined) {
      try {
        process.kill(child.pid, 'SIGKILL');
      } catch {
        /* already gone */
      }
    }
  });
  return child;
}

/** A command (ip, ss, ...) with the same defaults. */
export function cmd(file: string, args: string[], opts: Options = {}): ResultPromise<Options> {
  return execa(file, args, { ...BASE, timeout: 60_000, ...opts });
}

export const readManifestFile = (dir: string): RunManifest => JSON.parse(readFileSync(join(dir, 'run.json'), 'utf8')) as RunManifest;
export const readSummaryFile = (dir: string): Summary => JSON.parse(readFileSync(join(dir, 'summary.json'), 'utf8')) as Summary;

/** run.json as it is now, or null while it is missing or half-written. */
export function peekManifest(dir: string): RunManifest | null {
  try {
    return readManifestFile(dir);
  } catch {
    return null;
  }
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Poll until cond() returns a value other than null/undefined/false, or fail after timeoutMs. */
export async function waitFor<T>(what: string, cond: () => T | null | undefined | false, timeoutMs: number, everyMs = 50): Promise<T> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const v = cond();
    if (v !== null && v !== undefined && v !== false) return v;
    if (Date.now() > until) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(everyMs);
  }
}

/** Wait for run.json to list the client process (server listening, client started). */
export function waitForClient(dir: string, timeoutMs = 45_000): Promise<RunManifest> {
  return waitFor(
    'the client process in run.json',
    () => {
      const m = peekManifest(dir);
      return m !== null && m.processes.some((p) => p.role === 'client' && p.pid > 0) ? m : null;
    },
    timeoutMs,
  );
}

/**
 * Wait until the run's client has completed at least `n` transactions, seen
 * from outside: client-side TIME_WAIT sockets to the server port (client-fin),
 * in the run's network namespace.
 * The records themselves reach the disk only in pages of 4096.
 */
export async function waitForTransactions(dir: string, n: number, timeoutMs = 45_000): Promise<RunManifest> {
  const m = await waitForClient(dir, timeoutMs);
  const port = m.config.port;
  // in the run's own namespace where it has one (as root, by default)
  const ns = m.kernel?.netns ?? null;
  await waitFor(`${n} completed transactions (TIME_WAIT to port ${port})`, () => timeWaitSides(ns, port).client >= n, timeoutMs, 100);
  return m;
}

/**
 * Is pid a live process of this harness? (kill(pid, 0) succeeds and it is
 * not a zombie.) A recycled pid belonging to another program is not counted.
 */
export function harnessProcessAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ESRCH') return false;
    throw err;
  }
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const state = stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
    if (state === 'Z' || state === 'X') return false;
    const cmdline = readFileSync(`/proc/${pid}/cmdline`, 'utf8');
    return cmdline.includes(ROOT);
  } catch {
    return false; // gone between the two reads
  }
}

/** A process as seen at one moment: pid plus its start time, so a recycled pid is not mistaken for it. */
export interface ProcId {
  pid: number;
  startTicks: string;
  cmd: string;
}

function procId(pid: number): ProcId | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    if (rest[0] === 'Z' || rest[0] === 'X') return null;
    const cmd = readFileSync(`/proc/${pid}/cmdline`, 'utf8').replace(/\0/g, ' ').trim();
    return { pid, startTicks: rest[19], cmd }; // field 22 of stat: starttime
  } catch {
    return null;
  }
}

/** Every live descendant of pid right now (children, their children, ...). */
export function descendants(pid: number): ProcId[] {
  const out: ProcId[] = [];
  const queue = [pid];
  while (queue.length > 0) {
    const p = queue.shift()!;
    let tasks: string[] = [];
    try {
      tasks = readdirSync(`/proc/${p}/task`);
    } catch {
      continue;
    }
    for (const tid of tasks) {
      let kids: string[] = [];
      try {
        kids = readFileSync(`/proc/${p}/task/${tid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean);
      } catch {
        continue;
      }
      for (const k of kids) {
        const id = procId(Number(k));
        if (id !== null && !out.some((o) => o.pid === id.pid)) {
          out.push(id);
          queue.push(id.pid);
        }
      }
    }
  }
  return out;
}

/** The same process (pid and start time) is still running (zombies count as gone). */
export function stillRunning(p: ProcId): boolean {
  const now = procId(p.pid);
  return now !== null && now.startTicks === p.startTicks;
}

/** SIGKILL, by pid, those of `procs` still running (teardown of a test that started them). */
export function killStillRunning(procs: ProcId[]): void {
  for (const p of procs) {
    if (!stillRunning(p)) continue;
    try {
      process.kill(p.pid, 'SIGKILL');
    } catch {
      /* gone */
    }
  }
}

/** Processes listed in run.json that are still alive (should be none after a run ends). */
export function leftoverProcesses(m: RunManifest): Array<{ role: string; pid: number }> {
  return m.processes.filter((p) => p.pid > 0 && harnessProcessAlive(p.pid)).map((p) => ({ role: p.role, pid: p.pid }));
}

/**
 * Teardown: SIGKILL any process of the run directory's run.json that is still
 * alive (each was started by a CLI this test started), by pid.
 */
export function killLeftoversOnTeardown(t: ExecutionContext, dir: string): void {
  t.teardown(() => {
    if (!existsSync(join(dir, 'run.json'))) return;
    const m = peekManifest(dir);
    if (m === null) return;
    for (const p of leftoverProcesses(m)) {
      try {
        process.kill(p.pid, 'SIGKILL');
      } catch {
        /* already gone */
      }
    }
  });
}

/** attempted = ok + failed + timed out, and the errors by code add up to failed + timed out. */
export function assertAccounting(t: ExecutionContext, s: Summary): void {
  const x = s.transactions;
  t.is(x.attempted, x.ok + x.failed + x.timedOut, `attempted ${x.attempted} != ok ${x.ok} + failed ${x.failed} + timedOut ${x.timedOut}`);
  const byCode = Object.values(x.errors).reduce((a, b) => a + b, 0);
  t.is(byCode, x.failed + x.timedOut, `errors by code ${JSON.stringify(x.errors)} do not add up to failed + timedOut`);
  t.is(x.errors.timeout ?? 0, x.timedOut, 'timedOut equals errors.timeout');
}

/**
 * How long after `sinceNs` (process.hrtime.bigint(): CLOCK_MONOTONIC, as the
 * run's t0Ns) the run's workload ended (run.json endNs), in ms: when a test
 * is about the workload stopping, not about the analysis after it.
 */
export function workloadEndedAfterMs(m: RunManifest, sinceNs: bigint): number {
  if (m.endNs === null) return Infinity;
  return Number(BigInt(m.t0Ns) + BigInt(Math.round(m.endNs)) - sinceNs) / 1e6;
}

/** Lines of a stream's text, without the empty last one. */
export const lines = (text: unknown): string[] =>
  String(text ?? '')
    .split('\n')
    .filter((l) => l.length > 0);

/**
 * After a run: wait up to graceMs for every process of `tree` to be gone;
 * returns those still running then (a leftover).
 */
export async function leftoversAfter(tree: ProcId[], graceMs = 2000): Promise<ProcId[]> {
  const until = Date.now() + graceMs;
  for (;;) {
    const left = tree.filter(stillRunning);
    if (left.length === 0 || Date.now() > until) return left;
    await sleep(50);
  }
}
