// Orchestration of one run: run directory, server, probes, client, stop on
// any path (done, Ctrl-C, SIGTERM, a dying server), then summary and report.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { monoNs } from '../lib/clock.ts';
import { UserError } from '../lib/errors.ts';
import { FILES, newManifest, type RunManifest } from '../lib/rundir.ts';
import type { RunConfig, Summary } from '../lib/types.ts';
import { analyzeRun } from '../analysis/analyze-run.ts';
import { endChild, exitText, startChild, type Child } from './children.ts';
import type { DoneMessage, FromChild, ListeningMessage } from './messages.ts';
import { makeRunDir, writeManifest } from './run-dir.ts';
import { Progress } from './progress.ts';
import { Observers, type ObserverSummary } from './observers.ts';
import { KernelSetup } from './kernel-setup.ts';
import { FaultRunner } from './faults.ts';

export interface RunRequest {
  config: RunConfig;
  out?: string;
  /** The command line as typed and a command that reproduces the run. */
  argv: string[];
  reproduce: string;
  progress: boolean;
  /** Sample /proc and kernel events (the environment snapshot is always taken). */
  probes: boolean;
}

export interface RunResult {
  dir: string;
  summary: Summary;
  manifest: RunManifest;
  /** The signal that interrupted the run, if one did. */
  signal: NodeJS.Signals | null;
}

const LISTEN_TIMEOUT_MS = 20_000;

export async function runWorkload(req: RunRequest): Promise<RunResult> {
  const dir = makeRunDir(req.out, req.config.close);
  const kernel = new KernelSetup(req.config, dir);
  // a Ctrl-C while the namespace is being made still undoes it
  let early: NodeJS.Signals | null = null;
  const onEarly = (sig: NodeJS.Signals): void => void (early ??= sig);
  process.on('SIGINT', onEarly);
  process.on('SIGTERM', onEarly);
  try {
    await kernel.prepare();
  } finally {
    process.off('SIGINT', onEarly);
    process.off('SIGTERM', onEarly);
  }
  if (early !== null) {
    await kernel.teardown();
    throw new UserError(`interrupted by ${early} before the workload started`, early === 'SIGTERM' ? 143 : 130);
  }
  try {
    return await runIn(req, dir, kernel);
  } finally {
    const problems = await kernel.teardown();
    for (const p of problems) process.stderr.write(`sockspike: ${p}\n`);
  }
}

