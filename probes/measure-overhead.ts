// Benchmark: CPU of the probe process per second of sampling, at 20 ms and
// 10 ms. Two figures per interval: the probe's own account (process.cpuUsage
// from its baseline sample to its last, so it includes the first samples'
// JIT warm-up) and an outside view of the steady state (utime+stime of the
// probe process from /proc/PID/stat, read after a warm-up and at the end).
//
//   node --import tsx probes/measure-overhead.ts [seconds per interval, default 20] [--processes N] [--json]
//
// --json prints one JSON line (an array, one entry per interval) instead.
//
// --processes N also samples N processes (this one, repeated), as a run
// samples its client and server.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { startProbes } from './run-probes.ts';

const args = process.argv.slice(2);
const seconds = Number(args.find((a) => /^\d+(\.\d+)?$/.test(a)) ?? 20);
const pIdx = args.indexOf('--processes');
const nproc = pIdx >= 0 ? Number(args[pIdx + 1]) : 2;
const WARMUP_MS = 2000;
const json = args.includes('--json');
const results: {
  intervalMs: number;
  samples: number;
  columns: number;
  cpuPctOwn: number;
  cpuPctSteady: number;
  meanSampleUs: number;
  lateP50Us: number;
  lateP99Us: number;
}[] = [];

const cpuTicks = (pid: number): number => {
  const text = fs.readFileSync(`/proc/${pid}/stat`, 'latin1');
  const f = text.slice(text.lastIndexOf(')') + 2).split(' ');
  return Number(f[11]) + Number(f[12]); // utime, stime (fields 14, 15)
};
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sockspike-overhead-'));
const hz = 100;
if (!json) console.log(`probe overhead: ${seconds} s per interval, ${nproc} process(es) sampled, ${os.cpus().length} CPUs, load ${os.loadavg()[0].toFixed(2)}`);
try {
  for (const ms of [20, 10]) {
    const runDir = path.join(dir, `${ms}ms`);
    const probes = await startProbes({
      runDir,
      t0: process.hrtime.bigint(),
      intervalNs: ms * 1e6,
      processes: Array.from({ length: nproc }, (_, i) => ({ role: `p${i}`, pid: process.pid })),
    });
    await sleep(WARMUP_MS);
    const c0 = cpuTicks(probes.pid);
    const w0 = performance.now();
    await sleep(seconds * 1000);
    const c1 = cpuTicks(probes.pid);
    const w1 = performance.now();
    const r = await probes.stop();
    const steady = (c1 - c0) / hz / ((w1 - w0) / 1000);
    results.push({
      intervalMs: ms,
      samples: r.samples,
      columns: r.columns,
      cpuPctOwn: r.overhead.cpuPerSecond * 100,
      cpuPctSteady: steady * 100,
      meanSampleUs: r.overhead.meanSampleNs / 1e3,
      lateP50Us: r.jitter.p50Ns / 1e3,
      lateP99Us: r.jitter.p99Ns / 1e3,
    });
    if (!json)
      console.log(
        `interval ${ms} ms: ${r.samples} samples, ${r.columns} columns; ` +
          `probe CPU ${(r.overhead.cpuPerSecond * 100).toFixed(2)}% of a core (own account, incl. warm-up), ` +
          `${(steady * 100).toFixed(2)}% steady state (/proc/PID/stat after ${WARMUP_MS / 1000} s); ` +
          `read+parse per sample mean ${(r.overhead.meanSampleNs / 1e3).toFixed(0)} us; ` +
          `lateness p50 ${(r.jitter.p50Ns / 1e3).toFixed(0)} us p99 ${(r.jitter.p99Ns / 1e3).toFixed(0)} us max ${(r.jitter.maxNs / 1e6).toFixed(1)} ms, ` +
          `${r.jitter.missedSlots} missed; ${(r.bytes / r.samples).toFixed(0)} bytes/sample`,
      );
  }
  if (json) console.log(JSON.stringify(results));
} finally {
  fs.rmSync(dir, { recursive: true, force: true });
}
