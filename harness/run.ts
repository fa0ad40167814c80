// Orchestration of one run: run directory, server, probes, client, stop on
// any path (done, Ctrl-C, SIGTERM, a dying server), and run.json; the analysis and report follow in cli/pipeline.ts.
import { randomInt } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { monoNs } from '../lib/clock.ts';
import { UserError } from '../lib/errors.ts';
import { signalExitCode, trapStopSignals } from '../lib/signals.ts';
import { FILES, newManifest, type RunManifest } from '../lib/run-files.ts';
import type { RunConfig } from '../lib/types.ts';
import { endChild, exitText, startWorkloadChild, type Child } from './children.ts';
import { engineFallbackNote } from './engine.ts';
import type { DoneMessage, FromChild, ListeningMessage } from './messages.ts';
import { makeRunDir, writeManifest } from './make-run-dir.ts';
import { Progress } from './progress.ts';
import { abandonKernelEvents, Observers, startKernelEventsEarly, type ObserverSummary } from './observers.ts';
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
/**
 * The built-in server's port in a namespace of the run's own: below Linux's
 * ephemeral range, so that on the host (bpftrace's tracepoints are global)
 * no client's own port matches it.
 */
const EARLY_PORT_LOW = 20_000;
const EARLY_PORT_HIGH = 32_000;

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
  const t0 = monoNs();
  const kernel = new KernelSetup(req.config, dir);
  // A server of the run's own in a namespace of the run's own: any port is
  // free there, so it is known now and bpftrace starts alongside the rest.
  let events: ReturnType<typeof startKernelEventsEarly> | null = null;
  if (req.probes && ext?.kind !== 'target' && kernel.plannedNetns !== null) {
    if (cfg.port === 0) cfg.port = EARLY_PORT_LOW + randomInt(EARLY_PORT_HIGH - EARLY_PORT_LOW);
    events = startKernelEventsEarly(dir, t0, cfg.port, cfg.kernelStates, kernel.plannedNetns);
  }
  // a Ctrl-C while the namespace is being made still undoes it
  const earlySignals = trapStopSignals();
  try {
    await kernel.prepare();
  } catch (err) {
    await abandonKernelEvents(events);
    throw err;
  } finally {
    earlySignals.release();
  }
  const early = earlySignals.first;
  if (kernel.restoredFirst.length > 0) process.stderr.write(`sockspike: first restored what dead runs left: ${kernel.restoredFirst.join('; ')}\n`);
  if (early !== null) {
    await Promise.all([kernel.teardown(), abandonKernelEvents(events)]);
    throw new UserError(`interrupted by ${early} before the workload started`, signalExitCode(early));
  }
  try {
    return await runIn(req, dir, kernel, target, t0, events);
  } finally {
    const problems = await kernel.teardown();
    for (const p of problems) process.stderr.write(`sockspike: ${p}\n`);
  }
}

async function runIn(
  req: RunRequest,
  dir: string,
  kernel: KernelSetup,
  target: Target | null,
  t0: bigint,
  events: ReturnType<typeof startKernelEventsEarly> | null,
): Promise<RunResult> {
  const run = new OneRun(req, dir, kernel, target, t0, events);
  try {
    run.writeFirstManifest();
    run.startServer();
    const ready = await run.waitListening();
    run.startClients(ready);
    await run.startObservers(ready);
    await run.startFaults(ready);
    run.go();
    await run.awaitClients();
  } catch (err) {
    if (!(err instanceof NotListening)) throw err;
  } finally {
    await run.wrapUp();
  }
  return run.finish();
}

type Target = Awaited<ReturnType<typeof checkTarget>>;

/**
 * One run's state, shared by its steps: the run directory's manifest, the
 * server and client processes, what they reported, and why the run stopped.
 * The steps run in order (runIn above); any may be cut short by stop().
 */
