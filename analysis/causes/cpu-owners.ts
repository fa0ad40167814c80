import type { ProbeData } from '../../probes/read.ts';
import { formatCores } from '../../lib/format.ts';
import type { OtherProcessesSample } from '../../probes/other-processes.ts';

// Whose CPU: the busy CPU time around the outliers split between
// sockspike's own processes (its client, its built-in server, the probe
// process, bpftrace, the orchestrator), the user's server (--server-cmd or
// --target's process), load sockspike injected (--fault cpu-hog) and
// everything else (busy time no sampled process accounts for).
//
// Each sampled process has proc.<key>.utime and .stime: the share of one core
// it used in each sample. The machine's busy time is cpu.user + cpu.system
// times the number of CPUs; softirq is left out of it, since on a run's own
// traffic it is packet processing on the run's behalf, which no process is
// charged for (npm run validate: a keepalive run at concurrency 16 had 0.7
// cores of it, which counted as "other processes" and named a system cause).
// "Everything else" is what is left, never below zero.

export type CpuOwner = 'sockspike' | 'server' | 'injected' | 'others';

export interface CpuOwners {
  cpus: number;
  /** Busy cores (user + system) near the outliers and in the other samples of the load. */
  busy: { near: number; otherwise: number };
  /** Cores used by each owner near the outliers and otherwise, and the processes behind it (cores near, largest first). */
  owners: Record<CpuOwner, { near: number; otherwise: number; processes: { key: string; near: number }[] }>;
}

/** Which owner a sampled process belongs to, by its key (the role it was added under). */
export function ownerOf(key: string, builtinServer: boolean): CpuOwner {
  if (/^client(-\d+)?$/.test(key) || key === 'probes' || key === 'bpftrace' || key === 'sockspike' || key === 'orchestrator') return 'sockspike';
  if (/^server(-\d+)?$/.test(key)) return builtinServer ? 'sockspike' : 'server';
  if (key.startsWith('cpu-hog')) return 'injected';
  return 'others';
}

/**
 * CPU owners over the rows of the load (`consider`), split by `near` (1:
 * a row around the outliers). Null without CPU samples.
 */
export function cpuOwners(p: ProbeData, consider: Uint8Array, near: Uint8Array, builtinServer: boolean, others: OtherProcessesSample[] = []): CpuOwners | null {
  const user = p.get('cpu.user');
  const system = p.get('cpu.system');
  if (user === null || system === null) return null;
  const cpus = (p.meta?.cpus ?? 0) > 0 ? p.meta.cpus : Math.max(1, p.columns.filter((c) => /^cpu\d+\.idle$/.test(c.name)).length);
  const procs = new Map<string, { owner: CpuOwner; cols: Float64Array[] }>();
  for (const col of p.columns) {
    const m = /^proc\.(.+)\.(utime|stime)$/.exec(col.name);
    const v = m === null ? null : p.get(col.name);
    if (m === null || v === null) continue;
    const e = procs.get(m[1]) ?? { owner: ownerOf(m[1], builtinServer), cols: [] };
    e.cols.push(v);
    procs.set(m[1], e);
  }
  const sum = { near: 0, otherwise: 0 };
  const rows = { near: 0, otherwise: 0 };
  const perProc = new Map<string, { near: number; otherwise: number }>();
  for (let r = 0; r < p.rows; r++) {
    if (consider[r] !== 1 || !Number.isFinite(user[r]) || !Number.isFinite(system[r])) continue;
    const side = near[r] === 1 ? 'near' : 'otherwise';
    rows[side]++;
    sum[side] += (user[r] + system[r]) * cpus;
    for (const [key, e] of procs) {
      let cores = 0;
      for (const v of e.cols) if (Number.isFinite(v[r])) cores += v[r];
      const acc = perProc.get(key) ?? { near: 0, otherwise: 0 };
      acc[side] += cores;
      perProc.set(key, acc);
    }
  }
  if (rows.near + rows.otherwise === 0) return null;
  const mean = (x: number, side: 'near' | 'otherwise'): number => (rows[side] > 0 ? x / rows[side] : 0);
  const owners: CpuOwners['owners'] = {
    sockspike: { near: 0, otherwise: 0, processes: [] },
    server: { near: 0, otherwise: 0, processes: [] },
    injected: { near: 0, otherwise: 0, processes: [] },
    others: { near: 0, otherwise: 0, processes: [] },
  };
  for (const [key, acc] of perProc) {
    const o = owners[procs.get(key)!.owner];
    o.near += mean(acc.near, 'near');
    o.otherwise += mean(acc.otherwise, 'otherwise');
    o.processes.push({ key, near: mean(acc.near, 'near') });
  }
  const busy = { near: mean(sum.near, 'near'), otherwise: mean(sum.otherwise, 'otherwise') };
  for (const side of ['near', 'otherwise'] as const) {
    const known = owners.sockspike[side] + owners.server[side] + owners.injected[side] + owners.others[side];
    owners.others[side] += Math.max(0, busy[side] - known);
  }
  owners.others.processes.push(...othersNear(p, near, others));
  for (const o of Object.values(owners)) o.processes.sort((a, b) => b.near - a.near);
  return { cpus, busy, owners };
}

/**
 * The busiest other processes by name (probes/others.ndjson) in the walks
 * that overlap the rows around the outliers: each name's mean cores there.
 */
function othersNear(p: ProbeData, near: Uint8Array, walks: OtherProcessesSample[]): { key: string; near: number }[] {
  if (walks.length === 0) return [];
  const spans: [number, number][] = [];
  for (let r = 0; r < p.rows; r++) if (near[r] === 1) spans.push([p.t[r] - p.dt[r], p.t[r]]);
  const sum = new Map<string, number>();
  let n = 0;
  for (const w of walks) {
    const from = w.tNs - w.dtNs;
    if (!spans.some(([a, b]) => a < w.tNs && b > from)) continue;
    n++;
    for (const x of w.top) sum.set(x.comm, (sum.get(x.comm) ?? 0) + x.cores);
  }
  return n === 0 ? [] : [...sum].map(([key, cores]) => ({ key, near: cores / n }));
}

/** "sockspike 1.6 cores (client 0.9, server 0.6, probes 0.1)". */
export function describeOwner(name: string, o: CpuOwners['owners'][CpuOwner]): string {
  const parts = o.processes.filter((p) => p.near >= 0.05).map((p) => `${p.key} ${formatCores(p.near)}`);
  return `${name} ${formatCores(o.near)}${parts.length > 0 ? ` (${parts.join(', ')})` : ''}`;
}
