import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { runClock } from '../lib/clock.ts';
import { UserError } from '../lib/errors.ts';
import { writeJson } from '../lib/run-files.ts';
import { Columns } from './columns.ts';
import {
  META_FILE,
  META_SCHEMA,
  META_VERSION,
  PROBES_DIR,
  READ_RULE,
  SAMPLES_FILE,
  SAMPLES_MAGIC,
  SAMPLES_VERSION,
  type JitterStats,
  type ProbeMeta,
  type ProbeProcess,
  type ProbeResult,
  type SkippedProbe,
} from './probe-files.ts';
import { DEFAULT_SOURCES, SYSTEM_SOURCES } from './proc-names.ts';
import { ListenQueueProbe, type ListenerTarget } from './listen-queue.ts';
import { ProcessProbe } from './process-probe.ts';
import { SampleWriter } from './sample-writer.ts';
import { TemplateSource } from './template-source.ts';
import { OTHERS_PERIOD_NS, OtherProcesses } from './other-processes.ts';
import { Capture } from './capture.ts';

// The sampler: every probe read once per tick into the column arrays, the
// outputs computed and appended to samples.bin. Runs in the probe process
// (sampler-process.ts); usable in-process by tests.

export interface SamplerOptions {
  runDir: string;
  t0: bigint;
  intervalNs: number;
  /** The run's processes; own: one of sockspike's own (CPU only, at the own rate). The probe process itself is added as own "probes". */
  processes?: { role: string; pid: number; own?: boolean }[];
  listener?: ListenerTarget;
  /** Recorded in meta.json; the namespace itself is entered by whoever spawns us. */
  netns?: string | null;
  /** Where /proc is (fixtures in tests). */
  procRoot?: string;
  /** Per-CPU columns; 'auto': when there are at most 32 CPUs. */
  perCpu?: boolean | 'auto';
  /** System sources to sample (ids from proc-names.ts); default DEFAULT_SOURCES. */
  sources?: string[];
  /** USER_HZ; default: getconf CLK_TCK, else 100. */
  clkTck?: number;
  /** How often what is read at the slow rate is read (default SLOW_PERIOD_NS; 0: every sample, as the parsers' tests do). */
  slowPeriodNs?: number;
}

/** What is read at the slow rate (proc-names.ts `slow`, process status and schedstat) is read about this often. */
export const SLOW_PERIOD_NS = 100e6;
/** At most this many processes in a walk by the read thread (the rest of a bigger machine's are not named). */
const WALK_MAX = 16384;
/** sockspike's own processes' CPU (orchestrator, probes, bpftrace) is read about this often. */
export const OWN_PERIOD_NS = 500e6;

/** Every how many samples a period is read at an interval (at least every sample). */
export const everyFor = (periodNs: number, intervalNs: number): number => Math.max(1, Math.round(periodNs / intervalNs));

const clockTicks = (): number => {
  try {
    const v = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'latin1', timeout: 2000 }).trim());
    return Number.isInteger(v) && v > 0 ? v : 100;
  } catch {
    return 100;
  }
};

const cpuNs = (): { user: number; system: number } => {
  const u = process.cpuUsage();
  return { user: u.user * 1e3, system: u.system * 1e3 };
};

export class Sampler {
  readonly columns = new Columns();
  readonly skipped: SkippedProbe[] = [];
  readonly notes: string[] = [];
  readonly now: () => number;
  readonly dir: string;
  rows = 0;
  private readonly opts: SamplerOptions;
  private readonly procRoot: string;
  private readonly clkTck: number;
  private readonly perCpu: boolean;
  private readonly sources: TemplateSource[] = [];
  private readonly procs: ProcessProbe[] = [];
  private others: OtherProcesses | null = null;
  private readonly procInfo: ProbeProcess[] = [];
  private listener: ListenQueueProbe | null = null;
  private listenerInfo: ProbeMeta['listener'] = null;
  private writer: SampleWriter;
  private lateCol: number;
  private readCol: number;
  private lastT = 0;
  private baselineT = 0;
  private baselineCpu = { user: 0, system: 0 };
  private cpus = 0;
  private sumRead = 0;
  private maxRead = 0;
  private readonly flushEvery: number;
  private readonly slowEvery: number;
  private readonly ownEvery: number;
  private constants: Record<string, number> = {};
  private finished: ProbeResult | null = null;
  /** The addon's read thread, once started (startCapture); null: every read made by sample() itself. */
  private capture: Capture | null = null;

