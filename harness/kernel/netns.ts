import { randomBytes } from 'node:crypto';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { execa } from 'execa';
import { UserError } from '../../lib/errors.ts';
import { requireSystemBinary } from '../../lib/system-binary.ts';

/** ip(8) by absolute path; missing, the run stops with one line naming iproute2. */
const ip = (): string => requireSystemBinary('ip', 'a network namespace (--netns, --sysctl, --fault)');

// The run's own network namespace: loopback up, nothing else. Server,
// client and the network probes run inside it (ip netns exec), so its TCP
// counters and per-namespace sysctls are the run's alone.

export const NETNS_PREFIX = 'sspk-';

export function requireRoot(what: string): void {
  if (typeof process.getuid !== 'function' || process.getuid() !== 0)
    throw new UserError(`${what} needs root (network namespaces, sysctls, nftables): run as root, or leave it out`);
}

/** A fresh name: the run's (sspk-<pid>-<hex>), or another prefix's for namespaces no run owns (the bench's). */
export function newNetnsName(prefix = NETNS_PREFIX): string {
  return `${prefix}${process.pid}-${randomBytes(3).toString('hex')}`;
}

export async function addNetns(name: string): Promise<void> {
  const add = await execa(ip(), ['netns', 'add', name], { reject: false, timeout: 10_000 });
  if (add.failed) throw new UserError(`could not create network namespace ${name}: ${oneLine(String(add.stderr ?? '') || String(add.message))}`);
  const up = await execa(ip(), ['-n', name, 'link', 'set', 'lo', 'up'], { reject: false, timeout: 10_000 });
  if (up.failed) {
    await deleteNetns(name);
    throw new UserError(`could not bring up loopback in ${name}: ${oneLine(String(up.stderr ?? '') || String(up.message))}`);
  }
}

/** Delete a namespace; false when there was none by that name. */
export async function deleteNetns(name: string): Promise<boolean> {
  if (!existsSync(`/run/netns/${name}`)) return false;
  await execa(ip(), ['netns', 'del', name], { reject: false, timeout: 10_000 });
  return true;
}

/** Run a command inside a namespace; its output, or a one-line failure. */
export async function inNetns(name: string, cmd: string, args: string[], input?: string): Promise<{ ok: boolean; out: string; err: string }> {
  const r = await execa(ip(), ['netns', 'exec', name, cmd, ...args], { reject: false, timeout: 10_000, input });
  return { ok: !r.failed, out: String(r.stdout), err: oneLine(String(r.stderr ?? '') || String(r.message)) };
}

export const oneLine = (s: string): string => s.trim().split('\n').pop() ?? '';

/** The per-namespace sysctl folders a new namespace starts with kernel defaults in (their files, not their per-device subfolders). */
const SYSCTL_DIRS = ['/proc/sys/net/core', '/proc/sys/net/ipv4', '/proc/sys/net/ipv6', '/proc/sys/net/unix'];

// Writes each (path, value) pair whose value differs in the namespace; counts the writes that took.
const COPY =
  'n=0; while [ $# -gt 1 ]; do if [ -w "$1" ] && [ "$(cat "$1" 2>/dev/null)" != "$2" ] && printf "%s\\n" "$2" > "$1" 2>/dev/null; then n=$((n+1)); fi; shift 2; done; echo $n';

/**
 * A new namespace starts with the kernel's defaults, not the host's
 * settings (somaxconn, tcp_tw_reuse, the port range, buffer sizes): copy
 * the host's values of the per-namespace keys in, so the run sees the host's
 * settings with counters of its own. Returns how many keys differed and were copied.
 */
export async function copyHostSysctls(name: string): Promise<number> {
  const pairs: string[] = [];
  for (const dir of SYSCTL_DIRS) {
    let names: string[];
    try {
      names = readdirSync(dir, { withFileTypes: true })
        .filter((d) => d.isFile())
        .map((d) => d.name);
    } catch {
      continue; // no IPv6, say
    }
    for (const n of names) {
      try {
        const v = readFileSync(`${dir}/${n}`, 'utf8').trim();
        if (v !== '' && !v.includes('\n')) pairs.push(`${dir}/${n}`, v);
      } catch {
        // write-only or unreadable: nothing to copy
      }
    }
  }
  const r = await inNetns(name, 'sh', ['-c', COPY, 'sh', ...pairs]);
  return r.ok ? Number(r.out.trim()) || 0 : 0;
}
