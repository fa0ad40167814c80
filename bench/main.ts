// `npm run bench`: sockspike's own cost, as ratios against references
// measured in the same run (issue 7). Every figure is printed with the
// command that reproduces it.
//
//   npm run bench [-- --json] [--quick] [--only client,pair,latency,recording,probes,own,analysis,startup]
//                 [--concurrency 16] [--close client-rst] [--reps N] [--duration S] [--client-processes K]
//
// --client-processes K: sockspike's client load split over K client processes (client part;
// default 2 at concurrency 16 on a machine with 2+ CPUs, as `sockspike run --client-processes 2`).
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import os from 'node:os';
import { fileURLToPath } from 'node:url';
import { median } from 'simple-statistics';
import { UserError } from '../lib/errors.ts';
import { buildNativeRef } from './native-ref.ts';
import { engineUnavailable } from '../harness/engine.ts';
import { isolationUnavailable, runIsolated, stopLiveRuns } from './isolated.ts';
import type { RunFigures, RunSpec } from './one-run.ts';
import { probeReferences } from './probe-references.ts';
import { measureOwnCpu, type OwnCpuFigures } from './own-cpu.ts';
import { measureRecording, type RecordingFigures } from './recording.ts';
import { measureStartup, type StartupFigures } from './startup.ts';

const USAGE = `npm run bench [-- options]: sockspike's own cost as ratios against references measured in the same run

  --json                   one JSON object on stdout instead of text
  --quick                  a ~30 s smoke run (1 repetition of 1 s, small analysis)
  --only PARTS             comma-separated: client, pair, latency, recording, probes, own, analysis, startup
  --concurrency C[,C...]   client part (default 1,4,16; quick: 16); pair uses the first (default 16)
  --close V[,V...]         client-fin, client-rst, server-fin, server-rst (default client-fin,client-rst)
  --reps N                 A/B repetitions (default 5 at concurrency 16, 3 otherwise; quick: 1)
  --duration S             seconds per run (default 3, latency 2; quick: 1)
  --client-processes K     client part: sockspike's load split over K client processes
                           (default: 2 at concurrency 16 with 2+ CPUs, else 1)
`;

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const PARTS = ['client', 'pair', 'latency', 'recording', 'probes', 'own', 'analysis', 'startup'] as const;
type Part = (typeof PARTS)[number];
type Close = RunSpec['close'];

const REF_PROBE_COMMAND = 'bench/native/build/ref probe -i 20 -d 10 -P $$ -P $$   # the C reference reader (built by any npm run bench)';

export const TARGETS = {
  clientTpsRatio: 0.6, // at concurrency 16, client-fin and client-rst
  // the native engine (issue 11): client and pair tps ratios, client tps per CPU-second; added latency at concurrency 1
  engineTpsRatio: 0.9,
  engineTpsPerCpuRatio: 0.9,
  engineAddedP50Us: 10,
  engineAddedP99Us: 50,
  recordingNs: 200,
  recordingHeapBytes: 0,
  probeCpuPctAt20ms: 1,
  ownCpuPct: 3, // orchestrator + probes + bpftrace, at the defaults and under a high-rate client-rst run
  analysisS: 5,
  analysisRssMiB: 1024,
  helpS: 0.3,
  firstTxnS: 1.5,
  wrapUpS: 3,
  npmStartS: 25,
};

interface Options {
  json: boolean;
  quick: boolean;
  parts: Set<Part>;
  concurrency: number[] | null;
  close: Close[] | null;
  reps: number | null;
  durationS: number | null;
  /** null: 2 at concurrency 16 on 2+ CPUs (as `sockspike run --client-processes 2`), else 1. */
  clientProcesses: number | null;
}

