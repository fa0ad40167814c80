// Runs bench/one-run.ts in a fresh network namespace of its own (root:
// `ip netns add`, lo up, deleted after), so one run's TIME_WAIT sockets and
// port reuse never slow the next; on the host, with a note, otherwise.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { addNetns, deleteNetns, newNetnsName } from '../harness/kernel/netns.ts';
import { systemBinary } from '../lib/system-binary.ts';
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
  await Promise.all([...live].map((ns) => deleteNetns(ns)));
  live.clear();
}

/** Why runs go on the host (null: each gets a namespace). */
export function isolationUnavailable(): string | null {
  if (typeof process.getuid !== 'function' || process.getuid() !== 0)
    return 'not root: runs share the host network namespace (TIME_WAIT of one run can slow the next)';
  const ip = spawnSync('ip', ['-V'], { encoding: 'utf8' });
  if (ip.error !== undefined) return 'no `ip` command: runs share the host network namespace';
  return null;
}

/** The command that reproduces one run by hand (on the host). */
export const oneRunCommand = (spec: RunSpec): string => `node --import tsx bench/one-run.ts '${JSON.stringify(spec)}'`;

export async function runIsolated(spec: RunSpec, isolate: boolean): Promise<RunFigures> {
  // the harness's own namespace lifecycle (loopback up; deleted again if that fails)
  const ns = isolate ? newNetnsName('ssb-') : null;
  if (ns !== null) {
    live.add(ns);
    try {
      await addNetns(ns);
    } catch (e) {
      live.delete(ns);
      throw e;
    }
  }
  try {
    const node = [process.execPath, '--import', 'tsx', ONE_RUN, JSON.stringify(spec)];
    const cmd = ns === null ? node : [systemBinary('ip'), 'netns', 'exec', ns, ...node];
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
      await deleteNetns(ns);
      live.delete(ns);
    }
  }
}
