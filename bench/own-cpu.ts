// CPU of everything sockspike runs besides the client and server, as a run
// records it: the orchestrator (`sockspike run` itself), the probe process
// and bpftrace, each read from /proc/PID/stat by the sampler (every ~500 ms
// while sampling: probes/read.ts ownProcessesCpu), for a default run and a
// high-rate client-rst run. The client's and server's CPU beside them, from
// the same samples.
//
//   node --import tsx bench/own-cpu.ts [durationS, default 20] [--json] [-- run flags...]
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { readManifest } from '../analysis/read-run.ts';
import { ownProcessesCpu, processCpuShare, readProbes } from '../probes/read.ts';

const BIN = fileURLToPath(new URL('../bin/sockspike.js', import.meta.url));

export interface OwnCpuFigures {
  /** The run's flags besides --duration, --out and --no-progress. */
  flags: string[];
  durationS: number;
  transactions: number;
  /** Orchestrator + probes + bpftrace, % of one core while sampling; null when the run recorded none. */
  ownPct: number | null;
  byProcess: { role: string; pct: number }[];
  /** Client and server processes together, % of one core, for scale. */
  workloadPct: number | null;
  /** The probe process's own account (run.json probes.overheadPct). */
  probeOwnAccountPct: number | null;
  command: string;
}

export function measureOwnCpu(durationS: number, flags: string[] = []): OwnCpuFigures {
  const dir = mkdtempSync(join(tmpdir(), 'sockspike-bench-own-'));
  try {
    const out = join(dir, 'run');
    const r = spawnSync(process.execPath, [BIN, 'run', '--duration', `${durationS}s`, '--no-progress', '--out', out, ...flags], { encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`sockspike run exited with ${r.status ?? r.signal}: ${(r.stderr ?? '').trim().split('\n').pop() ?? ''}`);
    const m = readManifest(out);
    const d = readProbes(out);
    const own = ownProcessesCpu(d);
    let workload: number | null = null;
    for (const p of d.meta.processes) {
      if (p.own === true) continue;
      const c = processCpuShare(d, p.key);
      if (c !== null) workload = (workload ?? 0) + c.share;
    }
    return {
      flags,
      durationS,
      transactions: m.workload?.attempted ?? 0,
      ownPct: own === null ? null : 100 * own.total,
      byProcess: own === null ? [] : own.processes.map((p) => ({ role: p.role, pct: 100 * p.share })),
      workloadPct: workload === null ? null : 100 * workload,
      probeOwnAccountPct: m.probes?.overheadPct ?? null,
      command: `sockspike run --duration ${durationS}s${flags.length > 0 ? ` ${flags.join(' ')}` : ''}   # then the report's "Harness self-check"`,
    };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

if (process.argv[1] !== undefined && fileURLToPath(import.meta.url) === process.argv[1]) {
  const args = process.argv.slice(2);
  const dash = args.indexOf('--');
  const own = dash >= 0 ? args.slice(0, dash) : args;
  const f = measureOwnCpu(Number(own.find((a) => /^\d+(\.\d+)?$/.test(a)) ?? 20), dash >= 0 ? args.slice(dash + 1) : []);
  if (own.includes('--json')) process.stdout.write(JSON.stringify(f) + '\n');
  else process.stdout.write(JSON.stringify(f, null, 2) + '\n');
}
