// Optional kernel events: bpftrace on the tcp, sock and skb tracepoints
// (tracepoints only: no kprobes, which some kernels lack), filtered in the
// kernel to the run's ports, written to the run directory as they come.
//
// Written to events/kernel-events.bin (format version 2: the layout, and
// the reader of it and of the NDJSON of version 1, are in events-file.ts and
// docs/run-directory.md) as bpftrace prints: events one by one, and counts
// per kind, key and 100 ms bucket every second. What is printed one by one
// and what only counted is decided in the kernel (script.ts): retransmits
// and drops always one by one, resets and state changes (which can come with
// every transaction) within a budget per bucket, every kind counted. The
// bpftrace program is saved as events/kernel-events.bt. A file without the
// end record means the probe process died before stop().
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { release } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import { UserError, errnoCode } from '../../lib/errors.ts';
import { dyingWithUs } from '../../lib/parent-death.ts';
import {
  ALL_TRACEPOINTS,
  BUCKET_NS,
  BUDGETED,
  DEFAULT_BUDGET,
  KERNEL_EVENT_KINDS,
  READY_MARKER,
  buildScript,
  type BuiltScript,
  type StateEvents,
} from './script.ts';
import { LineSplitter, decodeRecordLine } from './parse.ts';
import { VMLINUX_BTF, readSkbOffsets } from './btf-offsets.ts';
import { FLAG_COUNT, KERNEL_EVENTS_FILE, KERNEL_EVENTS_FORMAT, KERNEL_EVENTS_VERSION, KernelEventsWriter, type KernelEventsHeader } from './events-file.ts';
import type { SkippedProbe } from '../../lib/types.ts';

export type { KernelEvent, KernelEventsHeader } from './events-file.ts';
export type { KernelEventKind, StateEvents } from './script.ts';

export { KERNEL_EVENTS_FILE, KERNEL_EVENTS_FORMAT, KERNEL_EVENTS_VERSION };
export const KERNEL_EVENTS_SCRIPT = 'events/kernel-events.bt';

export interface KernelEventsOptions {
  runDir: string;
  /** The run's t0 (CLOCK_MONOTONIC ns, as from process.hrtime.bigint()). */
  t0: bigint;
  /** Keep events whose sport or dport is one of these (the server ports). */
  ports: number[];
  /** The run's network namespace, if any (tracepoints are global: noted, not filtered). */
  netns?: string;
  /** bpftrace binary; default `bpftrace` on PATH. */
  bpftrace?: string;
  /**
   * inet_sock_set_state transitions: 'all' (default; ~10 per connection, the
   * bulk of the volume and of bpftrace's CPU), 'handshake' (2 per
   * connection: leaving SYN_SENT / SYN_RECV), or 'off'.
   */
  states?: StateEvents;
  /** skb:kfree_skb with a drop reason (NOT_SPECIFIED and QUEUE_PURGE left out). Default true. */
  drops?: boolean;
  /** Resets and state changes printed one by one per key and 100 ms bucket; the rest only counted (default 2). */
  budget?: number;
  attachTimeoutMs?: number;
  stopTimeoutMs?: number;
}

export interface KernelEventsResult {
  /** Events seen (counted in the kernel; those recorded one by one among them). */
  events: number;
  byKind: Record<string, number>;
  /** Events recorded one by one. */
  recorded: number;
  /** Events the perf buffer dropped (bpftrace "Lost N events"). */
  lost?: number;
  skipped: SkippedProbe[];
  notes: string[];
}

export interface KernelEventsHandle {
  pid: number;
  /** Tracepoints attached, "category:name". */
  probes: string[];
  /** Named so as not to clash with the `skipped` of the not-started result. */
  skippedProbes: SkippedProbe[];
  notes: string[];
  /** Spawn to "attached", ms. */
  startupMs: number;
  /** ns since t0 when attached: events are recorded from then on. */
  attachedNs: number;
  stop(): Promise<KernelEventsResult>;
}

const MAX_PORTS = 32;
/** How often recorded events go to the file. */
const FLUSH_MS = 1000;
const TRACEFS = '/sys/kernel/tracing';
const TRACEFS_OLD = '/sys/kernel/debug/tracing';