class OneRun {
  readonly cfg: RunConfig;
  readonly ext: NonNullable<RunConfig['external']> | null;
  readonly manifest: RunManifest;
  readonly progress: Progress;
  readonly observers: Observers;
  readonly signals: ReturnType<typeof trapStopSignals>;
  server: Child | null = null;
  /** --client-processes K: K clients, done when every one is. */
  readonly clients: Child[] = [];
  readonly dones: DoneMessage[] = [];
  done: DoneMessage | null = null;
  listening: ListeningMessage | null = null;
  serverFailure: string | null = null;
  serverExit: { code: number | null; signal: NodeJS.Signals | null } | null = null;
  faults: FaultRunner | null = null;
  observed: ObserverSummary | null = null;
  stopReason: string | null = null;
  status: RunManifest['status'] = 'complete';
  private wake: () => void = () => {};

  constructor(
    readonly req: RunRequest,
    readonly dir: string,
    readonly kernel: KernelSetup,
    readonly target: Target | null,
    readonly t0: bigint,
    events: ReturnType<typeof startKernelEventsEarly> | null,
  ) {
    this.cfg = req.config;
    this.ext = this.cfg.external ?? null;
    this.manifest = newManifest({
      argv: req.argv,
      reproduce: req.reproduce,
      t0: this.t0,
      config: this.cfg,
      // an external server records no server.bin
      files: {
        transactions: Array.from({ length: this.cfg.clientProcesses }, (_, i) => transactionsFile(i)),
        server: this.ext === null ? [FILES.server] : [],
      },
    });
    this.progress = new Progress(req.progress);
    this.observers = new Observers(dir, this.t0, this.cfg.probeIntervalNs, this.cfg.probeSlowIntervalNs, this.cfg.kernelStates, kernel.netns, events);
    this.signals = trapStopSignals((sig, count) => {
      if (count > 1) {
        // asked twice: stop waiting on anyone
        for (const c of this.clients) c.proc.kill('SIGKILL');
        this.server?.proc.kill('SIGKILL');
        return;
      }
      this.progress.line(`${sig}: stopping (in-flight transactions get 2 s), then writing the report`);
      this.stop(`interrupted by ${sig}`, 'interrupted');
    });
  }

  /** Something changed (a message, an exit, a stop): wake whoever waits. */
  changed(): void {
    this.wake();
  }

  stop(reason: string, how: RunManifest['status']): void {
    if (this.stopReason !== null) return;
    this.stopReason = reason;
    this.status = how;
    for (const c of this.clients) c.send({ type: 'stop', reason });
    this.changed();
  }

  writeFirstManifest(): void {
    const { manifest, kernel, cfg } = this;
    manifest.kernel = { netns: kernel.netns, sysctls: kernel.sysctls, faults: cfg.faults.map((f) => ({ ...f, startNs: null, stopNs: null, detail: [] })) };
    if (cfg.template) manifest.notes.push(describeCheck(cfg.template));
    // which engine runs the built-in client and server: run.json config.engine; a fallback to Node says why
    const fallback = engineFallbackNote(cfg);
    if (fallback !== null) {
      process.stderr.write(`sockspike: ${fallback}\n`);
      manifest.notes.push(fallback);
    } else if (cfg.engine !== 'native' && cfg.external == null)
      manifest.notes.push('the built-in client and server ran on Node (--engine node), which adds its own latency');
    for (const line of kernel.restoredFirst) manifest.notes.push(`before this run's host changes, sockspike ${line}`);
    if (kernel.netns !== null)
      manifest.notes.push(
        `the run had a network namespace of its own (${kernel.netns}), so its TCP counters are its own; the host's per-namespace sysctls were copied in (${kernel.copiedSysctls} differed from a new namespace's defaults)`,
      );
    writeManifest(this.dir, manifest);
    writeFileSync(join(this.dir, FILES.command), this.req.reproduce + '\n');
    this.observers.snapshot();
  }