function parseArgs(argv: string[]): Options {
  const o: Options = { json: false, quick: false, parts: new Set(PARTS), concurrency: null, close: null, reps: null, durationS: null, clientProcesses: null };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const val = (): string => {
      const v = argv[++i];
      if (v === undefined) throw new UserError(`${a} needs a value`);
      return v;
    };
    if (a === '--help' || a === '-h') {
      process.stdout.write(USAGE);
      process.exit(0);
    } else if (a === '--json') o.json = true;
    else if (a === '--quick') o.quick = true;
    else if (a === '--only') {
      const names = val().split(',');
      for (const n of names) if (!(PARTS as readonly string[]).includes(n)) throw new UserError(`--only: unknown part "${n}" (one of ${PARTS.join(', ')})`);
      o.parts = new Set(names as Part[]);
    } else if (a === '--concurrency')
      o.concurrency = val()
        .split(',')
        .map((v) => positive(v, a));
    else if (a === '--close') {
      const names = val().split(',');
      for (const n of names)
        if (!['client-fin', 'client-rst', 'server-fin', 'server-rst'].includes(n))
          throw new UserError(`--close: "${n}" is not one of client-fin, client-rst, server-fin, server-rst`);
      o.close = names as Close[];
    } else if (a === '--reps') o.reps = positive(val(), a);
    else if (a === '--duration') o.durationS = positive(val(), a);
    else if (a === '--client-processes') o.clientProcesses = positive(val(), a);
    else throw new UserError(`unknown option ${a} (npm run bench -- --help)`);
  }
  return o;
}

function positive(v: string, flag: string): number {
  const n = Number(v);
  if (!(Number.isFinite(n) && n > 0)) throw new UserError(`${flag}: "${v}" must be a positive number`);
  return n;
}

// ------------------------------------------------------------------ figures

interface Side {
  tps: number;
  tpsPerCpuS: number;
  p50Us: number;
  p99Us: number;
}

export interface Comparison {
  what: 'client' | 'pair';
  close: Close;
  concurrency: number;
  durationS: number;
  reps: number;
  /** Medians over the repetitions of sockspike / native. */
  tpsRatio: number;
  tpsPerCpuRatio: number;
  native: Side;
  sockspike: Side;
  /** Median of per-repetition sockspike minus native latency, µs. */
  addedP50Us: number;
  addedP99Us: number;
  failed: number;
  target: number | null;
  met: boolean | null;
  command: string;
  /** The native engine's client (and server, for the pair) in the same alternation; null where it is not built. */
  engine: null | {
    side: Side;
    tpsRatio: number;
    tpsPerCpuRatio: number;
    addedP50Us: number;
    addedP99Us: number;
    /** Against TARGETS.engine*: tps (and, for the client, tps per CPU-second). */
    met: boolean;
  };
  runs: { native: RunFigures; sockspike: RunFigures; engine?: RunFigures }[];
}

export interface BenchResult {
  machine: { cpus: number; cpuModel: string; kernel: string; node: string; virtualization: string; loadAtStart: number; loadAtEnd: number };
  isolation: string;
  /** Why the native engine is not in the comparisons (null: it is). */
  engineMissing: string | null;
  quick: boolean;
  client: Comparison[];
  pair: Comparison[];
  latency: Comparison | null;
  recording: (RecordingFigures & { met: boolean; command: string }) | null;
  probes:
    | {
        intervalMs: number;
        cpuPct: number;
        cpuPctOwn: number;
        meanSampleUs: number;
        /** References in the same run: C reading the same files; a Node process that only wakes every interval. */
        nativeCpuPct: number;
        idleNodeCpuPct: number;
        met: boolean | null;
        command: string;
      }[]
    | null;
  /** CPU of sockspike's own processes besides the client and server: a default run, a high-rate client-rst run. */
  own: (OwnCpuFigures & { met: boolean | null })[] | null;
  analysis: {
    transactions: number;
    samples: number;
    kernelEvents: number | null;
    kernelEventsRecorded: number | null;
    outliers: number;
    s: number;
    analysisS: number;
    reportS: number;
    peakRssMiB: number;
    met: boolean;
    command: string;
  } | null;
  /** The default run's start-up and wrap-up (20 s run; quick: 2 s), against the fast-start targets. */
  startup: (StartupFigures & { met: { help: boolean; firstTxn: boolean; wrapUp: boolean; total: boolean | null } }) | null;
  elapsedS: number;
}

/** "kvm VM (Firecracker), in a docker container", from systemd-detect-virt, the hypervisor flag and the kernel command line. */
function virtualization(): string {
  const detect = (flag: string): string | null => {
    const r = spawnSync('systemd-detect-virt', [flag], { encoding: 'utf8' });
    const v = (r.stdout ?? '').trim();
    return r.error === undefined && v !== '' && v !== 'none' ? v : null;
  };
  const read = (f: string): string => (existsSync(f) ? readFileSync(f, 'utf8') : '');
  let vm = detect('--vm') ?? (/\bhypervisor\b/.test(read('/proc/cpuinfo')) ? 'a hypervisor' : null);
  if (vm !== null && /firecracker/i.test(read('/proc/cmdline'))) vm += ' (Firecracker)';
  const container = detect('--container');
  const parts = [vm === null ? 'no VM detected' : `${vm} VM`, container === null ? null : `in a ${container} container`];
  return parts.filter((x) => x !== null).join(', ');
}

