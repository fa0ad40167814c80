// Runs bench/one-run.ts in a fresh network namespace of its own (root:
// `ip netns add`, lo up, deleted after), so one run's TIME_WAIT sockets and
// port reuse never slow the next; on the host, with a note, otherwise.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import type { RunFigures, RunSpec } from './one-run.ts';

const ONE_RUN = fileURLToPath(new URL('./one-run.ts', import.meta.url));

/** Namespaces made and not yet deleted: a bench stopped by a signal deletes them (deleteLiveNamespaces). */
const live = new Set<string>();
const running = new Set<ChildProcess>();

/** Stop the runs in progress (SIGTERM: each stops its own server and client) and delete their namespaces. */
export async function stopLiveRuns(): Promise<void> {
  const gone = [...running].map((p) => new Promise<void>((r) => (p.exitCode !== null || p.signalCode !== null ? r() : p.once('exit', () => r()))));
  for (const p of running) p.kill('SIGTERM');
  await Promise.race([Promise.all(gone), new Promise((r) => setTimeout(r, 8000))]);
  for (const ns of live) spawnSync('ip', ['netns', 'del', ns], { timeout: 10_000 });
  live.clear();
}

/** Why runs go on the host (null: each gets a namespace). */
export function isolationUnavailable(): string | null {
  if (typeof process.getuid !== 'function' || process.getuid() !== 0) return 'not root: runs share the host network namespace (TIME_WAIT of one run can slow the next)';
  const ip = spawnSync('ip', ['-V'], { encoding: 'utf8' });
  if (ip.error !== undefined) return 'no `ip` command: runs share the host network namespace';
  return null;
}

function ip(args: string[]): void {
  const r = spawnSync('ip', args, { encoding: 'utf8', timeout: 10_000 });
  if (r.status !== 0) throw new Error(`ip ${args.join(' ')}: ${(r.stderr ?? '').trim()}`);
}

/** The command that reproduces one run by hand (on the host). */
export const oneRunCommand = (spec: RunSpec): string => `node --import tsx bench/one-run.ts '${JSON.stringify(spec)}'`;

export async function runIsolated(spec: RunSpec, isolate: boolean): Promise<RunFigures> {
  const ns = isolate ? `ssb-${randomBytes(4).toString('hex')}` : null;
  if (ns !== null) {
    ip(['netns', 'add', ns]);
    live.add(ns);
    try {
      ip(['-n', ns, 'link', 'set', 'lo', 'up']);
    } catch (e) {
      spawnSync('ip', ['netns', 'del', ns]);
      live.delete(ns);
      throw e;
    }
  }
  try {
    const node = [process.execPath, '--import', 'tsx', ONE_RUN, JSON.stringify(spec)];
    const cmd = ns === null ? node : ['ip', 'netns', 'exec', ns, ...node];
    const p = spawn(cmd[0], cmd.slice(1), { stdio: ['ignore', 'pipe', 'pipe'], cwd: fileURLToPath(new URL('..', import.meta.url)) });
    running.add(p);
    p.once('exit', () => running.delete(p));
    let out = '';
    let err = '';
    p.stdout.on('data', (d: Buffer) => (out += d.toString()));
    p.stderr.on('data', (d: Buffer) => (err += d.toString()));
    const killer = setTimeout(() => p.kill('SIGKILL'), spec.durationS * 1000 + 60_000);
    const code = await new Promise<number | null>((r) => p.once('exit', (c) => r(c)));
    clearTimeout(killer);
    if (code !== 0) throw new Error(`run failed (${code}): ${err.trim().split('\n').pop() ?? ''}\n  ${oneRunCommand(spec)}`);
    return JSON.parse(out.trim().split('\n').pop()!) as RunFigures;
  } finally {
    if (ns !== null) {
      spawnSync('ip', ['netns', 'del', ns], { timeout: 10_000 });
      live.delete(ns);
    }
  }
}
