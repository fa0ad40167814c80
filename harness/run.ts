// Orchestration of one run: run directory, server, probes, client, stop on
// any path (done, Ctrl-C, SIGTERM, a dying server), and run.json; the analysis and report follow in cli/pipeline.ts.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { monoNs } from '../lib/clock.ts';
import { UserError } from '../lib/errors.ts';
import { signalExitCode, trapStopSignals } from '../lib/signals.ts';
import { FILES, newManifest, type RunManifest } from '../lib/run-files.ts';
import type { RunConfig } from '../lib/types.ts';
import { endChild, exitText, startChild, type Child } from './children.ts';
import type { DoneMessage, FromChild, ListeningMessage } from './messages.ts';
import { makeRunDir, writeManifest } from './make-run-dir.ts';
import { Progress } from './progress.ts';
import { Observers, type ObserverSummary } from './observers.ts';
import { KernelSetup } from './kernel/setup.ts';
import { FaultRunner } from './kernel/faults.ts';
import { checkPortFree, childPids, freePort, startServerCommand } from './external/server-command.ts';
import { checkTarget } from './external/target.ts';
import { describeCheck } from './workload/request-template.ts';
import { clientLogFile, clientRole, combineDone, combineProgress, transactionsFile } from './workload/client-share.ts';

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

/** A finished run: its directory (to analyse and report, cli/pipeline.ts) and its run.json. */
export interface RunResult {
  dir: string;
  manifest: RunManifest;
  /** The signal that interrupted the run, if one did. */
  signal: NodeJS.Signals | null;
}

const LISTEN_TIMEOUT_MS = 20_000;

export async function runWorkload(req: RunRequest): Promise<RunResult> {
  const cfg = req.config;
  // bring your own server: its port is free, or the running target answers, before anything is made
  const ext = cfg.external ?? null;
  if (ext?.kind === 'command') {
    if (cfg.port === 0) cfg.port = await freePort(cfg.host);
    else await checkPortFree(cfg.host, cfg.port);
  }
  const target = ext?.kind === 'target' ? await checkTarget(cfg.host, cfg.port, Math.min(cfg.connectTimeoutNs / 1e6, 5000)) : null;
  const dir = makeRunDir(req.out, cfg.close);
  const kernel = new KernelSetup(req.config, dir);
  // a Ctrl-C while the namespace is being made still undoes it
  const earlySignals = trapStopSignals();
  try {
    await kernel.prepare();
  } finally {
    earlySignals.release();
  }
  const early = earlySignals.first;
  if (kernel.restoredFirst.length > 0) process.stderr.write(`sockspike: first restored what dead runs left: ${kernel.restoredFirst.join('; ')}\n`);
  if (early !== null) {
    await kernel.teardown();
    throw new UserError(`interrupted by ${early} before the workload started`, signalExitCode(early));
  }
  try {
    return await runIn(req, dir, kernel, target);
  } finally {
    const problems = await kernel.teardown();
    for (const p of problems) process.stderr.write(`sockspike: ${p}\n`);
  }
}

