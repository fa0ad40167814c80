import { join } from 'node:path';
import { formatNs } from '../lib/format.ts';
import { stage } from './progress.ts';
import { FILES, writeJson, type ObserverSummary } from '../lib/run-files.ts';
import { snapshotEnvironment } from '../probes/environment.ts';
import { kernelEventsSkipped, startKernelEvents, type KernelEventsHandle, type KernelEventsOptions, type StateEvents } from '../probes/kernel-events/tracer.ts';
import { startProbes, type ProbeHandle } from '../probes/run-probes.ts';
import type { ListenerTarget } from '../probes/listen-queue.ts';
import type { SkippedProbe } from '../lib/types.ts';

// Everything that watches a run without taking part in it: the environment
// snapshot, the /proc sampler and the kernel events. Each can be missing
// here; what cannot run is listed with its reason and the run goes on.

export type { ObserverSummary };

/** How long the load waits for bpftrace to attach before it starts without it. */
export const ATTACH_WAIT_MS = 3000;

type EventsStart = Promise<KernelEventsHandle | { skipped: string }>;

/** Kernel-event probe options for a run's server port. */
const eventsOptions = (runDir: string, t0: bigint, port: number, states: StateEvents, netns: string | null): KernelEventsOptions => ({
  runDir,
  t0,
  ports: [port],
  states,
  ...(netns === null ? {} : { netns }),
});

/**
 * Start bpftrace before the run's namespace, server and probes exist, for
 * a port the server will listen on: compiling and attaching takes about a
 * second (the longest step on the way to the first transaction), so it
 * overlaps everything else instead of following it. Only where the port is
 * known up front: a server the run starts (built in, or --server-cmd) in a
 * namespace of the run's own. Otherwise Observers.start starts it at the
 * server's port.
 */
export function startKernelEventsEarly(runDir: string, t0: bigint, port: number, states: StateEvents, netns: string): EventsStart {
  return startKernelEvents(eventsOptions(runDir, t0, port, states, netns)).catch((err: Error) => ({ skipped: err.message }));
}

/** Stop an early start that no run took over (the run failed before it began). */
export async function abandonKernelEvents(early: EventsStart | null): Promise<void> {
  const events = await early;
  if (events && !kernelEventsSkipped(events)) await events.stop().catch(() => undefined);
}

export class Observers {
  private probes: ProbeHandle | null = null;
  private events: KernelEventsHandle | null = null;
  private eventsStarting: Promise<void> | null = null;
  private readonly skipped: SkippedProbe[] = [];
  private readonly notes: string[] = [];
  private environment: Promise<void> | null = null;
  private bpftraceWatched = false;

  constructor(
    private readonly dir: string,
    private readonly t0: bigint,
    private readonly intervalNs: number,
    /** How often what is not read every sample is read (--probe-slow-interval). */
    private readonly slowPeriodNs: number | undefined,
    private readonly kernelStates: StateEvents,
    /** The run's network namespace: its TCP counters and sysctls are the ones to read. */
    private readonly netns: string | null = null,
    /** bpftrace already starting (startKernelEventsEarly), for the port the server listens on. */
    private readonly early: EventsStart | null = null,
  ) {}

  /** The environment snapshot runs in the background while the workload starts. */
  snapshot(): void {
    this.environment = snapshotEnvironment(this.netns === null ? {} : { netns: this.netns }).then(
      (env) => writeJson(join(this.dir, FILES.environment), env),
      (err: Error) => void this.skipped.push({ probe: 'environment', reason: err.message }),
    );
  }