export async function startKernelEvents(opts: KernelEventsOptions): Promise<KernelEventsHandle | { skipped: string }> {
  const ports = checkPorts(opts.ports);
  const bin = opts.bpftrace ?? 'bpftrace';
  if (typeof process.getuid === 'function' && process.getuid() !== 0) return { skipped: 'not root: bpftrace needs root' };

  const ver = await execa(bin, ['--version'], { reject: false, timeout: 5000 });
  if (errnoCode(ver) === 'ENOENT' || (ver.failed && /ENOENT/.test(String(ver.message)))) {
    return { skipped: `bpftrace not found (${bin}): install the bpftrace package` };
  }
  if (ver.failed) return { skipped: `${bin} --version failed: ${firstLine(ver.stderr || ver.message)}` };
  const version = /v?\d+\.\d+(\.\d+)?/.exec(String(ver.stdout))?.[0] ?? String(ver.stdout).trim();

  const notes: string[] = [];
  const tracefs = await findTracefs(notes);
  if (typeof tracefs !== 'string') return tracefs;

  const formats = new Map<string, string | null>();
  for (const tp of ALL_TRACEPOINTS) {
    const [cat, name] = tp.split(':');
    formats.set(tp, await readFile(join(tracefs, 'events', cat, name, 'format'), 'utf8').catch(() => null));
  }
  const drops = opts.drops ?? true;
  const req = {
    ports,
    states: opts.states ?? 'all',
    drops,
    btf: existsSync(VMLINUX_BTF),
    // ~10 ms here, ~0.9 s less for bpftrace to attach than with struct casts (btf-offsets.ts)
    skbOffsets: drops ? readSkbOffsets() : null,
    budget: opts.budget ?? DEFAULT_BUDGET,
  };
  if (opts.netns) {
    notes.push(`tracepoints are global: events from network namespaces other than ${opts.netns} on the same ports may appear`);
  }

  let script = buildScript(formats, req);
  if (script.probes.length === 0) return { skipped: 'none of the tcp/sock tracepoints exist on this kernel' };
  await mkdir(join(opts.runDir, 'events'), { recursive: true });
  // Bounded by attachTimeoutMs, twice at most when the drops probe must be retried without.
  let started = await attach(bin, script, opts);
  if ('failed' in started && script.probes.includes('skb:kfree_skb')) {
    // The drops probe is the one that needs BTF (offsets or struct casts): retry without it.
    const reason = started.failed;
    script = buildScript(formats, { ...req, drops: false });
    script.skipped = script.skipped.map((s) => (s.probe === 'skb:kfree_skb' ? { probe: s.probe, reason: `attach failed: ${reason}` } : s));
    started = await attach(bin, script, opts);
  }
  if ('failed' in started) return { skipped: `bpftrace failed to attach: ${started.failed}` };

  const header: KernelEventsHeader = {
    format: KERNEL_EVENTS_FORMAT,
    version: KERNEL_EVENTS_VERSION,
    t0Ns: opts.t0.toString(),
    ports,
    netns: opts.netns ?? null,
    bpftrace: version,
    kernel: release(),
    states: req.states,
    probes: script.probes,
    skipped: script.skipped,
    startupMs: started.startupMs,
    attachedNs: started.attachedNs,
    notes,
    bucketNs: BUCKET_NS,
    budget: req.budget,
    budgeted: [...BUDGETED],
    reasons: script.reasons,
  };
  return new Session(started, script, header, opts).handle();
}

/** True when startKernelEvents did not start (the probe is skipped as a whole). */
export const kernelEventsSkipped = (r: KernelEventsHandle | { skipped: string }): r is { skipped: string } =>
  typeof (r as { skipped?: unknown }).skipped === 'string';

function checkPorts(ports: number[]): number[] {
  if (ports.length === 0) throw new UserError('kernel events: no ports to filter on (give the server port)');
  if (ports.length > MAX_PORTS) throw new UserError(`kernel events: at most ${MAX_PORTS} ports, got ${ports.length}`);
  for (const p of ports) {
    if (!Number.isInteger(p) || p < 1 || p > 65535) throw new UserError(`kernel events: bad port ${p} (1-65535)`);
  }
  return [...new Set(ports)];
}

async function findTracefs(notes: string[]): Promise<string | { skipped: string }> {
  if (existsSync(join(TRACEFS, 'events'))) return TRACEFS;
  const m = await execa('mount', ['-t', 'tracefs', 'nodev', TRACEFS], { reject: false, timeout: 5000 });
  if (!m.failed && existsSync(join(TRACEFS, 'events'))) {
    notes.push(`mounted tracefs at ${TRACEFS}`);
    return TRACEFS;
  }
  if (existsSync(join(TRACEFS_OLD, 'events'))) return TRACEFS_OLD;
  return { skipped: `tracefs is not mounted and mounting it at ${TRACEFS} failed: ${firstLine(m.stderr || m.message)}` };
}

