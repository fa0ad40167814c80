// Start-up and wrap-up of the default run, as a user meets them: how long
// `sockspike --help` and `sockspike scenarios` take, and for
// `sockspike run --duration D` (the default workload, probes and kernel
// events on): from the command to the first transaction, from the last
// transaction to report.md on disk, and the whole command. Times come from
// run.json (wallMsAtT0, workload.firstStartNs / lastEndNs: the run's own
// clock) and report.md's mtime, against Date.now() around the command.
//
//   node --import tsx bench/startup.ts [durationS, default 20] [--json]
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { median } from 'simple-statistics';
import { readManifest } from '../analysis/read-run.ts';
import { readKernelEventsFile } from '../probes/kernel-events/events-file.ts';

const BIN = fileURLToPath(new URL('../bin/sockspike.js', import.meta.url));

export interface StartupFigures {
  /** Median wall seconds of 3 calls each. */
  helpS: number;
  scenariosS: number;
  durationS: number;
  /** From the command to the first transaction's start, ms. */
  firstTxnMs: number;
  /** From the last transaction's end to report.md on disk, ms. */
  wrapUpMs: number;
  /** The whole `sockspike run` command, s. */
  totalS: number;
  /** When bpftrace attached, ms after the command (null: no kernel events here). */
  kernelEventsMs: number | null;
  /** CPU of the probe process over the run, % of a core (run.json probes.overheadPct). */
  probeCpuPct: number | null;
  command: string;
}

function wallS(args: string[]): number {
  const times: number[] = [];
  for (let i = 0; i < 3; i++) {
    const t = performance.now();
    const r = spawnSync(process.execPath, [BIN, ...args], { stdio: 'ignore' });
    if (r.status !== 0) throw new Error(`sockspike ${args.join(' ')} exited with ${r.status ?? r.signal}`);
    times.push((performance.now() - t) / 1000);
  }
  return median(times);
}

export function measureStartup(durationS: number): StartupFigures {
  const helpS = wallS(['--help']);
  const scenariosS = wallS(['scenarios']);
  const dir = mkdtempSync(join(tmpdir(), 'sockspike-bench-startup-'));
  try {
    const out = join(dir, 'run');
    const startMs = Date.now();
    const r = spawnSync(process.execPath, [BIN, 'run', '--duration', `${durationS}s`, '--no-progress', '--out', out], { encoding: 'utf8' });
    const endMs = Date.now();
    if (r.status !== 0) throw new Error(`sockspike run exited with ${r.status ?? r.signal}: ${(r.stderr ?? '').trim().split('\n').pop() ?? ''}`);
    const m = readManifest(out);
    if (m.workload === null) throw new Error('the run recorded no workload');
    const events = readKernelEventsFile(out)?.header?.attachedNs ?? null;
    return {
      helpS,
      scenariosS,
      durationS,
      firstTxnMs: m.wallMsAtT0 + m.workload.firstStartNs / 1e6 - startMs,
      wrapUpMs: statSync(join(out, 'report.md')).mtimeMs - (m.wallMsAtT0 + m.workload.lastEndNs / 1e6),
      totalS: (endMs - startMs) / 1000,
      kernelEventsMs: events === null ? null : m.wallMsAtT0 + events / 1e6 - startMs,
      probeCpuPct: m.probes?.overheadPct ?? null,
      command: `node --import tsx bench/startup.ts ${durationS}`,
    };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

if (process.argv[1] !== undefined && fileURLToPath(import.meta.url) === process.argv[1]) {
  const args = process.argv.slice(2);
  const f = measureStartup(Number(args.find((a) => /^\d+(\.\d+)?$/.test(a)) ?? 20));
  if (args.includes('--json')) process.stdout.write(JSON.stringify(f) + '\n');
  else process.stdout.write(JSON.stringify(f, null, 2) + '\n');
}