  private constructor(opts: SamplerOptions) {
    this.opts = opts;
    this.procRoot = opts.procRoot ?? '/proc';
    this.clkTck = opts.clkTck ?? clockTicks();
    this.perCpu = opts.perCpu === 'auto' || opts.perCpu === undefined ? os.cpus().length <= 32 : opts.perCpu;
    this.now = runClock(opts.t0);
    this.dir = path.join(opts.runDir, PROBES_DIR);
    fs.mkdirSync(this.dir, { recursive: true });
    this.writer = new SampleWriter(path.join(this.dir, SAMPLES_FILE));
    // who else used the CPUs, on the real /proc only (tests' fixture trees have no processes)
    if (this.procRoot === '/proc') this.others = new OtherProcesses(opts.runDir, this.procRoot, this.clkTck, (pid) => this.procs.some((p) => p.pid === pid));
    this.flushEvery = Math.max(1, Math.round(1e9 / opts.intervalNs));
    this.slowEvery = everyFor(opts.slowPeriodNs ?? SLOW_PERIOD_NS, opts.intervalNs);
    this.ownEvery = everyFor(OWN_PERIOD_NS, opts.intervalNs);
    // The probe's own timing, as columns: how late each sample was, how long it took.
    this.lateCol = this.columns.ensure({ name: 'probe.late_ns', kind: 'gauge', unit: 'ns', source: 'probe' }, 0);
    this.readCol = this.columns.ensure({ name: 'probe.read_ns', kind: 'gauge', unit: 'ns', source: 'probe' }, 0);
  }

  /** Open every probe (skipping, with a reason, those that cannot run) and take the baseline read. */
  static async create(opts: SamplerOptions): Promise<Sampler> {
    const s = new Sampler(opts);
    const ctx = { clkTck: s.clkTck, perCpu: s.perCpu };
    const ids = opts.sources ?? DEFAULT_SOURCES;
    const unknown = ids.filter((id) => !SYSTEM_SOURCES.some((d) => d.id === id));
    if (unknown.length > 0) throw new UserError(`unknown probe source(s) ${unknown.join(', ')}: use ${SYSTEM_SOURCES.map((d) => d.id).join(', ')}`);
    const wanted = SYSTEM_SOURCES.filter((d) => ids.includes(d.id));
    for (const def of wanted) {
      const src = new TemplateSource(def, s.procRoot, ctx, s.slowEvery);
      const why = src.open(s.columns, 0);
      if (why) s.skipped.push({ probe: def.id, reason: why });
      else s.sources.push(src);
    }
    for (const p of opts.processes ?? []) s.addProcess(p.role, p.pid, p.own === true);
    // the probe process's own CPU, as read from outside (its own account is in meta.json result.overhead)
    if (s.procRoot === '/proc') s.addProcess('probes', process.pid, true);
    if (opts.listener) await s.setListener(opts.listener);
    s.baseline();
    return s;
  }

  get intervalNs(): number {
    return this.opts.intervalNs;
  }

  /** Time of the last sample (or of the baseline read), ns since t0. */
  get lastSampleNs(): number {
    return this.lastT;
  }

  /** Start sampling a process (from the next sample on); own: one of sockspike's own, its CPU only. */
  addProcess(role: string, pid: number, own = false): void {
    const base = role.replace(/[^\w-]/g, '_') || 'process';
    const key = this.procInfo.some((p) => p.key === base) ? `${base}-${pid}` : base;
    let probe: ProcessProbe;
    try {
      probe = new ProcessProbe(role, pid, key, this.procRoot, own);
    } catch (err) {
      this.skipped.push({ probe: `proc.${key}`, reason: err instanceof Error ? err.message : String(err) });
      this.columns.dirty = true;
      return;
    }
    // CPU times count in 10 ms ticks: read at the slow rate, like /proc/stat (proc-names.ts EVERY_SAMPLE)
    probe.register(this.columns, this.rows, this.clkTck, own ? { stat: this.ownEvery, rest: this.ownEvery } : { stat: this.slowEvery, rest: this.slowEvery });
    if (this.capture !== null) probe.captureWith(this.capture);
    this.procs.push(probe);
    this.procInfo.push({ role, pid, key, addedNs: this.now(), exitedNs: null, ...(own ? { own: true } : {}) });
  }

