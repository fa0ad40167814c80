// References for the probe-overhead figure, measured in the same bench run:
// - native: `ref probe` (bench/native/ref.c) reads the same /proc files as
//   the sampler (system-wide, plus stat/status/schedstat of two processes)
//   every interval with pread, in C: what reading them costs at all;
// - idle node: a Node process that only wakes every interval
//   (setInterval(() => {}, ms)): the floor of any Node sampler.
// Both run side by side for the same seconds; CPU per second of one core.
import { spawn } from 'node:child_process';
import { cpuSeconds } from './one-run.ts';

export interface ProbeReference {
  intervalMs: number;
  nativeCpuPct: number;
  idleNodeCpuPct: number;
}

async function nativeReader(ref: string, ms: number, seconds: number): Promise<number> {
  const p = spawn(ref, ['probe', '-i', String(ms), '-d', String(seconds), '-P', String(process.pid), '-P', String(process.pid)], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  let out = '';
  p.stdout.on('data', (d: Buffer) => (out += d.toString()));
  const code = await new Promise<number | null>((r) => p.once('exit', (c) => r(c)));
  if (code !== 0) throw new Error(`ref probe exited ${code}`);
  return (JSON.parse(out) as { cpuPct: number }).cpuPct;
}

async function idleNode(ms: number, seconds: number): Promise<number> {
  const p = spawn(process.execPath, ['-e', `setInterval(() => {}, ${ms})`], { stdio: 'ignore' });
  try {
    await new Promise((r) => setTimeout(r, 1000)); // start-up left out
    const c0 = cpuSeconds(p.pid!);
    const t0 = performance.now();
    await new Promise((r) => setTimeout(r, seconds * 1000));
    return ((cpuSeconds(p.pid!) - c0) / ((performance.now() - t0) / 1000)) * 100;
  } finally {
    p.kill('SIGKILL');
  }
}

export async function probeReferences(ref: string, seconds: number): Promise<ProbeReference[]> {
  const out: ProbeReference[] = [];
  for (const ms of [20, 10]) {
    const [nativeCpuPct, idleNodeCpuPct] = await Promise.all([nativeReader(ref, ms, seconds), idleNode(ms, seconds)]);
    out.push({ intervalMs: ms, nativeCpuPct, idleNodeCpuPct });
  }
  return out;
}