  /** The built-in server, the user's --server-cmd, or nothing to start (--target). */
  startServer(): void {
    const { cfg, ext, dir } = this;
    const netns = this.kernel.netns;
    const onServer = (m: FromChild): void => {
      if (m.type === 'listening') this.listening = m;
      else if (m.type === 'failed') this.serverFailure = m.message;
      this.changed();
    };
    this.server =
      ext === null
        ? startWorkloadChild('server', 'server', cfg.engine ?? 'node', join(dir, FILES.serverLog), onServer, netns)
        : ext.kind === 'command'
          ? startServerCommand(cfg, join(dir, FILES.serverCommandLog), onServer, netns)
          : null;
    if (this.target !== null) this.listening = this.target;
    if (this.server !== null) this.manifest.processes.push({ role: 'server', pid: this.server.proc.pid ?? -1, exit: null });
    writeManifest(dir, this.manifest);
    void this.server?.exited.then((e) => {
      this.serverExit = e;
      if (this.done === null)
        this.stop(
          ext === null
            ? `the server exited unexpectedly (${exitText(e)})`
            : `the server command ${e.signal ? `was killed by ${e.signal}` : `exited with code ${e.code}`} ${this.listening === null ? `before accepting connections on ${cfg.host}:${cfg.port}` : 'during the run'}; its output is in ${join(dir, FILES.serverCommandLog)}`,
          'failed',
        );
      this.changed();
    });
    this.server?.send({ type: 'start', config: cfg, t0: this.t0.toString(), runDir: dir, file: FILES.server, progress: false });
  }

  /** Wait for the server to listen; a server that never does fails the run (an external one still gets a report). */
  async waitListening(): Promise<ListeningMessage> {
    const { ext, dir } = this;
    // a --server-cmd server has its own bound (--server-wait), after which it reports 'failed'
    const deadline = Date.now() + Math.max(LISTEN_TIMEOUT_MS, ext?.kind === 'command' ? ext.waitNs / 1e6 + 5000 : 0);
    while (this.listening === null && this.serverFailure === null && this.serverExit === null && this.stopReason === null && Date.now() < deadline) {
      await new Promise<void>((r) => {
        this.wake = r;
        setTimeout(r, 100);
      });
    }
    const ready = this.listening;
    if (ready === null) {
      const why =
        (ext !== null ? this.stopReason : null) ??
        this.serverFailure ??
        (this.serverExit !== null
          ? `the server exited before listening (${exitText(this.serverExit)}); see ${join(dir, FILES.serverLog)}`
          : (this.stopReason ?? 'the server did not listen within 20 s'));
      if (ext === null) {
        this.manifest.status = 'failed';
        this.manifest.stopReason = why;
        writeManifest(dir, this.manifest);
        throw new UserError(why);
      }
      this.stop(why, 'failed');
      throw new NotListening();
    }
    this.cfg.port = ready.port;
    this.manifest.notes.push(...ready.notes);
    writeManifest(dir, this.manifest);
    return ready;
  }

  /** The client processes load (Node's start-up) while the probes attach; they begin on go(). */
  startClients(_ready: ListeningMessage): void {
    const K = this.cfg.clientProcesses;
    const progressParts = Array.from({ length: K }, () => combineProgress([]));
    for (let i = 0; i < K; i++) {
      const c = startWorkloadChild(
        clientRole(i),
        'client',
        this.cfg.engine ?? 'node',
        join(this.dir, clientLogFile(i)),
        (m: FromChild) => {
          if (m.type === 'progress') {
            progressParts[i] = m;
            if (i === 0) this.progress.update(combineProgress(progressParts));
          } else if (m.type === 'done') {
            this.dones.push(m);
            if (this.dones.length === K) this.done = combineDone(this.dones);
          } else if (m.type === 'started') this.faults?.begin();
          this.changed();
        },
        this.kernel.netns,
      );
      this.clients.push(c);
      this.manifest.processes.push({ role: c.role, pid: c.proc.pid ?? -1, exit: null });
    }
  }

  async startObservers(ready: ListeningMessage): Promise<void> {
    const { observers, manifest, ext } = this;
    if (this.req.probes) {
      const pid = this.server !== null ? (this.server.proc.pid ?? -1) : (this.target?.pid ?? -1);
      // an external server's listening fd is unknown: the listen-queue probe finds its socket by port
      await observers.start(ready.port, { pid, listener: ready.fd >= 0 ? { pid, fd: ready.fd } : { port: ready.port } });
      // a --server-cmd server's own children (nginx's workers) are probed too, as server-<pid>
      for (const child of ext?.kind === 'command' ? childPids(pid) : []) observers.addProcess('server', child);
      manifest.processes.push(...observers.processes());
      for (const c of this.clients) observers.addProcess(c.role, c.proc.pid ?? -1);
    } else observers.off('turned off with --no-probes');
    writeManifest(this.dir, manifest);
  }

