import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Command } from 'commander';
import { execa, type ResultPromise } from 'execa';
import { monoNs } from '../lib/clock.ts';
import { parseDurationNs } from '../lib/duration.ts';
import { formatNs, formatPercent } from '../lib/format.ts';
import { UserError } from '../lib/errors.ts';
import { signalExitCode, trapStopSignals } from '../lib/signals.ts';
import { FILES, newManifest, type RunManifest } from '../lib/run-files.ts';
import { shellJoin } from '../lib/shell.ts';
import type { RunConfig } from '../lib/types.ts';
import { makeRunDir, writeManifest } from '../harness/make-run-dir.ts';
import { META_FILE, PROBES_DIR, SAMPLES_FILE, type ProbeResult } from '../probes/probe-files.ts';
import { checkNetns, checkProbeInterval, startProbes } from '../probes/run-probes.ts';

// sockspike probe: sample the system on its own, for a duration or while a
// command runs, into a run directory that `sockspike analyze` reads later.
// A probe-only directory records no transactions.

interface ProbeCliOptions {
  out: string;
  duration?: string;
  interval: string;
  pid?: string[];
  port?: string;
  netns?: string;
  progress: boolean;
}

const parsePid = (text: string): { role: string; pid: number } => {
  const m = /^(?:([\w-]+)=)?(\d+)$/.exec(text.trim());
  const pid = m ? Number(m[2]) : NaN;
  if (!m || !Number.isSafeInteger(pid) || pid < 1) throw new UserError(`--pid ${text}: use a process id, or ROLE=PID (e.g. server=1234)`);
  return { role: m[1] ?? `pid${pid}`, pid };
};

const parsePort = (text: string): number => {
  const p = Number(text);
  if (!/^\d+$/.test(text) || p < 1 || p > 65535) throw new UserError(`--port ${text}: use a TCP port, 1-65535`);
  return p;
};

/** A RunConfig for a run that had no workload of ours: zeros say nothing ran. */
const probeOnlyConfig = (intervalNs: number, durationNs: number | null, port: number | null): RunConfig => ({
  host: '',
  port: port ?? 0,
  transactions: 0,
  durationNs,
  concurrency: 0,
  requestBytes: 0,
  responseBytes: 0,
  exchanges: 0,
  serverExchanges: 0,
  thinkTimeNs: 0,
  connectTimeoutNs: 0,
  ioTimeoutNs: 0,
  rate: null,
  arrivals: 'uniform',
  maxInflight: 0,
  close: 'client-fin',
  lingerSeconds: 0,
  perConnection: 0,
  backlog: 0,
  nodelay: false,
  splitWrites: 0,
  acceptDelayNs: 0,
  outlierUs: null,
  probeIntervalNs: intervalNs,
  kernelStates: 'off',
  seed: 0,
  clientProcesses: 0,
  netns: false,
  sysctls: [],
  hostSysctl: false,
  faults: [],
  scenario: null,
});

export function register(program: Command): void {
  program
    .command('probe')
    .description('sample system state (CPU, TCP counters, sockets, processes) on its own, for a duration or while COMMAND runs')
    .requiredOption('--out <dir>', 'run directory to write')
    .option('--duration <d>', 'stop after this long; a bare number is seconds (default: until COMMAND ends, or Ctrl-C)')
    .option('--interval <d>', 'sampling interval (>= 10ms)', '20ms')
    .option('--pid <pid...>', 'also sample these processes (PID or ROLE=PID)')
    .option('--port <p>', 'watch the accept queue of the socket listening on this port')
    .option('--netns <name>', 'sample the TCP counters of this network namespace (ip netns exec)')
    .option('--no-progress', 'no progress line, even on a terminal')
    .argument('[command...]', 'command to run while sampling (after --); its process is sampled too')
    .action(async (command: string[], o: ProbeCliOptions) => {
      const code = await probeCommand(command, o);
      if (code !== 0) process.exitCode = code;
    });
}