  /**
   * Start sampling and kernel events for a server on `port`; resolves once
   * the sampler watches and bpftrace has attached, or after waiting
   * ATTACH_WAIT_MS for it. bpftrace takes 0.5-1.5 s of CPU to compile and
   * attach its probes on an idle 2-CPU machine: done before the load, that
   * CPU is not taken from it. Where it takes longer (a slow or busy
   * machine), the load starts anyway and kernel events are recorded from
   * when it is attached (the events file's header says when; stop() notes
   * it and the causes count only transactions after it).
   */
  async start(port: number, server: { pid: number; listener: ListenerTarget }): Promise<void> {
    // state changes are off unless asked for: several per connection, each
    // counted in the kernel and a few per 100 ms printed (script.ts)
    const starting = this.early ?? startKernelEvents(eventsOptions(this.dir, this.t0, port, this.kernelStates, this.netns));
    this.eventsStarting = starting
      .catch((err: Error) => ({ skipped: err.message }))
      .then((events) => {
        if (kernelEventsSkipped(events)) this.skipped.push({ probe: 'kernel events (bpftrace)', reason: events.skipped });
        else {
          this.events = events;
          this.skipped.push(...events.skippedProbes);
          this.notes.push(...events.notes);
          this.watchOwn();
        }
      });
    stage(`starting the probes${this.eventsStarting !== null ? `; waiting up to ${ATTACH_WAIT_MS / 1000} s for bpftrace to attach` : ''} ...`);
    const waited = new Promise<void>((r) => setTimeout(r, ATTACH_WAIT_MS).unref());
    this.probes = await startProbes({
      runDir: this.dir,
      t0: this.t0,
      intervalNs: this.intervalNs,
      ...(this.slowPeriodNs !== undefined ? { slowPeriodNs: this.slowPeriodNs } : {}),
      processes: [
        ...(server.pid > 0 ? [{ role: 'server', pid: server.pid }] : []), // -1: a target with no local process
        // this process (`sockspike run`): its CPU, as sockspike's own besides the client and server
        { role: 'orchestrator', pid: process.pid, own: true },
      ],
      listener: server.listener,
      ...(this.netns === null ? {} : { netns: this.netns }),
    }).catch((err: Error) => {
      this.skipped.push({ probe: 'system probes', reason: err.message });
      return null;
    });
    if (this.probes !== null) this.skipped.push(...this.probes.skipped);
    this.watchOwn();
    await Promise.race([this.eventsStarting, waited]);
  }

  /** Probes were turned off: say so where skipped probes are listed. */
  off(reason: string): void {
    this.skipped.push({ probe: 'system probes and kernel events', reason });
  }

  /** The processes the observers started so far (bpftrace once attached), for run.json. */
  processes(): { role: string; pid: number; exit: null }[] {
    const out: { role: string; pid: number; exit: null }[] = [];
    if (this.probes !== null) out.push({ role: 'probes', pid: this.probes.pid, exit: null });
    if (this.events !== null) out.push({ role: 'bpftrace', pid: this.events.pid, exit: null });
    return out;
  }

  /** bpftrace's CPU is sampled as sockspike's own once both it and the sampler run. */
  private watchOwn(): void {
    if (this.probes === null || this.events === null || this.bpftraceWatched) return;
    this.bpftraceWatched = true;
    this.probes.addProcess('bpftrace', this.events.pid, true);
  }

  addProcess(role: string, pid: number): void {
    this.probes?.addProcess(role, pid);
  }

  /** `loadStartNs`: the workload's first start (ns since t0), to say what the kernel events missed. */
  async stop(loadStartNs: number | null = null): Promise<ObserverSummary> {
    // an early start the run never took over (its server never listened): ended, not recorded
    if (this.eventsStarting === null) await abandonKernelEvents(this.early);
    await this.eventsStarting; // still attaching: it is stopped once it has
    const [p, e] = await Promise.all([this.probes?.stop() ?? null, this.events?.stop() ?? null]);
    if (this.events !== null && loadStartNs !== null && this.events.attachedNs > loadStartNs)
      this.notes.push(
        `kernel events were recorded from ${formatNs(this.events.attachedNs)} into the run, ${formatNs(this.events.attachedNs - loadStartNs)} after the load began ` +
          '(bpftrace was still attaching): transactions before then have no kernel events, and the causes count only those after',
      );
    await this.environment;
    // a probe process that died mid-run: the report's verdict must say its data stops short
    if (p !== null && p.stopReason.startsWith('error'))
      this.skipped.push({ probe: 'system probes', reason: `${p.stopReason.replace(/^error: /, '')} (samples stop there)` });
    const skipped = [...this.skipped];
    if (p !== null) for (const s of p.skipped) if (!skipped.some((k) => k.probe === s.probe)) skipped.push(s);
    if (e !== null) for (const s of e.skipped) if (!skipped.some((k) => k.probe === s.probe)) skipped.push(s);
    return {
      skipped,
      notes: [...new Set([...this.notes, ...(e?.notes ?? [])])],
      samples: p?.samples ?? 0,
      kernelEvents: e?.events ?? null,
      kernelEventsByKind: e?.byKind ?? {},
      ...(e !== null ? { kernelEventsRecorded: e.recorded } : {}),
      overheadPct: p === null ? null : 100 * p.overhead.cpuPerSecond,
    };
  }
}
