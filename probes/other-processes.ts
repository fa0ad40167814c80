import fs from 'node:fs';
import path from 'node:path';
import { UserError } from '../lib/errors.ts';
import { OTHERS_FILE, PROBES_DIR } from './probe-files.ts';

// The busiest other processes: every OTHERS_PERIOD_NS the probe process
// walks /proc and records, for the time since its last walk, the processes
// (by name) that used the most CPU, leaving out the run's own (sampled as
// proc.* columns). So a report can say who held the CPUs besides the run.
// A walk reads every /proc/PID/stat once (about 3 ms for 200 processes from
// JavaScript), so it runs at a low rate: about 0.15 % of a core at the
// default period; the addon's read thread (capture.ts) walks in C instead,
// for a fifth of that, and hands each walk to record().
//
// File probes/others.ndjson, one JSON object a line, one line a walk:
//   {"tNs":N,"dtNs":N,"top":[{"comm":"yes","pids":1,"cores":0.98},...]}
// tNs: ns since t0 (CLOCK_MONOTONIC) of the walk; dtNs: since the walk before;
// top: at most TOP names with at least MIN_CORES of a core over dtNs,
// busiest first (cores: CPU time / dtNs, all of a name's processes together).

export const OTHERS_PERIOD_NS = 2e9;
const TOP = 5;
const MIN_CORES = 0.01;

/** One walk: every process's name and CPU time (utime + stime, clock ticks) by pid. */
export type ProcessTicks = Map<number, { comm: string; ticks: number }>;

export interface OtherProcessesSample {
  tNs: number;
  dtNs: number;
  top: { comm: string; pids: number; cores: number }[];
}

export class OtherProcesses {
  private readonly fd: number;
  private prev = new Map<number, number>();
  private lastNs = -1;

  constructor(
    runDir: string,
    private readonly procRoot: string,
    private readonly clkTck: number,
    /** The run's processes (sampled on their own): left out. */
    private readonly exclude: (pid: number) => boolean,
  ) {
    this.fd = fs.openSync(path.join(runDir, PROBES_DIR, OTHERS_FILE), 'w');
  }

  /** Walk /proc when a period has passed since the last walk (the first walk only takes the baseline). */
  maybeWalk(nowNs: number): void {
    if (this.lastNs >= 0 && nowNs - this.lastNs < OTHERS_PERIOD_NS) return;
    const ticks: ProcessTicks = new Map();
    let names: string[];
    try {
      names = fs.readdirSync(this.procRoot);
    } catch {
      return;
    }
    for (const name of names) {
      const c = name.charCodeAt(0);
      if (c < 48 || c > 57) continue;
      const pid = Number(name);
      let stat: string;
      try {
        stat = fs.readFileSync(`${this.procRoot}/${name}/stat`, 'latin1');
      } catch {
        continue; // gone meanwhile
      }
      const open = stat.indexOf('(');
      const close = stat.lastIndexOf(')');
      if (open < 0 || close < open) continue;
      // fields after the comm: state is the first; utime, stime the 12th and 13th
      const f = stat.slice(close + 2).split(' ');
      ticks.set(pid, { comm: stat.slice(open + 1, close), ticks: Number(f[11]) + Number(f[12]) });
    }
    this.record(nowNs, ticks);
  }

  /** A walk made at nowNs (ns since t0), here or by the read thread: every process's name and CPU ticks by pid. */
  record(nowNs: number, ticks: ProcessTicks): void {
    for (const pid of ticks.keys()) if (this.exclude(pid)) ticks.delete(pid);
    if (this.lastNs >= 0) {
      const dtNs = nowNs - this.lastNs;
      const byComm = new Map<string, { pids: number; ticks: number }>();
      for (const [pid, cur] of ticks) {
        const before = this.prev.get(pid);
        if (before === undefined || !(cur.ticks >= before)) continue;
        const e = byComm.get(cur.comm) ?? { pids: 0, ticks: 0 };
        e.pids++;
        e.ticks += cur.ticks - before;
        byComm.set(cur.comm, e);
      }
      const top = [...byComm]
        .map(([comm, e]) => ({ comm, pids: e.pids, cores: Math.round(((e.ticks / this.clkTck) * 1e9 * 1000) / dtNs) / 1000 }))
        .filter((x) => x.cores >= MIN_CORES)
        .sort((a, b) => b.cores - a.cores)
        .slice(0, TOP);
      fs.writeSync(this.fd, JSON.stringify({ tNs: Math.round(nowNs), dtNs: Math.round(dtNs), top } satisfies OtherProcessesSample) + '\n');
    }
    this.prev = new Map([...ticks].map(([pid, v]) => [pid, v.ticks]));
    this.lastNs = nowNs;
  }

  close(): void {
    fs.closeSync(this.fd);
  }
}

/** The walks of a run (probes/others.ndjson); [] when the run has none (older runs, probes off). One line naming the file when damaged. */
export function readOtherProcesses(runDir: string): OtherProcessesSample[] {
  const file = path.join(runDir, PROBES_DIR, OTHERS_FILE);
  if (!fs.existsSync(file)) return [];
  const out: OtherProcessesSample[] = [];
  const lines = fs.readFileSync(file, 'utf8').split('\n');
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i];
    if (line === '') continue;
    let v: unknown;
    try {
      v = JSON.parse(line);
    } catch {
      // the probe process killed mid-line: the last line may be cut
      if (i === lines.length - 1) break;
      throw new UserError(`${file}: damaged (line ${i + 1} is not JSON); run the workload again or remove the file`);
    }
    const s = v as OtherProcessesSample;
    if (typeof s?.tNs !== 'number' || typeof s.dtNs !== 'number' || !Array.isArray(s.top))
      throw new UserError(`${file}: damaged (line ${i + 1} is not a walk of other processes); run the workload again or remove the file`);
    out.push(s);
  }
  return out;
}