interface Attached {
  child: ChildProcess & { pid: number };
  startupMs: number;
  /** ns since t0 at the ready marker. */
  attachedNs: number;
  /** stdout text after the ready marker, not yet decoded. */
  rest: string[];
  splitter: LineSplitter;
  stderr: string[];
}

/** Spawn bpftrace and wait for the ready marker, an exit, or the timeout. */
async function attach(bin: string, script: BuiltScript, opts: KernelEventsOptions): Promise<Attached | { failed: string }> {
  const file = join(opts.runDir, KERNEL_EVENTS_SCRIPT);
  await writeFile(file, script.text);
  const t = performance.now();
  // killed by the kernel if the run's process dies without stopping it
  const child = spawn(...dyingWithUs(bin, [file]), { stdio: ['ignore', 'pipe', 'pipe'] });
  const stderr: string[] = [];
  child.stderr.setEncoding('utf8');
  child.stderr.on('data', (s: string) => {
    stderr.push(...s.split('\n').filter((l) => l.trim() !== ''));
    if (stderr.length > 50) stderr.splice(0, stderr.length - 50);
  });
  child.stdout.setEncoding('utf8');
  const splitter = new LineSplitter();
  const early: string[] = [];
  const timeoutMs = opts.attachTimeoutMs ?? 10_000;

  const outcome = await new Promise<'ready' | 'exit' | 'timeout' | Error>((resolve) => {
    const timer = setTimeout(() => resolve('timeout'), timeoutMs);
    const onData = (s: string): void => {
      const lines = splitter.push(s);
      const i = lines.indexOf(READY_MARKER);
      if (i < 0) {
        early.push(...lines);
        return;
      }
      early.push(...lines.slice(0, i), ...lines.slice(i + 1));
      done('ready');
    };
    const done = (r: 'ready' | 'exit' | 'timeout' | Error): void => {
      clearTimeout(timer);
      // paused, not just unhooked: a flowing stream with no listener drops data
      child.stdout.pause();
      child.stdout.off('data', onData);
      resolve(r);
    };
    child.stdout.on('data', onData);
    child.once('error', (e) => done(e));
    child.once('exit', () => done('exit'));
  });

  if (outcome === 'ready' && child.pid !== undefined) {
    // Events that raced ahead of the marker are kept; bpftrace chatter is dropped later.
    const attachedNs = Number(process.hrtime.bigint() - opts.t0);
    return { child: child as Attached['child'], startupMs: Math.round(performance.now() - t), attachedNs, rest: early, splitter, stderr };
  }
  if (child.exitCode === null && child.signalCode === null && child.pid !== undefined) {
    child.kill('SIGKILL');
    await onceExit(child, 2000);
  } else if (outcome === 'exit') {
    // let stderr drain before reading it
    await new Promise((r) => setTimeout(r, 20));
  }
  if (outcome instanceof Error) return { failed: outcome.message };
  if (outcome === 'timeout') return { failed: `bpftrace did not attach within ${timeoutMs / 1000}s` };
  return { failed: errorLine(stderr) ?? `bpftrace exited with code ${child.exitCode ?? child.signalCode}` };
}

/** The first ERROR line of bpftrace's stderr, minus its harmless RLIMIT_MEMLOCK warning. */
function errorLine(stderr: string[]): string | undefined {
  const useful = stderr.filter((l) => !/RLIMIT_MEMLOCK/.test(l));
  return (useful.find((l) => /ERROR/.test(l)) ?? useful[0])?.trim();
}

const firstLine = (s: string | undefined): string =>
  (s ?? '')
    .split('\n')
    .find((l) => l.trim() !== '')
    ?.trim() ?? '';

function onceExit(child: ChildProcess, ms: number): Promise<boolean> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve(true);
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve(false), ms);
    child.once('exit', () => {
      clearTimeout(timer);
      resolve(true);
    });
  });
}