  /** Watch a listening socket's accept queue (replaces any earlier one). */
  async setListener(target: ListenerTarget): Promise<void> {
    this.listener?.close();
    this.listener = null;
    const probe = await ListenQueueProbe.open(target, this.procRoot);
    if (typeof probe === 'string') {
      this.skipped.push({ probe: 'listen', reason: probe });
      this.columns.dirty = true;
      return;
    }
    probe.register(this.columns, this.rows);
    if (this.capture !== null) probe.captureWith(this.capture);
    this.listener = probe;
    this.listenerInfo = {
      pid: probe.pid,
      fd: probe.fd,
      port: probe.port,
      how: 'port' in target ? `found by port ${target.port}` : 'given as pid/fd',
    };
  }

  /**
   * Start the addon's read thread (capture.ts): from now on the reads are
   * made by it, slot k at the baseline + k x interval, and takeCaptured()
   * parses them. A reason (one line) when it cannot start; sample() then
   * reads for itself.
   */
  startCapture(): string | null {
    // the thread numbers its samples from 0, as rows are (columns.plan: which rates are due)
    if (this.rows !== 0) return 'the read thread starts before the first sample';
    const started = Capture.start(this.opts.intervalNs, Number(this.opts.t0) + this.baselineT + this.opts.intervalNs);
    if (typeof started === 'string') return started;
    for (const s of this.sources) s.captureWith(started);
    for (const p of this.procs) if (!p.gone) p.captureWith(started);
    this.listener?.captureWith(started);
    if (this.others !== null) started.walkEvery(everyFor(OTHERS_PERIOD_NS, this.opts.intervalNs), WALK_MAX);
    this.capture = started;
    return null;
  }

  /** Slots the read thread skipped (late, or its ring full), as of its last parse; 0 without one. */
  captureMissed = 0;

  /** Parse every slot the read thread wrote since the last call, as samples; onSample gets each one's slot and time (ns since t0). */
  takeCaptured(onSample: (scheduledNs: number, tNs: number) => void): number {
    const cap = this.capture;
    if (cap === null) return 0;
    const n = cap.written;
    const t0 = Number(this.opts.t0);
    const slot = this.slot;
    for (let i = 0; i < n; i++) {
      cap.feed(i, slot);
      const scheduled = slot.scheduledNs - t0;
      const t = slot.tNs - t0;
      this.sample(scheduled, false, t, slot.readNs);
      onSample(scheduled, t);
    }
    cap.release(n);
    this.captureMissed = cap.missed;
    const walk = cap.takeWalk();
    if (walk !== null) this.others?.record(walk.tNs - t0, walk.processes);
    return n;
  }

  /** Stop the read thread, parse what it wrote; later samples read for themselves. */
  stopCapture(onSample: (scheduledNs: number, tNs: number) => void): void {
    if (this.capture === null) return;
    this.capture.stop();
    this.takeCaptured(onSample);
    this.capture.detach();
    this.capture = null;
  }

  private readonly slot = { scheduledNs: 0, tNs: 0, readNs: 0 };

  /**
   * One sample; scheduledNs is the slot it was meant for; all: read every
   * rate group (the last sample). Taken now, or (capturedT, ns since t0)
   * parsed from the read thread's slot read then, in capturedReadNs.
   */
  sample(scheduledNs: number, all = false, capturedT = NaN, capturedReadNs = 0): void {
    const C = this.columns;
    C.plan(this.rows, all);
    const start = this.now();
    const t = Number.isNaN(capturedT) ? start : capturedT;
    this.readAll();
    if (this.capture === null) this.others?.maybeWalk(start);
    const readNs = this.now() - start + capturedReadNs;
    C.set(this.lateCol, t > scheduledNs ? t - scheduledNs : 0);
    C.set(this.readCol, readNs);
    this.sumRead += readNs;
    if (readNs > this.maxRead) this.maxRead = readNs;
    const dt = t - this.lastT;
    C.compute(dt, t);
    const out = C.out;
    const live = C.live;
    const value = C.value;
    const reading = C.reading;
    const members = C.groupMembers();
    const w = this.writer;
    w.beginRow(t, dt, C.outputs.length);
    // the columns read in this sample; the others are not read (nothing written)
    for (let g = 0; g < members.length; g++) {
      if (reading[g] === 0) continue;
      const cols = members[g];
      for (let i = 0; i < cols.length; i++) {
        const c = cols[i];
        const o = out[c];
        if (o < 0 || live[c] === 0) continue;
        const v = value[c];
        if (v !== 0) w.entry(o, v);
      }
    }
    w.endRow();
    this.rows++;
    this.lastT = t;
    C.rotate(t);
    if (this.rows % this.flushEvery === 0) w.flush();
    if (C.dirty) this.writeMeta(false);
  }