async function runIn(req: RunRequest, dir: string, kernel: KernelSetup, target: Awaited<ReturnType<typeof checkTarget>> | null): Promise<RunResult> {
  const cfg = req.config;
  const netns = kernel.netns;
  const ext = cfg.external ?? null;
  const t0 = monoNs();
  const manifest = newManifest({
    argv: req.argv,
    reproduce: req.reproduce,
    t0,
    config: cfg,
    // an external server records no server.bin
    files: { transactions: Array.from({ length: cfg.clientProcesses }, (_, i) => transactionsFile(i)), server: ext === null ? [FILES.server] : [] },
  });
  manifest.kernel = { netns, sysctls: kernel.sysctls, faults: cfg.faults.map((f) => ({ ...f, startNs: null, stopNs: null, detail: [] })) };
  if (cfg.template) manifest.notes.push(describeCheck(cfg.template));
  for (const line of kernel.restoredFirst) manifest.notes.push(`before this run's host changes, sockspike ${line}`);
  writeManifest(dir, manifest);
  writeFileSync(join(dir, FILES.command), req.reproduce + '\n');

  const progress = new Progress(req.progress);
  const observers = new Observers(dir, t0, cfg.probeIntervalNs, cfg.kernelStates, netns);
  observers.snapshot();
  let observed: ObserverSummary | null = null;
  let stopReason: string | null = null;
  let status: RunManifest['status'] = 'complete';
  // --client-processes K: K clients, done when every one is
  const clients: Child[] = [];
  const dones: DoneMessage[] = [];
  let done: DoneMessage | null = null;
  let listening: ListeningMessage | null = null;
  let serverFailure: string | null = null;
  let faults: FaultRunner | null = null;
  let wake: () => void = () => {};
  const changed = (): void => wake();

  const onServer = (m: FromChild): void => {
    if (m.type === 'listening') listening = m;
    else if (m.type === 'failed') serverFailure = m.message;
    changed();
  };
  const server: Child | null =
    ext === null
      ? startChild('server', 'harness/workload/server-main.ts', join(dir, FILES.serverLog), onServer, netns)
      : ext.kind === 'command'
        ? startServerCommand(cfg, join(dir, FILES.serverCommandLog), onServer, netns)
        : null;
  if (target !== null) listening = target;
  if (server !== null) manifest.processes.push({ role: 'server', pid: server.proc.pid ?? -1, exit: null });
  writeManifest(dir, manifest);

  const stop = (reason: string, how: RunManifest['status']): void => {
    if (stopReason !== null) return;
    stopReason = reason;
    status = how;
    for (const c of clients) c.send({ type: 'stop', reason });
    changed();
  };
  const signals = trapStopSignals((sig, count) => {
    if (count > 1) {
      // asked twice: stop waiting on anyone
      for (const c of clients) c.proc.kill('SIGKILL');
      server?.proc.kill('SIGKILL');
      return;
    }
    progress.line(`${sig}: stopping (in-flight transactions get 2 s), then writing the report`);
    stop(`interrupted by ${sig}`, 'interrupted');
  });
  let serverExit: { code: number | null; signal: NodeJS.Signals | null } | null = null;
  void server?.exited.then((e) => {
    serverExit = e;
    if (done === null)
      stop(
        ext === null
          ? `the server exited unexpectedly (${exitText(e)})`
          : `the server command ${e.signal ? `was killed by ${e.signal}` : `exited with code ${e.code}`} ${listening === null ? `before accepting connections on ${cfg.host}:${cfg.port}` : 'during the run'}; its output is in ${join(dir, FILES.serverCommandLog)}`,
        'failed',
      );
    changed();
  });

  try {
    server?.send({ type: 'start', config: cfg, t0: t0.toString(), runDir: dir, file: FILES.server, progress: false });
    // a --server-cmd server has its own bound (--server-wait), after which it reports 'failed'
    const deadline = Date.now() + Math.max(LISTEN_TIMEOUT_MS, ext?.kind === 'command' ? ext.waitNs / 1e6 + 5000 : 0);
    while (listening === null && serverFailure === null && serverExit === null && stopReason === null && Date.now() < deadline) {
      await new Promise<void>((r) => {
        wake = r;
        setTimeout(r, 100);
      });
    }
    const ready = listening as ListeningMessage | null;
    if (ready === null) {
      const why =
        (ext !== null ? stopReason : null) ??
        serverFailure ??
        (serverExit !== null
          ? `the server exited before listening (${exitText(serverExit)}); see ${join(dir, FILES.serverLog)}`
          : (stopReason ?? 'the server did not listen within 20 s'));
      if (ext === null) {
        manifest.status = 'failed';
        manifest.stopReason = why;
        writeManifest(dir, manifest);
        throw new UserError(why);
      }
      // an external server that never listened: a failed run, still with a report
      stop(why, 'failed');
      throw new NotListening();
    }
    cfg.port = ready.port;
    manifest.notes.push(...ready.notes);
    writeManifest(dir, manifest);
    // the client processes load (Node's start-up) while the probes attach;
    // they begin when told to, below
    const K = cfg.clientProcesses;
    const progressParts = Array.from({ length: K }, () => combineProgress([]));
    for (let i = 0; i < K; i++) {
      const c = startChild(
        clientRole(i),
        'harness/workload/client-main.ts',
        join(dir, clientLogFile(i)),
        (m: FromChild) => {
          if (m.type === 'progress') {
            progressParts[i] = m;
            if (i === 0) progress.update(combineProgress(progressParts));
          } else if (m.type === 'done') {
            dones.push(m);
            if (dones.length === K) done = combineDone(dones);
          } else if (m.type === 'started') faults?.begin();
          changed();
        },
        netns,
      );
      clients.push(c);
      manifest.processes.push({ role: c.role, pid: c.proc.pid ?? -1, exit: null });
    }
    if (req.probes) {
      const pid = server !== null ? (server.proc.pid ?? -1) : (target?.pid ?? -1);
      // an external server's listening fd is unknown: the listen-queue probe finds its socket by port
      await observers.start(ready.port, { pid, listener: ready.fd >= 0 ? { pid, fd: ready.fd } : { port: ready.port } });
      // a --server-cmd server's own children (nginx's workers) are probed too, as server-<pid>
      for (const child of ext?.kind === 'command' ? childPids(pid) : []) observers.addProcess('server', child);
      manifest.processes.push(...observers.processes());
      for (const c of clients) observers.addProcess(c.role, c.proc.pid ?? -1);
    } else observers.off('turned off with --no-probes');

    writeManifest(dir, manifest);
    if (cfg.faults.length > 0) {
      faults = new FaultRunner(cfg.faults, {
        t0,
        netns,
        port: ready.port,
        baseAcceptDelayNs: cfg.acceptDelayNs,
        setAcceptDelay: (ns) => server?.send({ type: 'accept-delay', ns }),
        started: (role, pid) => {
          manifest.processes.push({ role, pid, exit: null });
          observers.addProcess(role, pid);
        },
      });
    }
    clients.forEach((c, i) =>
      c.send({ type: 'start', config: cfg, t0: t0.toString(), runDir: dir, file: transactionsFile(i), progress: req.progress, part: { index: i, of: K } }),
    );
    if (stopReason !== null) for (const c of clients) c.send({ type: 'stop', reason: stopReason });
    const exits = await Promise.all(clients.map((c) => c.exited));
    exits.forEach((e, i) => setExit(manifest, clients[i].role, exitText(e)));
    if (done === null && stopReason === null) {
      const i = Math.max(
        0,
        exits.findIndex((e) => e.code !== 0),
      );
      stopReason = `the client exited unexpectedly (${exitText(exits[i])}); see ${join(dir, clientLogFile(i))}`;
      status = 'failed';
    }
  } catch (err) {
    if (!(err instanceof NotListening)) throw err;
  } finally {
    if (faults !== null) manifest.kernel.faults = await faults.end();
    const firstStartNs = (done as DoneMessage | null)?.firstStartNs;
    observed = await observers.stop(firstStartNs !== undefined && Number.isFinite(firstStartNs) ? firstStartNs : null);
    // bpftrace, if it attached after the load began
    for (const p of observers.processes()) if (!manifest.processes.some((q) => q.pid === p.pid)) manifest.processes.push(p);
    if (server !== null) {
      server.send({ type: 'stop', reason: stopReason ?? 'done' });
      await endChild(server, 5000);
      setExit(manifest, 'server', exitText(await server.exited));
    }
    for (const p of manifest.processes) if (p.role !== 'server' && !p.role.startsWith('client') && p.exit === null) p.exit = 'stopped';
    for (const c of clients) c.send({ type: 'stop', reason: 'run ended' });
    await Promise.all(clients.map((c) => endChild(c, 5000)));
    signals.release();
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
  return { dir, manifest, signal: signals.first };
}

/** An external server never listened: the run ends as failed, with its report. */
class NotListening extends Error {}

function setExit(m: RunManifest, role: string, exit: number | string): void {
  const p = m.processes.find((x) => x.role === role);
  if (p !== undefined) p.exit = exit;
}
