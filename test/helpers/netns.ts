// Network namespaces of a test's own: created with `ip netns add`, loopback
// up, always deleted in teardown (pass, fail or crash of the test body).
import type { ExecutionContext } from 'ava';
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';

/** Why namespaces cannot be made here (not root, no `ip`), or null when they can. */
export function netnsUnavailable(): string | null {
  if (typeof process.getuid !== 'function' || process.getuid() !== 0) return 'not running as root: cannot create network namespaces';
  const ip = spawnSync('ip', ['-V'], { encoding: 'utf8' });
  if (ip.error !== undefined) return `the ip command is not available (${(ip.error as NodeJS.ErrnoException).code ?? ip.error.message})`;
  const ss = spawnSync('ss', ['-V'], { encoding: 'utf8' });
  if (ss.error !== undefined) return `the ss command is not available (${(ss.error as NodeJS.ErrnoException).code ?? ss.error.message})`;
  return null;
}

function ip(args: string[]): { ok: boolean; stderr: string } {
  const r = spawnSync('ip', args, { encoding: 'utf8', timeout: 10_000 });
  return { ok: r.status === 0, stderr: (r.stderr ?? '').trim() || String(r.error ?? '') };
}

/** Create a namespace `sst-<random>` with lo up; return its name. Throws with ip's message on failure. */
export function createNetns(): string {
  const name = `sst-${randomBytes(4).toString('hex')}`;
  const add = ip(['netns', 'add', name]);
  if (!add.ok) throw new Error(`ip netns add ${name}: ${add.stderr}`);
  const up = ip(['-n', name, 'link', 'set', 'lo', 'up']);
  if (!up.ok) {
    deleteNetns(name);
    throw new Error(`ip -n ${name} link set lo up: ${up.stderr}`);
  }
  return name;
}

export function deleteNetns(name: string): void {
  ip(['netns', 'del', name]);
}

/** A namespace deleted when the test ends. */
export function netnsFor(t: ExecutionContext): string {
  const name = createNetns();
  t.teardown(() => deleteNetns(name));
  return name;
}

/** TIME_WAIT sockets in a namespace (null: this one), by side: local port = server port (server side) or peer port = server port (client side). */
export function timeWaitSides(ns: string | null, serverPort: number): { server: number; client: number; other: number } {
  const ss = ['ss', '-Htan', 'state', 'time-wait'];
  const r =
    ns === null
      ? spawnSync(ss[0], ss.slice(1), { encoding: 'utf8', timeout: 10_000 })
      : spawnSync('ip', ['netns', 'exec', ns, ...ss], { encoding: 'utf8', timeout: 10_000 });
  if (r.status !== 0) throw new Error(`ss ${ns === null ? '' : `in ${ns} `}failed: ${r.stderr}`);
  const out = { server: 0, client: 0, other: 0 };
  for (const line of r.stdout.split('\n')) {
    const f = line.trim().split(/\s+/);
    if (f.length < 4) continue;
    // Recv-Q Send-Q Local:Port Peer:Port (the state column is left out with a state filter)
    const port = (a: string): number => Number(a.slice(a.lastIndexOf(':') + 1));
    const local = port(f[f.length - 2]);
    const peer = port(f[f.length - 1]);
    if (local === serverPort) out.server++;
    else if (peer === serverPort) out.client++;
    else out.other++;
  }
  return out;
}