  /** Stop: flush, close everything, write the final meta. Idempotent. */
  finish(stopReason: string, jitter: JitterStats): ProbeResult {
    if (this.finished) return this.finished;
    this.capture?.detach();
    this.capture = null;
    const end = this.now();
    const cpu = cpuNs();
    this.writer.close();
    this.others?.close();
    for (const s of this.sources) s.close();
    for (const p of this.procs) p.close();
    this.listener?.close();
    for (const s of this.sources) {
      if (s.relayouts > 0) this.notes.push(`${s.path}: layout changed ${s.relayouts} time(s) during the run (re-read by name)`);
      if (s.failures > 0) this.notes.push(`${s.path}: unreadable in ${s.failures} sample(s) (${s.lastFailure})`);
    }
    if (this.listener?.gone) this.notes.push(`listen queue: ${this.listener.gone}; not sampled from then on`);
    const wallNs = Math.max(1, end - this.baselineT);
    const user = cpu.user - this.baselineCpu.user;
    const system = cpu.system - this.baselineCpu.system;
    this.finished = {
      samples: this.rows,
      intervalNs: this.opts.intervalNs,
      columns: this.columns.outputs.length,
      bytes: this.writer.bytes,
      jitter,
      overhead: {
        cpuPerSecond: (user + system) / wallNs,
        userPerSecond: user / wallNs,
        systemPerSecond: system / wallNs,
        wallNs,
        meanSampleNs: this.rows ? this.sumRead / this.rows : 0,
        maxSampleNs: this.maxRead,
        startupCpuNs: this.baselineCpu.user + this.baselineCpu.system,
      },
      skipped: this.skipped,
      processes: this.procInfo,
      files: [path.join(PROBES_DIR, META_FILE), path.join(PROBES_DIR, SAMPLES_FILE)],
      stopReason,
    };
    this.writeMeta(true);
    return this.finished;
  }

  /** Read every probe into the current raw values. */
  private readAll(): void {
    const C = this.columns;
    const row = this.rows;
    const reading = C.reading;
    for (let i = 0; i < this.sources.length; i++) {
      const src = this.sources[i];
      if (reading[src.group] === 1) src.sample(C, row);
    }
    for (let i = 0; i < this.procs.length; i++) {
      const p = this.procs[i];
      if (!p.gone && !p.sample(C, row) && p.gone) this.processGone(i);
    }
    if (this.listener) this.listener.sample(C);
  }

  private processGone(i: number): void {
    const info = this.procInfo[i];
    info.exitedNs = this.now();
    this.notes.push(`process ${info.role} (pid ${info.pid}) ended during the run; not sampled from then on`);
  }

  private baseline(): void {
    this.columns.plan(0, true);
    this.readAll();
    const t = this.now();
    this.baselineT = t;
    this.lastT = t;
    this.baselineCpu = cpuNs();
    const C = this.columns;
    try {
      this.cpus = (fs.readFileSync(path.join(this.procRoot, 'stat'), 'latin1').match(/^cpu\d+ /gm) ?? []).length;
    } catch {
      // counted below
    }
    if (!this.cpus) this.cpus = os.cpus().length;
    for (let c = 0; c < C.count; c++) {
      if (C.specs[c].kind === 'constant') this.constants[C.specs[c].name] = C.raw(c);
    }
    C.rotate(t);
    this.writeMeta(false);
  }

  private writeMeta(complete: boolean): void {
    this.columns.dirty = false;
    const meta: ProbeMeta = {
      schema: META_SCHEMA,
      version: META_VERSION,
      samples: { file: SAMPLES_FILE, magic: SAMPLES_MAGIC, version: SAMPLES_VERSION },
      t0Ns: this.opts.t0.toString(),
      intervalNs: this.opts.intervalNs,
      clkTck: this.clkTck,
      cpus: this.cpus,
      procRoot: this.procRoot,
      netns: this.opts.netns ?? null,
      baselineNs: this.baselineT,
      columns: this.columns.outputs,
      rates: this.columns.groups.map((g) => ({
        every: g.every,
        periodNs: g.every * this.opts.intervalNs,
        spanColumn: g.spanCol < 0 ? null : this.columns.specs[g.spanCol].name,
        reads: g.labels,
      })),
      readRule: READ_RULE,
      constants: this.constants,
      skipped: this.skipped,
      processes: this.procInfo,
      listener: this.listenerInfo,
      notes: this.notes,
      complete,
      rows: complete ? this.rows : null,
      result: complete ? this.finished : null,
    };
    writeJson(path.join(this.dir, META_FILE), meta);
  }
}