function machine(): BenchResult['machine'] {
  const cpus = os.cpus();
  return {
    cpus: cpus.length,
    cpuModel: cpus[0]?.model ?? 'unknown',
    kernel: os.release(),
    node: process.version,
    virtualization: virtualization(),
    loadAtStart: Math.round(os.loadavg()[0] * 100) / 100,
    loadAtEnd: NaN,
  };
}

const side = (r: RunFigures, cpuS: number): Side => ({ tps: r.tps, tpsPerCpuS: r.ok / cpuS, p50Us: r.p50Us, p99Us: r.p99Us });
const med = (xs: number[]): number => (xs.length === 0 ? NaN : median(xs));

function progress(line: string): void {
  if (process.stderr.isTTY) process.stderr.write(`\r\x1b[K${line}`);
}

/**
 * Alternating runs, each in its own namespace: native, Node, engine, the
 * order rotated every repetition (native first, then Node first, then the
 * engine first, ...), so drift in the machine's load falls on every side.
 */
async function compare(
  what: 'client' | 'pair',
  close: Close,
  concurrency: number,
  durationS: number,
  reps: number,
  isolate: boolean,
  clientProcesses = 1,
  withEngine = engineUnavailable() === null,
): Promise<Comparison> {
  const base = { close, concurrency, durationS };
  const nativeSpec: RunSpec = { ...base, client: 'native', server: 'native' };
  const ourSpec: RunSpec = {
    ...base,
    client: 'sockspike',
    server: what === 'client' ? 'native' : 'sockspike',
    ...(clientProcesses > 1 ? { clientProcesses } : {}),
  };
  // one engine client process, always: the issue's comparison
  const engineSpec: RunSpec = { ...base, client: 'engine', server: what === 'client' ? 'native' : 'engine' };
  const runs: Comparison['runs'] = [];
  for (let i = 0; i < reps; i++) {
    progress(`${what} ${close} c${concurrency}: repetition ${i + 1}/${reps}`);
    const order: ('native' | 'sockspike' | 'engine')[] = withEngine ? ['native', 'sockspike', 'engine'] : ['native', 'sockspike'];
    const rot = order.map((_, k) => order[(k + i) % order.length]);
    const got: Partial<Record<'native' | 'sockspike' | 'engine', RunFigures>> = {};
    for (const sideName of rot)
      got[sideName] = await runIsolated(sideName === 'native' ? nativeSpec : sideName === 'sockspike' ? ourSpec : engineSpec, isolate);
    runs.push({ native: got.native!, sockspike: got.sockspike!, ...(got.engine ? { engine: got.engine } : {}) });
  }
  // CPU-seconds: the client's alone for the client comparison, client + server for the pair
  const cpu = (r: RunFigures): number => (what === 'client' ? r.clientCpuS : r.clientCpuS + r.serverCpuS);
  const ns = runs.map((r) => side(r.native, cpu(r.native)));
  const ss = runs.map((r) => side(r.sockspike, cpu(r.sockspike)));
  const medSide = (xs: Side[]): Side => ({
    tps: med(xs.map((x) => x.tps)),
    tpsPerCpuS: med(xs.map((x) => x.tpsPerCpuS)),
    p50Us: med(xs.map((x) => x.p50Us)),
    p99Us: med(xs.map((x) => x.p99Us)),
  });
  const target = what === 'client' && concurrency === 16 && (close === 'client-fin' || close === 'client-rst') ? TARGETS.clientTpsRatio : null;
  const tpsRatio = med(runs.map((_, i) => ss[i].tps / ns[i].tps));
  let engine: Comparison['engine'] = null;
  if (withEngine) {
    const es = runs.map((r) => side(r.engine!, cpu(r.engine!)));
    const e = {
      side: medSide(es),
      tpsRatio: med(runs.map((_, i) => es[i].tps / ns[i].tps)),
      tpsPerCpuRatio: med(runs.map((_, i) => es[i].tpsPerCpuS / ns[i].tpsPerCpuS)),
      addedP50Us: med(runs.map((_, i) => es[i].p50Us - ns[i].p50Us)),
      addedP99Us: med(runs.map((_, i) => es[i].p99Us - ns[i].p99Us)),
    };
    const met = e.tpsRatio >= TARGETS.engineTpsRatio && (what === 'pair' || e.tpsPerCpuRatio >= TARGETS.engineTpsPerCpuRatio);
    engine = { ...e, met };
  }
  return {
    what,
    ...base,
    reps,
    tpsRatio,
    tpsPerCpuRatio: med(runs.map((_, i) => ss[i].tpsPerCpuS / ns[i].tpsPerCpuS)),
    native: medSide(ns),
    sockspike: medSide(ss),
    addedP50Us: med(runs.map((_, i) => ss[i].p50Us - ns[i].p50Us)),
    addedP99Us: med(runs.map((_, i) => ss[i].p99Us - ns[i].p99Us)),
    failed: runs.reduce((a, r) => a + r.native.failed + r.sockspike.failed + (r.engine?.failed ?? 0), 0),
    target,
    met: target === null ? null : tpsRatio >= target,
    command: `npm run bench -- --only ${what} --close ${close} --concurrency ${concurrency} --reps ${reps} --duration ${durationS}${clientProcesses > 1 ? ` --client-processes ${clientProcesses}` : ''}`,
    engine,
    runs,
  };
}