/** A running bpftrace: decodes its lines into the events file until stopped. */
class Session {
  private readonly out: KernelEventsWriter;
  private recorded = 0;
  private lost = 0;
  private readonly recordedByKind = new Float64Array(KERNEL_EVENT_KINDS.length + 1);
  private readonly countedByKind = new Float64Array(KERNEL_EVENT_KINDS.length + 1);
  private readonly notes: string[];
  private stopping = false;
  private stopped: Promise<KernelEventsResult> | null = null;
  private readonly closed: Promise<void>;
  private readonly flushing: NodeJS.Timeout;
  private readonly killOnExit = (): void => {
    this.a.child.kill('SIGKILL');
  };

  constructor(
    private readonly a: Attached,
    private readonly script: BuiltScript,
    private readonly header: KernelEventsHeader,
    private readonly opts: KernelEventsOptions,
  ) {
    this.notes = [...header.notes];
    this.out = new KernelEventsWriter(join(opts.runDir, KERNEL_EVENTS_FILE), header);
    // bpftrace writes a line at a time: written to the file once a second
    // (or a page at a time), not per line, so the run's own process idles
    this.flushing = setInterval(() => this.out.flush(), FLUSH_MS).unref();
    this.take(a.rest);
    a.child.stdout!.on('data', (s: string) => this.take(a.splitter.push(s)));
    a.child.stdout!.resume();
    // 'close' comes after exit and the end of stdout: all output is in.
    this.closed = new Promise((resolve) => a.child.once('close', () => resolve()));
    a.child.once('exit', (code, signal) => {
      if (!this.stopping) this.notes.push(`bpftrace exited early (${signal ?? `code ${code}`}): ${errorLine(a.stderr) ?? 'no message'}`);
    });
    // Never leave bpftrace behind if this process goes away without stop().
    process.once('exit', this.killOnExit);
  }

  handle(): KernelEventsHandle {
    return {
      pid: this.a.child.pid,
      probes: this.script.probes,
      skippedProbes: this.script.skipped,
      notes: this.notes,
      startupMs: this.a.startupMs,
      attachedNs: this.a.attachedNs,
      stop: () => (this.stopped ??= this.stop()),
    };
  }

  private take(lines: string[]): void {
    for (const line of lines) {
      const r = decodeRecordLine(line, this.opts.t0, this.header.ports);
      if (r !== null) {
        this.out.add(r);
        if (r.flags & FLAG_COUNT) this.countedByKind[r.kind] += r.count;
        else {
          this.recorded++;
          this.recordedByKind[r.kind]++;
        }
        continue;
      }
      const lost = /^Lost (\d+) events/.exec(line);
      if (lost) this.lost += Number(lost[1]);
    }
  }

  private async stop(): Promise<KernelEventsResult> {
    this.stopping = true;
    const child = this.a.child;
    const ms = this.opts.stopTimeoutMs ?? 5000;
    if (child.exitCode === null && child.signalCode === null) {
      // bpftrace detaches and flushes its output on SIGINT. A SIGINT that
      // lands just before its poll loop starts is lost (0.17 then sleeps in
      // epoll_wait until the next event), so repeat it until it exits.
      const deadline = performance.now() + ms;
      let exited = false;
      while (!exited && performance.now() < deadline) {
        child.kill('SIGINT');
        exited = await onceExit(child, Math.min(500, Math.max(1, deadline - performance.now())));
      }
      if (!exited) {
        this.notes.push(`bpftrace did not stop within ${ms / 1000}s of SIGINT: killed`);
        child.kill('SIGKILL');
        await onceExit(child, 2000);
      }
    }
    await Promise.race([this.closed, new Promise((r) => setTimeout(r, 1000))]);
    process.off('exit', this.killOnExit);
    const tail = this.a.splitter.end();
    if (tail !== null) this.take([tail]);
    const byKind: Record<string, number> = {};
    let events = 0;
    for (let k = 1; k <= KERNEL_EVENT_KINDS.length; k++) {
      // counts can miss the few events between a print of the map and its clear
      const v = Math.max(this.countedByKind[k], this.recordedByKind[k]);
      if (v > 0) byKind[KERNEL_EVENT_KINDS[k - 1]] = v;
      events += v;
    }
    const result: KernelEventsResult = { events, byKind, recorded: this.recorded, skipped: this.script.skipped, notes: this.notes };
    if (this.lost > 0) result.lost = this.lost;
    clearInterval(this.flushing);
    await this.out.close(Number(process.hrtime.bigint() - this.opts.t0), this.lost);
    return result;
  }
}
