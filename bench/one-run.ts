// One measured run of the throughput benchmark: a server (the native
// reference, sockspike's built-in on Node, or the native engine's) and a
// client (the native reference, or sockspike's built-in client process on
// Node or on the engine, driven over IPC exactly as `sockspike run` drives
// it, pointed at the server's port). Runs inside the network namespace the
// parent made for it; prints one JSON line (RunFigures).
//
//   node --import tsx bench/one-run.ts '{"client":"sockspike","server":"native","close":"client-rst","concurrency":16,"durationS":3}'
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createInterface } from 'node:readline';
import { monoNs } from '../lib/clock.ts';
import { HEADER_BYTES, txnLayout } from '../lib/records.ts';
import { OUTCOME_OK, OUTCOMES } from '../lib/types.ts';
import { DEFAULTS, resolveConfig } from '../harness/config.ts';
import { endChild, startWorkloadChild, type Child } from '../harness/children.ts';
import type { DoneMessage, FromChild, ListeningMessage } from '../harness/messages.ts';
import { buildNativeRef } from './native-ref.ts';

/** native: bench/native/ref.c; sockspike: the built-in client/server on Node; engine: on the native engine (native/engine/). */
export type Side = 'native' | 'sockspike' | 'engine';

export interface RunSpec {
  client: Side;
  server: Side;
  close: 'client-fin' | 'client-rst' | 'server-fin' | 'server-rst';
  concurrency: number;
  durationS: number;
  requestBytes?: number;
  responseBytes?: number;
  exchanges?: number;
  /** sockspike client: its load split over this many client processes (default 1). */
  clientProcesses?: number;
}

export interface RunFigures {
  attempted: number;
  ok: number;
  failed: number;
  /** First start to last end, s. */
  elapsedS: number;
  tps: number;
  /** utime + stime of the client process over the load (/proc/PID/stat). */
  clientCpuS: number;
  serverCpuS: number;
  p50Us: number;
  p99Us: number;
  errors: Record<string, number>;
}

const HZ = 100;
/** utime + stime of a process in seconds, from /proc/PID/stat (USER_HZ ticks). */
export function cpuSeconds(pid: number): number {
  const text = readFileSync(`/proc/${pid}/stat`, 'latin1');
  const f = text.slice(text.lastIndexOf(')') + 2).split(' ');
  return (Number(f[11]) + Number(f[12])) / HZ;
}

/** CPU seconds of a process once it has stopped using CPU (two equal readings 100 ms apart). */
async function settledCpu(pid: number): Promise<number> {
  const until = Date.now() + 15_000;
  let last = cpuSeconds(pid);
  for (;;) {
    await new Promise((r) => setTimeout(r, 100));
    const now = cpuSeconds(pid);
    if (now === last || Date.now() > until) return now;
    last = now;
  }
}

interface Server {
  pid: number;
  port: number;
  stop(): Promise<void>;
}

const once = <T>(p: Promise<T>, ms: number, what: string): Promise<T> =>
  Promise.race([p, new Promise<T>((_, rej) => setTimeout(() => rej(new Error(`${what}: no answer within ${ms} ms`)), ms).unref())]);

async function nativeServer(spec: RunSpec, ref: string): Promise<Server> {
  const p = spawn(ref, ['server', ...protoArgs(spec), '-b', '4096'], { stdio: ['ignore', 'pipe', 'inherit'] });
  const port = await once(
    new Promise<number>((resolve, reject) => {
      createInterface({ input: p.stdout! }).once('line', (l) => resolve(Number(l.split(' ')[1])));
      p.once('exit', (c) => reject(new Error(`native server exited (${c})`)));
    }),
    10_000,
    'native server',
  );
  return { pid: p.pid!, port, stop: () => stopProc(p) };
}

async function stopProc(p: ChildProcess): Promise<void> {
  if (p.exitCode !== null || p.signalCode !== null) return;
  const gone = new Promise<void>((r) => p.once('exit', () => r()));
  p.kill('SIGTERM');
  const t = setTimeout(() => p.kill('SIGKILL'), 5000);
  await gone;
  clearTimeout(t);
}

function protoArgs(s: RunSpec): string[] {
  return ['-q', String(s.requestBytes ?? 3000), '-r', String(s.responseBytes ?? 3000), '-e', String(s.exchanges ?? 2), '-m', s.close];
}