// the shipped (compiled) sampler, as every run starts it; from sources only in a checkout not built
const MEASURE_OVERHEAD = existsSync(join(ROOT, 'dist', 'probes', 'measure-overhead.js'))
  ? { args: ['dist/probes/measure-overhead.js'], command: 'node dist/probes/measure-overhead.js' }
  : { args: ['--import', 'tsx', 'probes/measure-overhead.ts'], command: 'node --import tsx probes/measure-overhead.ts' };

async function probeOverhead(seconds: number): Promise<BenchResult['probes']> {
  const r = spawnSync(process.execPath, [...MEASURE_OVERHEAD.args, String(seconds), '--json'], {
    cwd: ROOT,
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  if (r.status !== 0) throw new Error(`probes/measure-overhead.ts failed (${r.status ?? r.signal})`);
  const rows = JSON.parse(r.stdout.trim().split('\n').pop()!) as { intervalMs: number; cpuPctOwn: number; cpuPctSteady: number; meanSampleUs: number }[];
  const refs = await probeReferences(buildNativeRef(), seconds);
  return rows.map((x) => ({
    intervalMs: x.intervalMs,
    cpuPct: x.cpuPctSteady,
    cpuPctOwn: x.cpuPctOwn,
    meanSampleUs: x.meanSampleUs,
    nativeCpuPct: refs.find((r) => r.intervalMs === x.intervalMs)?.nativeCpuPct ?? NaN,
    idleNodeCpuPct: refs.find((r) => r.intervalMs === x.intervalMs)?.idleNodeCpuPct ?? NaN,
    met: x.intervalMs === 20 ? x.cpuPctSteady <= TARGETS.probeCpuPctAt20ms : null,
    command: `${MEASURE_OVERHEAD.command} ${seconds}`,
  }));
}

function analysisSpeed(transactions: number, durationS: number): BenchResult['analysis'] {
  const r = spawnSync(
    process.execPath,
    ['--import', 'tsx', 'bench/analysis-speed.ts', '--json', '--transactions', String(transactions), '--duration', String(durationS)],
    {
      cwd: ROOT,
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'inherit'],
    },
  );
  if (r.status !== 0) throw new Error(`bench/analysis-speed.ts failed (${r.status ?? r.signal})`);
  const j = JSON.parse(r.stdout.trim().split('\n').pop()!) as {
    transactions: number;
    samples: number;
    kernelEvents: number | null;
    kernelEventsRecorded: number | null;
    outliers: number;
    analysisS: number;
    reportS: number;
    total: { s: number; peakRssMiB: number };
  };
  return {
    transactions: j.transactions,
    samples: j.samples,
    kernelEvents: j.kernelEvents,
    kernelEventsRecorded: j.kernelEventsRecorded,
    outliers: j.outliers,
    analysisS: j.analysisS,
    reportS: j.reportS,
    s: j.total.s,
    peakRssMiB: j.total.peakRssMiB,
    met: j.total.s <= TARGETS.analysisS && j.total.peakRssMiB <= TARGETS.analysisRssMiB,
    command: `npx tsx bench/analysis-speed.ts --transactions ${transactions} --duration ${durationS}`,
  };
}

export async function runBench(o: Options): Promise<BenchResult> {
  const t0 = performance.now();
  const why = isolationUnavailable();
  const isolate = why === null;
  const q = o.quick;
  const durationS = o.durationS ?? (q ? 1 : 3);
  const result: BenchResult = {
    machine: machine(),
    isolation: why ?? 'each run in a fresh network namespace (ip netns), deleted after',
    engineMissing: engineUnavailable(),
    quick: q,
    client: [],
    pair: [],
    latency: null,
    recording: null,
    probes: null,
    own: null,
    analysis: null,
    startup: null,
    elapsedS: 0,
  };
  if (o.parts.has('client') || o.parts.has('pair') || o.parts.has('latency') || o.parts.has('probes')) buildNativeRef();
  if (o.parts.has('client')) {
    const cs = o.concurrency ?? (q ? [16] : [1, 4, 16]);
    for (const c of cs)
      for (const close of o.close ?? (['client-fin', 'client-rst'] as Close[]))
        result.client.push(
          await compare(
            'client',
            close,
            c,
            durationS,
            o.reps ?? (q ? 1 : c === 16 ? 5 : 3),
            isolate,
            o.clientProcesses ?? (c >= 16 ? Math.min(2, os.availableParallelism()) : 1),
          ),
        );
  }
  if (o.parts.has('latency')) {
    // concurrency 1: the client's own added latency, and its throughput ratio there
    const l = await compare('client', o.close?.[0] ?? 'client-fin', 1, o.durationS ?? (q ? 1 : 2), o.reps ?? (q ? 1 : 3), isolate);
    l.command = l.command.replace('--only client', '--only latency');
    result.latency = l;
  }
  if (o.parts.has('pair'))
    for (const close of o.close ?? (q ? (['client-rst'] as Close[]) : (['client-fin', 'client-rst'] as Close[])))
      result.pair.push(await compare('pair', close, (o.concurrency ?? [16])[0], durationS, o.reps ?? (q ? 1 : 3), isolate));
  if (o.parts.has('recording')) {
    progress('recording');
    const n = q ? 200_000 : 1_000_000;
    const f = measureRecording(n);
    result.recording = {
      ...f,
      met: f.nsPerRecord <= TARGETS.recordingNs && f.heapBytesPerRecord < 1,
      command: `node --import tsx bench/recording.ts ${n}`,
    };
  }
  if (o.parts.has('probes')) {
    progress('probes');
    result.probes = await probeOverhead(q ? 1 : 10);
  }
  if (o.parts.has('own')) {
    progress('own');
    const d = q ? 3 : 20;
    result.own = [[], ['--close', 'client-rst', '--concurrency', '8']].map((flags) => {
      const f = measureOwnCpu(d, flags);
      // quick: 3 s runs, mostly start-up (the probe process's JIT warm-up): no verdict
      return { ...f, met: f.ownPct === null || q ? null : f.ownPct <= TARGETS.ownCpuPct };
    });
  }
  if (o.parts.has('analysis')) {
    progress('analysis');
    // shaped like the 917 504-transaction client-rst run of issue 12: 28 minutes of samples, kernel events at two per transaction
    result.analysis = q ? analysisSpeed(50_000, 30) : analysisSpeed(1_000_000, 1680);
  }
  if (o.parts.has('startup')) {
    progress('startup');
    const f = measureStartup(q ? 2 : 20);
    result.startup = {
      ...f,
      met: {
        help: Math.max(f.helpS, f.scenariosS) <= TARGETS.helpS,
        firstTxn: f.firstTxnMs / 1000 <= TARGETS.firstTxnS,
        wrapUp: f.wrapUpMs / 1000 <= TARGETS.wrapUpS,
        // `npm start` is the 20 s run
        total: q ? null : f.totalS <= TARGETS.npmStartS,
      },
    };
  }
  progress('');
  result.machine.loadAtEnd = Math.round(os.loadavg()[0] * 100) / 100;
  result.elapsedS = Math.round((performance.now() - t0) / 100) / 10;
  return result;
}

// ------------------------------------------------------------------ text

const f1 = (v: number): string => v.toFixed(1);
const f2 = (v: number): string => v.toFixed(2);
/** A difference with its sign: +12.3, -2.1. */
const sgn = (v: number): string => `${v >= 0 ? '+' : ''}${f1(v)}`;
const k = (v: number): string => Math.round(v).toLocaleString('en-US');
const verdict = (met: boolean | null, target: string): string => (met === null ? '' : met ? ` (target ${target}: met)` : ` (target ${target}: MISSED)`);

function comparisonText(c: Comparison): string[] {
  const tgt = c.target === null ? '' : verdict(c.met, `>= ${c.target}`);
  const e = c.engine;
  const etgt = c.what === 'pair' ? `tps >= ${TARGETS.engineTpsRatio}` : `tps and per CPU-s >= ${TARGETS.engineTpsRatio}`;
  return [
    `  ${c.close}, concurrency ${c.concurrency}, ${c.reps} x ${c.durationS} s each side:`,
    `    engine: tps ratio ${e === null ? 'n/a' : f2(e.tpsRatio)}, tps per CPU-second ratio ${e === null ? 'n/a' : f2(e.tpsPerCpuRatio)}${e === null ? '' : verdict(e.met, etgt)}`,
    `    node:   tps ratio ${f2(c.tpsRatio)}${tgt}, tps per CPU-second ratio ${f2(c.tpsPerCpuRatio)}`,
    `    native ${k(c.native.tps)} tps (${k(c.native.tpsPerCpuS)} per CPU-s), engine ${e === null ? 'n/a' : `${k(e.side.tps)} tps (${k(e.side.tpsPerCpuS)} per CPU-s)`}, node ${k(c.sockspike.tps)} tps (${k(c.sockspike.tpsPerCpuS)} per CPU-s)${c.failed > 0 ? `; ${c.failed} failed transactions` : ''}`,
    `    $ ${c.command}`,
  ];
}

export function benchText(r: BenchResult): string {
  const m = r.machine;
  const out: string[] = [
    `sockspike benchmarks${r.quick ? ' (quick)' : ''}: ${m.cpus} CPUs (${m.cpuModel}), Linux ${m.kernel}, Node ${m.node}, virtualization: ${m.virtualization}, load ${m.loadAtStart} at start, ${m.loadAtEnd} at the end (1-min average: other work on the machine skews every figure)`,
    `isolation: ${r.isolation}`,
    `engine: ${r.engineMissing === null ? 'the native engine (native/engine/) beside the Node client and server' : `not measured (${r.engineMissing})`}`,
  ];
  if (r.client.length > 0) {
    out.push(
      '',
      '1. client throughput: sockspike client (engine, node) vs native client, same native server (median of alternating runs; CPU = client process, /proc/PID/stat)',
    );
    for (const c of r.client) out.push(...comparisonText(c));
  }
  if (r.pair.length > 0) {
    out.push('', '2. whole pair: built-in client + server (engine, node) vs native client + server (CPU = both processes)');
    for (const c of r.pair) out.push(...comparisonText(c));
  }
  if (r.latency !== null) {
    const l = r.latency;
    const e = l.engine;
    out.push(
      '',
      `3. added latency at concurrency 1 (${l.close}, same native server):` +
        (e === null
          ? ''
          : ` engine p50 ${sgn(e.addedP50Us)} us, p99 ${sgn(e.addedP99Us)} us${verdict(e.addedP50Us <= TARGETS.engineAddedP50Us && e.addedP99Us <= TARGETS.engineAddedP99Us, `<= ${TARGETS.engineAddedP50Us} / ${TARGETS.engineAddedP99Us} us`)};`) +
        ` node p50 ${sgn(l.addedP50Us)} us, p99 ${sgn(l.addedP99Us)} us`,
      `    native p50 ${f1(l.native.p50Us)} us p99 ${f1(l.native.p99Us)} us; ` +
        (e === null ? '' : `engine p50 ${f1(e.side.p50Us)} us p99 ${f1(e.side.p99Us)} us, tps ratio ${f2(e.tpsRatio)}; `) +
        `node p50 ${f1(l.sockspike.p50Us)} us p99 ${f1(l.sockspike.p99Us)} us, tps ratio ${f2(l.tpsRatio)}`,
      `    $ ${l.command}`,
    );
  }
  if (r.recording !== null) {
    const x = r.recording;
    out.push(
      '',
      `4. recording: ${f1(x.nsPerRecord)} ns (best of 3 loops; median ${f1(x.nsPerRecordMedian)}) and ${x.heapBytesPerRecord.toFixed(3)} heap bytes per transaction over ${k(x.records)} records, ${x.gcsDuringLoop} GCs${verdict(x.met, `<= ${TARGETS.recordingNs} ns, 0 bytes`)}`,
      `    $ ${x.command}`,
    );
  }
  if (r.probes !== null) {
    out.push(
      '',
      '5. probe process CPU (steady state, /proc/PID/stat; own account in brackets); references: C reading the same files, a Node process that only wakes',
    );
    for (const p of r.probes)
      out.push(
        `  ${p.intervalMs} ms: ${f2(p.cpuPct)} % of a core (${f2(p.cpuPctOwn)} %), ${Math.round(p.meanSampleUs)} us per sample${verdict(p.met, `<= ${TARGETS.probeCpuPctAt20ms} %`)}; ` +
          `C reader ${f2(p.nativeCpuPct)} % (ratio ${f2(p.cpuPct / p.nativeCpuPct)}), idle node ${f2(p.idleNodeCpuPct)} %`,
      );
    out.push(`    $ ${r.probes[0].command}`, `    $ ${REF_PROBE_COMMAND}`);
  }
  if (r.own !== null) {
    out.push('', "5b. sockspike's own processes besides the client and server (orchestrator, probes, bpftrace; /proc/PID/stat while sampling)");
    for (const x of r.own)
      out.push(
        `  ${x.flags.length > 0 ? x.flags.join(' ') : 'defaults'}, ${x.durationS} s, ${k(x.transactions)} transactions: ` +
          `${x.ownPct === null ? 'n/a' : `${f2(x.ownPct)} % of a core`}${verdict(x.met, `<= ${TARGETS.ownCpuPct} %`)} ` +
          `(${x.byProcess.map((p) => `${p.role} ${f2(p.pct)} %`).join(', ')}); client and server ${x.workloadPct === null ? 'n/a' : `${f1(x.workloadPct)} %`}`,
        `    $ ${x.command}`,
      );
  }
  if (r.analysis !== null) {
    const a = r.analysis;
    out.push(
      '',
      `6. sockspike analyze (summary, report, pictures) of ${k(a.transactions)} transactions, ${k(a.samples)} samples, ` +
        `${a.kernelEvents === null ? 'no' : k(a.kernelEvents)} kernel events (${a.kernelEventsRecorded === null ? '?' : k(a.kernelEventsRecorded)} recorded one by one), ` +
        `${k(a.outliers)} outliers of two kinds: ${f2(a.s)} s wall (analysis ${f2(a.analysisS)} s, report ${f2(a.reportS)} s), peak RSS ${a.peakRssMiB} MiB` +
        verdict(a.met, `<= ${TARGETS.analysisS} s, <= ${TARGETS.analysisRssMiB} MiB`),
      `    $ ${a.command}`,
    );
  }
  if (r.startup !== null) {
    const s = r.startup;
    const ms = (v: number | null): string => (v === null ? 'n/a' : `${Math.round(v)} ms`);
    out.push(
      '',
      `7. start-up and wrap-up: --help ${f2(s.helpS)} s, scenarios ${f2(s.scenariosS)} s${verdict(s.met.help, `<= ${TARGETS.helpS} s`)}`,
      `    run --duration ${s.durationS}s: first transaction ${ms(s.firstTxnMs)} after the command${verdict(s.met.firstTxn, `<= ${TARGETS.firstTxnS} s`)}, ` +
        `report on disk ${ms(s.wrapUpMs)} after the last${verdict(s.met.wrapUp, `<= ${TARGETS.wrapUpS} s`)}, ${f1(s.totalS)} s in all${verdict(s.met.total, `<= ${TARGETS.npmStartS} s`)}`,
      `    kernel events attached ${ms(s.kernelEventsMs)} after the command; probe process ${s.probeCpuPct === null ? 'n/a' : `${f2(s.probeCpuPct)} % of a core`}`,
      `    $ ${s.command}`,
    );
  }
  out.push('', `done in ${f1(r.elapsedS)} s`);
  return out.join('\n');
}

export async function main(argv: string[]): Promise<void> {
  const o = parseArgs(argv);
  // Ctrl-C: the runs' own processes get the signal too (same process group); the namespaces are ours to delete
  for (const sig of ['SIGINT', 'SIGTERM'] as const) process.once(sig, () => void stopLiveRuns().then(() => process.exit(sig === 'SIGINT' ? 130 : 143)));
  const r = await runBench(o);
  if (o.json) process.stdout.write(JSON.stringify(r) + '\n');
  else process.stdout.write(benchText(r) + '\n');
}