  /** Faults set up; those on from the load's start are switched on before it. */
  async startFaults(ready: ListeningMessage): Promise<void> {
    if (this.cfg.faults.length === 0) return;
    this.faults = new FaultRunner(this.cfg.faults, {
      t0: this.t0,
      netns: this.kernel.netns,
      port: ready.port,
      baseAcceptDelayNs: this.cfg.acceptDelayNs,
      setAcceptDelay: (ns) => this.server?.send({ type: 'accept-delay', ns }),
      started: (role, pid) => {
        this.manifest.processes.push({ role, pid, exit: null });
        this.observers.addProcess(role, pid);
      },
    });
    await this.faults.fromTheStart();
  }

  /** Tell every client to begin (a stop that came meanwhile follows at once). */
  go(): void {
    const K = this.clients.length;
    this.clients.forEach((c, i) =>
      c.send({
        type: 'start',
        config: this.cfg,
        t0: this.t0.toString(),
        runDir: this.dir,
        file: transactionsFile(i),
        progress: this.req.progress,
        part: { index: i, of: K },
      }),
    );
    if (this.stopReason !== null) for (const c of this.clients) c.send({ type: 'stop', reason: this.stopReason });
  }

  async awaitClients(): Promise<void> {
    const exits = await Promise.all(this.clients.map((c) => c.exited));
    exits.forEach((e, i) => setExit(this.manifest, this.clients[i].role, exitText(e)));
    if (this.done === null && this.stopReason === null) {
      const i = Math.max(
        0,
        exits.findIndex((e) => e.code !== 0),
      );
      this.stopReason = `the client exited unexpectedly (${exitText(exits[i])}); see ${join(this.dir, clientLogFile(i))}`;
      this.status = 'failed';
    }
  }

  /** On every path: faults off, observers stopped, server and clients ended. */
  async wrapUp(): Promise<void> {
    const { manifest } = this;
    if (this.faults !== null && manifest.kernel !== undefined) manifest.kernel.faults = await this.faults.end();
    const firstStartNs = this.done?.firstStartNs;
    this.observed = await this.observers.stop(firstStartNs !== undefined && Number.isFinite(firstStartNs) ? firstStartNs : null);
    // bpftrace, if it attached after the load began
    for (const p of this.observers.processes()) if (!manifest.processes.some((q) => q.pid === p.pid)) manifest.processes.push(p);
    if (this.server !== null) {
      this.server.send({ type: 'stop', reason: this.stopReason ?? 'done' });
      await endChild(this.server, 5000);
      setExit(manifest, 'server', exitText(await this.server.exited));
    }
    for (const p of manifest.processes) if (p.role !== 'server' && !p.role.startsWith('client') && p.exit === null) p.exit = 'stopped';
    for (const c of this.clients) c.send({ type: 'stop', reason: 'run ended' });
    await Promise.all(this.clients.map((c) => endChild(c, 5000)));
    this.signals.release();
    this.progress.end();
  }

  /** run.json's last write. */
  finish(): RunResult {
    const { manifest } = this;
    const d = this.done;
    manifest.endNs = d !== null && Number.isFinite(d.lastEndNs) ? d.lastEndNs : Number(monoNs() - this.t0);
    manifest.status = this.status;
    if (this.observed !== null) manifest.probes = this.observed;
    manifest.stopReason = this.stopReason;
    if (d !== null) {
      manifest.notes.push(...d.notes);
      manifest.workload = { firstStartNs: d.firstStartNs, lastEndNs: d.lastEndNs, missedStarts: d.missedStarts, attempted: d.attempted };
    }
    writeManifest(this.dir, manifest);
    return { dir: this.dir, manifest, signal: this.signals.first };
  }
}

/** An external server never listened: the run ends as failed, with its report. */
class NotListening extends Error {}

function setExit(m: RunManifest, role: string, exit: number | string): void {
  const p = m.processes.find((x) => x.role === role);
  if (p !== undefined) p.exit = exit;
}