function configFor(spec: RunSpec, port: number, engine: Side) {
  return resolveConfig({
    engine: engine === 'engine' ? 'native' : 'node',
    ...DEFAULTS,
    concurrency: String(spec.concurrency),
    duration: `${spec.durationS}s`,
    close: spec.close,
    requestBytes: String(spec.requestBytes ?? 3000),
    responseBytes: String(spec.responseBytes ?? 3000),
    exchanges: String(spec.exchanges ?? 2),
    backlog: '4096',
    port: port === 0 ? undefined : String(port),
  });
}

async function builtinServer(spec: RunSpec, dir: string, t0: bigint): Promise<Server> {
  let listening: ListeningMessage | null = null;
  let wake = (): void => {};
  const cfg = configFor(spec, 0, spec.server);
  const c = startWorkloadChild('server', 'server', cfg.engine ?? 'node', join(dir, 'server.log'), (m: FromChild) => {
    if (m.type === 'listening') listening = m;
    wake();
  });
  c.send({ type: 'start', config: cfg, t0: t0.toString(), runDir: dir, file: 'server.bin', progress: false });
  await once(new Promise<void>((r) => (wake = r)), 20_000, 'built-in server');
  const l = listening as ListeningMessage | null;
  if (l === null) throw new Error('the built-in server did not listen');
  return {
    pid: c.proc.pid!,
    port: l.port,
    stop: async () => {
      c.send({ type: 'stop', reason: 'done' });
      await endChild(c, 5000);
    },
  };
}

