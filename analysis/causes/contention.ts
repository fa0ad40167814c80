import type { ProbeData } from '../../probes/read.ts';
import { lowerBound } from '../windows.ts';

// Was a harness process starved of CPU by someone else? An event-loop stall
// of the client or server is the harness's own doing when it is busy with its
// own work; when other processes hold the CPUs, the stall is the system's
// (CPU contention) and belongs to cpu-saturation, not to harness-stall.
//
// Rule, per probe row overlapping the stall: the CPUs are at least BUSY
// busy, and processes other than sockspike's client and server use at least
// OTHERS_CORES of a core (busy cores minus their utime + stime).

export const BUSY = 0.9;
export const OTHERS_CORES = 0.5;

export type Contention = (fromNs: number, toNs: number) => boolean;

export function cpuContention(p: ProbeData): Contention | undefined {
  const idle = p.get('cpu.idle');
  if (idle === null) return undefined;
  const iowait = p.get('cpu.iowait');
  const ncpu = Math.max(1, p.columns.filter((c) => /^cpu\d+\.idle$/.test(c.name)).length);
  const own = p.columns
    .filter((c) => /^proc\.(client|server)[^.]*\.(utime|stime)$/.test(c.name))
    .map((c) => p.get(c.name))
    .filter((v): v is Float64Array => v !== null);
  const contended = new Uint8Array(p.rows);
  for (let r = 0; r < p.rows; r++) {
    if (!Number.isFinite(idle[r])) continue;
    const busy = 1 - idle[r] - (iowait !== null && Number.isFinite(iowait[r]) ? iowait[r] : 0);
    let ours = 0;
    for (const v of own) if (Number.isFinite(v[r])) ours += v[r];
    contended[r] = busy >= BUSY && busy * ncpu - ours >= OTHERS_CORES ? 1 : 0;
  }
  const t = p.t;
  const dt = p.dt;
  return (fromNs, toNs) => {
    // from the first row ending at or after fromNs
    for (let r = lowerBound(t, fromNs); r < t.length && t[r] - dt[r] <= toNs; r++) if (contended[r] === 1) return true;
    return false;
  };
}