async function probeCommand(command: string[], o: ProbeCliOptions): Promise<number> {
  const intervalNs = checkProbeInterval(parseDurationNs(o.interval, '--interval', 'ms'));
  const durationNs = o.duration === undefined ? null : parseDurationNs(o.duration, '--duration', 's');
  if (durationNs !== null && durationNs < intervalNs) throw new UserError(`--duration ${o.duration} is shorter than one --interval`);
  const processes = (o.pid ?? []).map(parsePid);
  const port = o.port === undefined ? null : parsePort(o.port);
  if (o.netns !== undefined) checkNetns(o.netns);
  const dir = makeRunDir(o.out, 'probe');
  const t0 = monoNs();
  const argv = process.argv.slice(1);
  const reproduce = shellJoin(['sockspike', ...process.argv.slice(2)]);
  const manifest = newManifest({
    argv,
    reproduce,
    t0,
    config: probeOnlyConfig(intervalNs, durationNs, port),
    files: { transactions: [], server: [], probes: [join(PROBES_DIR, META_FILE), join(PROBES_DIR, SAMPLES_FILE)] },
  });
  manifest.processes = processes.map((p) => ({ ...p, exit: null }));
  manifest.notes.push(
    command.length > 0
      ? `probe-only run (sockspike probe): the workload was \`${shellJoin(command)}\`; sockspike recorded no transactions`
      : 'probe-only run (sockspike probe): sockspike recorded no transactions',
  );
  writeManifest(dir, manifest);
  writeFileSync(join(dir, FILES.command), reproduce + '\n');

  let probes: Awaited<ReturnType<typeof startProbes>>;
  try {
    probes = await startProbes({
      runDir: dir,
      t0,
      intervalNs,
      // this process's CPU too, as sockspike's own (the report's self-check)
      processes: [...processes, { role: 'orchestrator', pid: process.pid, own: true }],
      listener: port === null ? undefined : { port },
      netns: o.netns,
    });
  } catch (err) {
    manifest.status = 'failed';
    manifest.stopReason = err instanceof Error ? err.message : String(err);
    writeManifest(dir, manifest);
    throw err;
  }
  const tty = o.progress && process.stderr.isTTY === true;
  const line = (text: string): void => {
    if (tty) process.stderr.write(`\r\x1b[K${text}`);
  };

  let child: ResultPromise | null = null;
  let stopReason = 'stopped';
  let status = 'complete' as RunManifest['status'];
  let wake: () => void = () => {};
  const signals = trapStopSignals((sig, count) => {
    stopReason = `interrupted by ${sig}`;
    status = 'interrupted';
    // The command shares our terminal's process group and got the signal too;
    // a second one means "now".
    if (count > 1) child?.kill('SIGKILL');
    wake();
  });
  let commandExit: number | string | null = null;
  try {
    if (command.length > 0) {
      child = execa(command[0], command.slice(1), { stdio: 'inherit', reject: false });
      const pid = child.pid;
      if (pid === undefined) {
        const r = await child;
        throw new UserError(`cannot run ${command[0]}: ${(r.message ?? 'it did not start').split('\n')[0]}`);
      }
      probes.addProcess('command', pid);
      manifest.processes.push({ role: 'command', pid, exit: null });
      writeManifest(dir, manifest);
    }
    const started = Date.now();
    const deadline = durationNs === null ? Infinity : started + durationNs / 1e6;
    let childDone = false;
    void child?.then(() => {
      childDone = true;
      wake();
    });
    while (status !== 'interrupted' && !childDone && Date.now() < deadline) {
      line(
        `sampling ${formatNs((Date.now() - started) * 1e6)}  every ${formatNs(intervalNs)}  ${probes.columns} columns` +
          (child ? `  while ${command[0]} runs` : ''),
      );
      await new Promise<void>((r) => {
        wake = r;
        setTimeout(r, Math.min(1000, Math.max(10, deadline - Date.now()))).unref();
      });
    }
    if (status !== 'interrupted') stopReason = childDone ? 'command ended' : 'duration reached';
    if (child && !childDone) {
      if (status !== 'interrupted') stopReason = 'duration reached; command terminated';
      // Ours to end: we started it. Interrupted: it got the signal already; give it time.
      if (status !== 'interrupted') child.kill('SIGTERM');
      const ended = await Promise.race([child.then(() => true), new Promise<boolean>((r) => setTimeout(() => r(false), 5000).unref())]);
      if (!ended) {
        child.kill('SIGKILL');
        await child;
      }
    }
    if (child) {
      const r = await child;
      commandExit = r.exitCode ?? r.signal ?? null;
      manifest.processes[manifest.processes.length - 1].exit = commandExit;
    }
  } finally {
    const result: ProbeResult = await probes.stop();
    signals.release();
    if (tty) process.stderr.write('\r\x1b[K');
    manifest.endNs = Number(monoNs() - t0);
    manifest.status = result.stopReason.startsWith('error') ? 'failed' : status;
    manifest.stopReason = result.stopReason.startsWith('error') ? `probes: ${result.stopReason}` : stopReason;
    manifest.notes.push(...result.skipped.map((s) => `probe ${s.probe} skipped: ${s.reason}`));
    writeManifest(dir, manifest);
    const { analyzeAndReport } = await import('./pipeline.ts');
    await analyzeAndReport(dir);
    const o = result.overhead;
    const overhead = Number.isFinite(o.cpuPerSecond)
      ? `; probe CPU ${formatPercent(o.cpuPerSecond)} of a core${o.wallNs < 10e9 ? ' (a short run: mostly warm-up)' : ''}`
      : '';
    process.stdout.write(
      `${result.samples} samples every ${formatNs(intervalNs)} (${stopReason})${overhead}` +
        (result.skipped.length ? `; skipped: ${result.skipped.map((s) => s.probe).join(', ')}` : '') +
        `\nreport: ${join(dir, FILES.report)}\n`,
    );
  }
  if (status === 'interrupted') return signalExitCode(signals.first ?? 'SIGINT');
  if (typeof commandExit === 'number' && commandExit !== 0) {
    process.stderr.write(`sockspike: ${command[0]} exited with code ${commandExit}\n`);
    return commandExit;
  }
  if (typeof commandExit === 'string') {
    process.stderr.write(`sockspike: ${command[0]} ended by ${commandExit}\n`);
    return 1;
  }
  return 0;
}