async function nativeClient(spec: RunSpec, ref: string, port: number): Promise<Omit<RunFigures, 'serverCpuS'>> {
  const p = spawn(ref, ['client', '-p', String(port), ...protoArgs(spec), '-c', String(spec.concurrency), '-d', String(spec.durationS)], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  let out = '';
  p.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  const kill = async (): Promise<void> => void p.kill('SIGKILL');
  stops.add(kill);
  const code = await new Promise<number | null>((r) => p.once('exit', (c) => r(c)));
  stops.delete(kill);
  if (code !== 0) throw new Error(`native client exited ${code}`);
  const j = JSON.parse(out) as {
    attempted: number;
    ok: number;
    failed: number;
    elapsedS: number;
    tps: number;
    cpuS: number;
    p50Us: number;
    p99Us: number;
    errors: Record<string, number>;
  };
  return {
    attempted: j.attempted,
    ok: j.ok,
    failed: j.failed,
    elapsedS: j.elapsedS,
    tps: j.tps,
    clientCpuS: j.cpuS,
    p50Us: j.p50Us,
    p99Us: j.p99Us,
    errors: j.errors,
  };
}

async function builtinClient(spec: RunSpec, dir: string, t0: bigint, port: number): Promise<Omit<RunFigures, 'serverCpuS'>> {
  // K client processes share the load as `sockspike run --client-processes K` splits it (harness/workload/client-share.ts)
  const k = Math.max(1, Math.min(spec.clientProcesses ?? 1, spec.concurrency));
  const parts = await Promise.all(Array.from({ length: k }, (_, i) => oneClient(spec, dir, t0, port, i, k)));
  const lat = latencies(
    parts.map((p) => join(dir, p.file)),
    spec.exchanges ?? 2,
  );
  const first = Math.min(...parts.map((p) => p.done.firstStartNs));
  const last = Math.max(...parts.map((p) => p.done.lastEndNs));
  const elapsedS = (last - first) / 1e9;
  const sum = (f: (p: (typeof parts)[number]) => number): number => parts.reduce((a, p) => a + f(p), 0);
  const ok = sum((p) => p.done.ok);
  return {
    attempted: sum((p) => p.done.attempted),
    ok,
    failed: sum((p) => p.done.failed + p.done.timedOut),
    elapsedS,
    tps: ok / elapsedS,
    clientCpuS: sum((p) => p.cpuS),
    p50Us: lat.p50,
    p99Us: lat.p99,
    errors: lat.errors,
  };
}

async function oneClient(
  spec: RunSpec,
  dir: string,
  t0: bigint,
  port: number,
  i: number,
  k: number,
): Promise<{ done: DoneMessage; cpuS: number; file: string }> {
  let done: DoneMessage | null = null;
  let cpuEnd = NaN;
  let client: Child | null = null;
  const file = i === 0 ? 'transactions.bin' : `transactions-${i}.bin`;
  const config = { ...configFor(spec, port, spec.client), clientProcesses: k };
  const c = (client = startWorkloadChild('client', 'client', config.engine ?? 'node', join(dir, `client-${i}.log`), (m: FromChild) => {
    if (m.type === 'done') {
      done = m;
      try {
        cpuEnd = cpuSeconds(client!.proc.pid!);
      } catch (err) {
        // the engine exits right behind its done message: then its own account of its CPU
        if (m.cpuS === undefined) throw err;
        cpuEnd = m.cpuS;
      }
    }
  }));
  const pid = c.proc.pid!;
  // start-up (node + tsx loading the client) is left out, as it is for the
  // native client: the load starts once the loaded client sits idle
  const cpu0 = await settledCpu(pid);
  c.send({
    type: 'start',
    config,
    t0: t0.toString(),
    runDir: dir,
    file,
    progress: false,
    part: { index: i, of: k },
  });
  const exit = await once(c.exited, spec.durationS * 1000 + 30_000, `sockspike client (${spec.client})`);
  const d = done as DoneMessage | null;
  if (d === null) throw new Error(`sockspike client exited without finishing (${exit.code ?? exit.signal}); see ${join(dir, `client-${i}.log`)}`);
  return { done: d, cpuS: cpuEnd - cpu0, file };
}

/** Latency percentiles of the ok transactions and failures by outcome, from transactions.bin. */
function latencies(files: string[], exchanges: number): { p50: number; p99: number; errors: Record<string, number> } {
  const L = txnLayout(exchanges);
  const bufs = files.map((f) => readFileSync(f));
  const lat = new Float64Array(bufs.reduce((a, b) => a + Math.floor((b.length - HEADER_BYTES) / L.size), 0));
  const errors: Record<string, number> = {};
  let k = 0;
  for (const buf of bufs) {
    const n = Math.floor((buf.length - HEADER_BYTES) / L.size);
    const v = new DataView(buf.buffer, buf.byteOffset, buf.length);
    for (let i = 0; i < n; i++) {
      const at = HEADER_BYTES + i * L.size;
      const o = v.getUint8(at + L.outcome);
      if (o === OUTCOME_OK) lat[k++] = v.getFloat32(at + L.lateUs, true) + v.getFloat32(at + L.endUs, true);
      else errors[OUTCOMES[o] ?? `outcome-${o}`] = (errors[OUTCOMES[o] ?? `outcome-${o}`] ?? 0) + 1;
    }
  }
  const s = lat.subarray(0, k).sort();
  const pct = (p: number): number => (k === 0 ? 0 : s[Math.min(k - 1, Math.floor((p / 100) * k))]);
  return { p50: pct(50), p99: pct(99), errors };
}

/** What a signal must stop: the server and client processes of the run in progress. */
const stops = new Set<() => Promise<void>>();

export async function oneRun(spec: RunSpec): Promise<RunFigures> {
  const ref = buildNativeRef();
  const dir = mkdtempSync(join(tmpdir(), 'sockspike-bench-run-'));
  const t0 = monoNs();
  let server: Server | null = null;
  try {
    server = spec.server === 'native' ? await nativeServer(spec, ref) : await builtinServer(spec, dir, t0);
    stops.add(server.stop);
    const s0 = cpuSeconds(server.pid);
    const c = spec.client === 'native' ? await nativeClient(spec, ref, server.port) : await builtinClient(spec, dir, t0, server.port);
    const serverCpuS = cpuSeconds(server.pid) - s0;
    return { ...c, serverCpuS };
  } finally {
    if (server !== null) stops.delete(server.stop);
    await server?.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

if (process.argv[1] !== undefined && fileURLToPath(import.meta.url) === resolve(process.argv[1])) {
  const spec = JSON.parse(process.argv[2]) as RunSpec;
  // stopped: end the server (a sockspike client leaves when this process does: its IPC channel closes)
  for (const sig of ['SIGINT', 'SIGTERM'] as const)
    process.once(sig, () => void Promise.all([...stops].map((s) => s())).then(() => process.exit(sig === 'SIGINT' ? 130 : 143)));
  oneRun(spec).then(
    (r) => {
      process.stdout.write(JSON.stringify(r) + '\n');
      process.exit(0);
    },
    (e: Error) => {
      process.stderr.write(`one-run: ${e.message}\n`);
      process.exit(1);
    },
  );
}