async function runIn(req: RunRequest, dir: string, kernel: KernelSetup): Promise<RunResult> {
  const cfg = req.config;
  const netns = kernel.netns;
  const t0 = monoNs();
  const manifest = newManifest({
    argv: req.argv,
    reproduce: req.reproduce,
    t0,
    config: cfg,
    files: { transactions: [FILES.transactions], server: [FILES.server] },
  });
  manifest.kernel = { netns, sysctls: kernel.sysctls, faults: cfg.faults.map((f) => ({ ...f, startNs: null, stopNs: null, detail: [] })) };
  writeManifest(dir, manifest);
  writeFileSync(join(dir, FILES.command), req.reproduce + '\n');

  const progress = new Progress(req.progress);
  const observers = new Observers(dir, t0, cfg.probeIntervalNs, cfg.kernelStates, netns);
  observers.snapshot();
  let observed: ObserverSummary | null = null;
  let stopReason: string | null = null;
  let status: RunManifest['status'] = 'complete';
  let client: Child | null = null;
  let done: DoneMessage | null = null;
  let listening: ListeningMessage | null = null;
  let serverFailure: string | null = null;
  let faults: FaultRunner | null = null;
  let wake: () => void = () => {};
  const changed = (): void => wake();

  const server = startChild('server', './server.ts', join(dir, FILES.serverLog), (m: FromChild) => {
    if (m.type === 'listening') listening = m;
    else if (m.type === 'failed') serverFailure = m.message;
    changed();
  }, netns);
  manifest.processes.push({ role: 'server', pid: server.proc.pid ?? -1, exit: null });
  writeManifest(dir, manifest);

  const stop = (reason: string, how: RunManifest['status']): void => {
    if (stopReason !== null) return;
    stopReason = reason;
    status = how;
    client?.send({ type: 'stop', reason });
    changed();
  };
  let signals = 0;
  let signal: NodeJS.Signals | null = null;
  const onSignal = (sig: NodeJS.Signals): void => {
    signal ??= sig;
    if (++signals > 1) {
      // asked twice: stop waiting on anyone
      client?.proc.kill('SIGKILL');
      server.proc.kill('SIGKILL');
      return;
    }
    progress.line(`${sig}: stopping (in-flight transactions get 2 s), then writing the report`);
    stop(`interrupted by ${sig}`, 'interrupted');
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  let serverExit: { code: number | null; signal: NodeJS.Signals | null } | null = null;
  void server.exited.then((e) => {
    serverExit = e;
    if (done === null) stop(`the server exited unexpectedly (${exitText(e)})`, 'failed');
    changed();
  });

  try {
    server.send({ type: 'start', config: cfg, t0: t0.toString(), runDir: dir, file: FILES.server, progress: false });
    const deadline = Date.now() + LISTEN_TIMEOUT_MS;
    while (listening === null && serverFailure === null && serverExit === null && stopReason === null && Date.now() < deadline) {
      await new Promise<void>((r) => {
        wake = r;
        setTimeout(r, 100);
      });
    }
    const ready = listening as ListeningMessage | null;
    if (ready === null) {
      const why =
        serverFailure ??
        (serverExit !== null ? `the server exited before listening (${exitText(serverExit)}); see ${join(dir, FILES.serverLog)}` : stopReason ?? 'the server did not listen within 20 s');
      manifest.status = 'failed';
      manifest.stopReason = why;
      writeManifest(dir, manifest);
      throw new UserError(why);
    }
    cfg.port = ready.port;
    manifest.notes.push(...ready.notes);
    writeManifest(dir, manifest);
    if (req.probes) {
      await observers.start(ready.port, { pid: server.proc.pid ?? -1, listener: { pid: server.proc.pid ?? -1, fd: ready.fd } });
      manifest.processes.push(...observers.processes());
    } else observers.off('turned off with --no-probes');

    client = startChild('client', './client.ts', join(dir, FILES.clientLog), (m: FromChild) => {
      if (m.type === 'progress') progress.update(m);
      else if (m.type === 'done') done = m;
      else if (m.type === 'started') faults?.begin();
      changed();
    }, netns);
    manifest.processes.push({ role: 'client', pid: client.proc.pid ?? -1, exit: null });
    writeManifest(dir, manifest);
    observers.addProcess('client', client.proc.pid ?? -1);
    if (cfg.faults.length > 0) {
      faults = new FaultRunner(cfg.faults, {
        t0,
        netns,
        port: ready.port,
        baseAcceptDelayNs: cfg.acceptDelayNs,
        setAcceptDelay: (ns) => server.send({ type: 'accept-delay', ns }),
        started: (role, pid) => {
          manifest.processes.push({ role, pid, exit: null });
          observers.addProcess(role, pid);
        },
      });
    }
    client.send({ type: 'start', config: cfg, t0: t0.toString(), runDir: dir, file: FILES.transactions, progress: req.progress });
    if (stopReason !== null) client.send({ type: 'stop', reason: stopReason });
    const clientExit = await client.exited;
    setExit(manifest, 'client', exitText(clientExit));
    if (done === null && stopReason === null) {
      stopReason = `the client exited unexpectedly (${exitText(clientExit)}); see ${join(dir, FILES.clientLog)}`;
      status = 'failed';
    }
  } finally {
    if (faults !== null) manifest.kernel.faults = await faults.end();
    observed = await observers.stop();
    server.send({ type: 'stop', reason: stopReason ?? 'done' });
    await endChild(server, 5000);
    setExit(manifest, 'server', exitText(await server.exited));
    for (const p of manifest.processes) if (p.role !== 'server' && p.role !== 'client' && p.exit === null) p.exit = 'stopped';
    if (client !== null) {
      client.send({ type: 'stop', reason: 'run ended' });
      await endChild(client, 5000);
    }
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    progress.end();
  }

  const d = done as DoneMessage | null;
  manifest.endNs = d !== null && Number.isFinite(d.lastEndNs) ? d.lastEndNs : Number(monoNs() - t0);
  manifest.status = status;
  if (observed !== null) manifest.probes = observed;
  manifest.stopReason = stopReason;
  if (d !== null) {
    manifest.notes.push(...d.notes);
    manifest.workload = { firstStartNs: d.firstStartNs, lastEndNs: d.lastEndNs, missedStarts: d.missedStarts, attempted: d.attempted };
  }
  writeManifest(dir, manifest);
  const summary = analyzeRun(dir);
  return { dir, summary, manifest, signal };
}

function setExit(m: RunManifest, role: string, exit: number | string): void {
  const p = m.processes.find((x) => x.role === role);
  if (p !== undefined) p.exit = exit;
}
