import { copyFileSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { prng } from '../lib/prng.ts';
import { SRV, SRV_MAGIC, TXN_MAGIC, txnLayout } from '../lib/records.ts';
import { FILES, newManifest, writeJson } from '../lib/run-files.ts';
import { OUTCOME_OK, type RunConfig } from '../lib/types.ts';
import { RecordFile } from '../lib/record-file.ts';
import { defaultConfig } from '../harness/config.ts';
import { META_FILE, PROBES_DIR, SAMPLES_FILE, type ProbeColumn, type ProbeMeta } from '../probes/probe-files.ts';
import { SampleWriter } from '../probes/sample-writer.ts';
import { BUCKET_NS, BUDGETED, DEFAULT_BUDGET } from '../probes/kernel-events/script.ts';
import {
  FLAG_COUNT,
  FLAG_SERVER_SIDE,
  KERNEL_EVENTS_FILE,
  KERNEL_EVENTS_FORMAT,
  KERNEL_EVENTS_VERSION,
  kernelEventsBytes,
  kindCodeOf,
  type KernelEventsHeader,
  type KevRecord,
} from '../probes/kernel-events/events-file.ts';
import { TCP_STATES } from '../lib/tcp-states.ts';
import { completeSyntheticManifest, syntheticProbeMeta, writeSyntheticSrv, writeSyntheticTxn, type SyntheticTxn } from '../fixtures/synthetic-records.ts';

// A synthetic run directory, for measuring the analysis (issue 4 "Speed")
// and for tests: the files a real `sockspike run` writes, in their real
// formats, with a known answer. Open loop at N / (duration - 2 s) per
// second; latencies lognormal around 400 us; probe samples over the run's
// whole length; every Nth transaction an outlier stuck ~1 s in connect (the
// first SYN retransmission after a listen-queue overflow), with
// ListenOverflows / ListenDrops in the probe sample covering its start and
// TCPSynRetrans in the one covering the retransmission; ports cycling
// 32768..60999; a few ECONNRESET failures. Shaped like a real client-rst run
// for the bench (bench/analysis-speed.ts) with `exchangeOutlierEvery` (a
// second kind of outlier: ~200 ms in the first exchange, a data
// retransmission after the minimum RTO, with RetransSegs / TCPTimeouts at
// the retransmission) and `kernelEvents` (close client-rst, and
// events/kernel-events.bin as the tracer writes it, probes/kernel-events/
// script.ts: a reset sent by the client and received by the server at every
// transaction's end, counted per 100 ms, the first 2 of each per 100 ms also
// recorded one by one, and each outlier's retransmission recorded).

const HERE = dirname(fileURLToPath(import.meta.url));
const FIXTURE = join(HERE, '..', 'fixtures', 'runs', 'backlog1-rst');

export interface SyntheticOptions {
  transactions?: number;
  /** Span of the probe samples, s; the workload runs from 1 s to durationS - 1 s. */
  durationS?: number;
  intervalMs?: number;
  /** Every Nth transaction (i % N === N - 1) is a ~1 s connect outlier; 0: none. */
  outlierEvery?: number;
  /** Every Nth transaction (i % N === N / 2 - 1) is a ~200 ms exchange outlier (a data retransmission); 0 (default): none. */
  exchangeOutlierEvery?: number;
  /** A client-rst run with events/kernel-events.bin as the tracer writes it (default false: client-fin, no kernel events). */
  kernelEvents?: boolean;
  /** Every Nth transaction (offset so as never to be an outlier) fails with ECONNRESET; 0: none. Default N / 10 (ten failures). */
  failureEvery?: number;
  seed?: number;
}

export interface SyntheticResult {
  dir: string;
  transactions: number;
  outliers: number;
  /** Of the outliers: ~1 s in connect, ~200 ms in an exchange. */
  connectOutliers: number;
  exchangeOutliers: number;
  /** Kernel events seen (counted), and recorded one by one; 0 without the file. */
  kernelEvents: number;
  kernelEventsRecorded: number;
  failures: number;
  serverRecords: number;
  sampleRows: number;
  columns: number;
  bytes: { transactions: number; server: number; samples: number; kernelEvents: number };
}

const OUTCOME_ECONNRESET = 3;
const PORT_LO = 32768;
const PORT_SPAN = 60999 - 32768 + 1;
const EXCHANGES = 2;
const REQUEST_BYTES = 3000;
const RESPONSE_BYTES = 3000;
const PAYLOAD = { exchanges: EXCHANGES, requestBytes: REQUEST_BYTES, responseBytes: RESPONSE_BYTES };

/** Write a synthetic run into `dir` (created if need be). */
export function makeSyntheticRun(dir: string, opts: SyntheticOptions = {}): SyntheticResult {
  const N = opts.transactions ?? 1_000_000;
  const durationS = opts.durationS ?? 600;
  const intervalNs = (opts.intervalMs ?? 20) * 1e6;
  const outlierEvery = opts.outlierEvery ?? 1000;
  const rtoEvery = opts.exchangeOutlierEvery ?? 0;
  const failureEvery = opts.failureEvery ?? Math.max(2, Math.floor(N / 10));
  const seed = opts.seed ?? 1;
  const rnd = prng(seed);
  mkdirSync(join(dir, PROBES_DIR), { recursive: true });

  const firstNs = 1e9;
  const spanNs = Math.max(1e6, durationS * 1e9 - 2e9);
  const stepNs = spanNs / N;
  const rate = 1e9 / stepNs;

  const config: RunConfig = {
    ...defaultConfig(),
    port: 40000,
    transactions: N,
    durationNs: null,
    requestBytes: REQUEST_BYTES,
    responseBytes: RESPONSE_BYTES,
    exchanges: EXCHANGES,
    rate: Math.round(rate * 1000) / 1000,
    outlierUs: 100_000,
    // synthetic records have no start-up costs: no warm-up to keep out
    warmupNs: 0,
    close: opts.kernelEvents === true ? 'client-rst' : 'client-fin',
    probeIntervalNs: intervalNs,
    seed,
  };
  const reproduce = `sockspike run --transactions ${N} --rate ${config.rate}${opts.kernelEvents === true ? ' --close client-rst' : ''} --outlier 100ms`;
  const m = newManifest({
    argv: ['bin/sockspike.js', ...reproduce.split(' ').slice(1)],
    reproduce,
    config,
    files: { transactions: [FILES.transactions], server: [FILES.server] },
    t0: 1_000_000_000_000n,
  });

  // Transactions, in the order they ended: an outlier ends ~1 s after its
  // start, so it waits in `pending` until the normal records pass its end.
  const L = txnLayout(EXCHANGES);
  const txn = new RecordFile(join(dir, FILES.transactions), TXN_MAGIC, L.size, EXCHANGES);
  const srv = new RecordFile(join(dir, FILES.server), SRV_MAGIC, SRV.size, 0);
  const outlierStarts: number[] = [];
  /** Data retransmissions of the exchange outliers, ns since t0. */
  const rtoAt: number[] = [];
  const kev = opts.kernelEvents !== true ? null : new SyntheticKernelEvents(config.port, Number(m.t0Ns));
  const pending: Rec[] = [];
  let outliers = 0;
  let exchangeOutliers = 0;
  let failures = 0;
  let lastEndNs = 0;
  const gauss = (): number => {
    const u = 1 - rnd();
    return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * rnd());
  };
  const lognormal = (medianUs: number, sigma: number): number => medianUs * Math.exp(sigma * gauss());
  // in the order they ended, as the client records them; a client-rst connection ends with a reset, which
  // the tracer records one by one only within its budget per 100 ms, in time order
  const emit = (r: Rec): void => {
    writeSyntheticTxn(txn, L, r, PAYLOAD);
    writeSyntheticSrv(srv, r, PAYLOAD);
    kev?.reset(r.endNs, r.port);
  };

  for (let i = 0; i < N; i++) {
    const intendedNs = firstNs + i * stepNs;
    const lateUs = 2 + rnd() * 20;
    const total = lognormal(400, 0.25);
    const isOutlier = outlierEvery > 0 && i % outlierEvery === outlierEvery - 1;
    const isRto = rtoEvery > 1 && i % rtoEvery === Math.floor(rtoEvery / 2) - 1;
    const isFailure = !isOutlier && !isRto && failureEvery > 0 && i % failureEvery === Math.floor(failureEvery / 2);
    const startNs = intendedNs + lateUs * 1e3;
    const port = PORT_LO + (i % PORT_SPAN);
    let connectUs = total * (0.25 + 0.05 * rnd());
    if (isOutlier) {
      connectUs += 1_000_000 + lognormal(300, 0.3); // SYN dropped, retransmitted after 1 s
      outliers++;
      outlierStarts.push(startNs);
      kev?.retransmit(startNs + 1e9, port, SYN_SENT);
    }
    const rest = total - total * 0.25;
    // a request segment lost: resent after the minimum RTO (200 ms)
    const stall = isRto ? 200_000 + lognormal(300, 0.3) : 0;
    if (isRto) {
      outliers++;
      exchangeOutliers++;
      const at = startNs + (connectUs + rest * 0.1) * 1e3 + 200e6;
      rtoAt.push(at);
      kev?.retransmit(at, port, ESTABLISHED);
    }
    const ex1 = connectUs + rest * 0.4 + stall;
    const ex2 = connectUs + rest * 0.8 + stall;
    const endUs = connectUs + rest + stall;
    const r: Rec = {
      intendedNs,
      lateUs,
      connectUs,
      ex: [isFailure ? NaN : ex1, isFailure ? NaN : ex2],
      accepted: true,
      endUs: isFailure ? connectUs + rest * 0.3 : endUs,
      port,
      worker: i % 256,
      outcome: isFailure ? OUTCOME_ECONNRESET : OUTCOME_OK,
      retrans: isOutlier ? 1 : 0,
      endNs: 0,
    };
    if (isFailure) failures++;
    r.endNs = intendedNs + (lateUs + r.endUs) * 1e3;
    while (pending.length > 0 && pending[0].endNs <= r.endNs) {
      const p = pending.shift()!;
      emit(p);
    }
    if (isOutlier) {
      pending.push(r);
      pending.sort((a, b) => a.endNs - b.endNs);
    } else {
      emit(r);
    }
    if (r.endNs > lastEndNs) lastEndNs = r.endNs;
  }
  for (const p of pending) {
    emit(p);
    if (p.endNs > lastEndNs) lastEndNs = p.endNs;
  }
  txn.close();
  srv.close();

  const sampleRows = Math.round((durationS * 1e9) / intervalNs);
  const probes = writeProbes(dir, m.t0Ns, intervalNs, sampleRows, N, firstNs, stepNs, outlierStarts, rtoAt, rnd);
  const kevBytes = kev === null ? 0 : kev.write(dir, m.t0Ns, lastEndNs);

  completeSyntheticManifest(m, { firstNs, lastEndNs, attempted: N, samples: sampleRows, why: 'synthetic run', overheadPct: 4 });
  if (kev !== null && m.probes !== undefined) {
    m.probes.kernelEvents = kev.total;
    m.probes.kernelEventsByKind = kev.byKind();
    m.probes.kernelEventsRecorded = kev.recorded;
    m.probes.skipped = m.probes.skipped.filter((k) => !/kernel events/.test(k.probe));
  }
  m.notes = [
    `synthetic run written by bench/synthetic-run.ts (seed ${seed}): ${outliers - exchangeOutliers} planted connect outliers of ~1 s, ` +
      `${exchangeOutliers} exchange outliers of ~200 ms, ${failures} resets`,
  ];
  writeJson(join(dir, FILES.manifest), m);
  const envSrc = join(FIXTURE, FILES.environment);
  if (existsSync(envSrc)) copyFileSync(envSrc, join(dir, FILES.environment));

  return {
    dir,
    transactions: N,
    outliers,
    connectOutliers: outliers - exchangeOutliers,
    exchangeOutliers,
    kernelEvents: kev?.total ?? 0,
    kernelEventsRecorded: kev?.recorded ?? 0,
    failures,
    serverRecords: srv.count,
    sampleRows,
    columns: probes.columns,
    bytes: { transactions: 16 + N * L.size, server: 16 + srv.count * SRV.size, samples: probes.bytes, kernelEvents: kevBytes },
  };
}

type Rec = SyntheticTxn & { endNs: number };

const SYN_SENT = TCP_STATES.indexOf('SYN_SENT');
const ESTABLISHED = TCP_STATES.indexOf('ESTABLISHED');
const CLOSE = TCP_STATES.indexOf('CLOSE');
const K_RETRANSMIT = kindCodeOf('retransmit');
const K_SEND_RESET = kindCodeOf('send-reset');
const K_RECEIVE_RESET = kindCodeOf('receive-reset');

/**
 * Kernel events as the tracer writes them for a client-rst run: resets
 * counted per 100 ms bucket (the first BUDGET of each key in a bucket also
 * recorded one by one), retransmissions recorded. Times are ns since t0; the
 * buckets are aligned on the absolute clock, as bpftrace's are.
 */
class SyntheticKernelEvents {
  private readonly records: KevRecord[] = [];
  /** Per bucket (absolute index): client resets sent, server resets received. */
  private readonly counts = new Map<number, number>();
  recorded = 0;
  total = 0;
  private retransmits = 0;
  constructor(
    private readonly serverPort: number,
    /** The run's t0, CLOCK_MONOTONIC ns. */
    private readonly t0: number,
  ) {}

  retransmit(tNs: number, port: number, state: number): void {
    this.records.push({ tNs, sport: port, dport: this.serverPort, kind: K_RETRANSMIT, flags: 0, a: state, b: 0, reason: -1, count: 1 });
    this.recorded++;
    this.retransmits++;
    this.total++;
  }

  reset(tNs: number, port: number): void {
    const b = Math.floor((this.t0 + tNs) / BUCKET_NS);
    const n = (this.counts.get(b) ?? 0) + 1;
    this.counts.set(b, n);
    this.total += 2;
    if (n > DEFAULT_BUDGET) return;
    this.records.push({ tNs, sport: port, dport: this.serverPort, kind: K_SEND_RESET, flags: 0, a: CLOSE, b: 0, reason: -1, count: 1 });
    this.records.push({
      tNs: tNs + 20_000,
      sport: this.serverPort,
      dport: port,
      kind: K_RECEIVE_RESET,
      flags: FLAG_SERVER_SIDE,
      a: 0,
      b: 0,
      reason: -1,
      count: 1,
    });
    this.recorded += 2;
  }

  byKind(): Record<string, number> {
    const resets = (this.total - this.retransmits) / 2;
    return { 'send-reset': resets, 'receive-reset': resets, ...(this.retransmits > 0 ? { retransmit: this.retransmits } : {}) };
  }

  write(dir: string, t0Ns: string, endNs: number): number {
    const out = [...this.records];
    for (const [b, n] of this.counts) {
      const tNs = b * BUCKET_NS - this.t0;
      out.push({ tNs, sport: 0, dport: 0, kind: K_SEND_RESET, flags: FLAG_COUNT, a: CLOSE, b: 0, reason: -1, count: n });
      out.push({ tNs, sport: 0, dport: 0, kind: K_RECEIVE_RESET, flags: FLAG_COUNT | FLAG_SERVER_SIDE, a: 0, b: 0, reason: -1, count: n });
    }
    const header: KernelEventsHeader = {
      format: KERNEL_EVENTS_FORMAT,
      version: KERNEL_EVENTS_VERSION,
      t0Ns,
      ports: [this.serverPort],
      netns: null,
      bpftrace: 'synthetic',
      kernel: 'synthetic',
      states: 'off',
      probes: ['tcp:tcp_retransmit_skb', 'tcp:tcp_send_reset', 'tcp:tcp_receive_reset'],
      skipped: [],
      startupMs: 0,
      attachedNs: 0,
      notes: ['synthetic kernel events (bench/synthetic-run.ts)'],
      bucketNs: BUCKET_NS,
      budget: DEFAULT_BUDGET,
      budgeted: [...BUDGETED],
      reasons: {},
    };
    mkdirSync(join(dir, 'events'), { recursive: true });
    const bytes = kernelEventsBytes(header, out, endNs);
    writeFileSync(join(dir, KERNEL_EVENTS_FILE), bytes);
    return bytes.length;
  }
}

/** How a column's value is made up per row. */
const enum Gen {
  Zero, // a counter that does not move (rarely 1)
  PerTxn, // a counter proportional to the transactions in the interval
  CpuFraction,
  Gauge,
  Overflow, // ListenOverflows / ListenDrops: 1 in the row covering an outlier's start
  SynRetrans, // 1 in the row covering an outlier's retransmission (+1 s)
  Rto, // 1 in the row covering an exchange outlier's retransmission (+200 ms)
  AnyRetrans, // both
}

function fixtureColumns(): ProbeColumn[] {
  const meta = JSON.parse(readFileSync(join(FIXTURE, PROBES_DIR, META_FILE), 'utf8')) as ProbeMeta;
  return meta.columns.map((c) => ({ ...c, fromRow: 0, toRow: null }));
}

/** Per-transaction rate of the counters that move with the load (segments, opens, bytes, ...). */
function perTxn(name: string): number {
  if (/^(Tcp\.(ActiveOpens|PassiveOpens)|TcpExt\.TW)$/.test(name)) return 1;
  if (/^Tcp\.(InSegs|OutSegs)$/.test(name)) return 10;
  if (/^Ip\.(InReceives|InDelivers|OutRequests)$/.test(name)) return 20;
  if (/^IpExt\.(InOctets|OutOctets)$/.test(name)) return 12_600;
  if (/^TcpExt\.(TCPHPHits|TCPPureAcks|TCPHPAcks|DelayedACKs|TCPOrigDataSent|TCPDelivered)$/.test(name)) return 2;
  if (/^stat\.(ctxt|intr)$/.test(name)) return 12;
  if (/^softirq\.(NET_RX|NET_TX|TIMER|SCHED)(\.cpu\d+)?$/.test(name)) return name.includes('.cpu') ? 5 : 10;
  if (/^proc\.\w+\.(voluntary_ctxt_switches|timeslices)$/.test(name)) return 0.5;
  if (/^proc\.\w+\.(run_ns)$/.test(name)) return 150_000;
  if (/^proc\.\w+\.(wait_ns)$/.test(name)) return 5_000;
  if (/^pressure\.cpu\.some$/.test(name)) return 20;
  if (/^vmstat\.pgfault$/.test(name)) return 3;
  return 0;
}

function writeProbes(
  dir: string,
  t0Ns: string,
  intervalNs: number,
  rows: number,
  N: number,
  firstNs: number,
  stepNs: number,
  outlierStarts: number[],
  rtoAt: number[],
  rnd: () => number,
): { columns: number; bytes: number } {
  const columns = fixtureColumns();
  const C = columns.length;
  const gen = new Uint8Array(C);
  const scale = new Float64Array(C);
  for (let k = 0; k < C; k++) {
    const c = columns[k];
    const n = c.name;
    if (n === 'TcpExt.ListenOverflows' || n === 'TcpExt.ListenDrops') gen[k] = Gen.Overflow;
    else if (n === 'TcpExt.TCPSynRetrans') gen[k] = Gen.SynRetrans;
    else if (n === 'Tcp.RetransSegs') gen[k] = Gen.AnyRetrans;
    else if (n === 'TcpExt.TCPTimeouts') gen[k] = Gen.Rto;
    else if (c.kind === 'fraction') {
      gen[k] = Gen.CpuFraction;
      scale[k] = /\.idle$/.test(n) ? 0.5 : /\.(user|system)$/.test(n) ? 0.2 : /\.softirq$/.test(n) ? 0.05 : /\.(utime|stime)$/.test(n) ? 0.15 : 0;
    } else if (c.kind === 'gauge') {
      gen[k] = Gen.Gauge;
      scale[k] =
        n === 'sockstat.TCP.tw'
          ? 28_000
          : n === 'sockstat.TCP.inuse' || n === 'sockstat.TCP.alloc'
            ? 12
            : n === 'sockstat.sockets.used'
              ? 180
              : n === 'Tcp.CurrEstab'
                ? 2
                : n === 'listen.limit'
                  ? 128
                  : n === 'vmstat.nr_free_pages'
                    ? 400_000
                    : n === 'stat.procs_running'
                      ? 2
                      : n === 'probe.read_ns'
                        ? 500_000
                        : n === 'probe.late_ns'
                          ? 150_000
                          : n === 'sockstat.TCP.mem'
                            ? 3
                            : 0;
    } else {
      scale[k] = perTxn(n);
      gen[k] = scale[k] > 0 ? Gen.PerTxn : Gen.Zero;
    }
  }

  // Outlier starts and their retransmissions, per row (row r covers (t[r] - dt, t[r]]).
  const baselineNs = 0.5e9 - intervalNs;
  const rowOf = (ns: number): number => Math.ceil((ns - 0.5e9) / intervalNs);
  const overflowAt = new Uint16Array(rows);
  const retransAt = new Uint16Array(rows);
  const rtoRow = new Uint16Array(rows);
  for (const s of outlierStarts) {
    const a = rowOf(s);
    const b = rowOf(s + 1e9);
    if (a >= 0 && a < rows) overflowAt[a]++;
    if (b >= 0 && b < rows) retransAt[b]++;
  }
  for (const t of rtoAt) {
    const r = rowOf(t);
    if (r >= 0 && r < rows) rtoRow[r]++;
  }

  const w = new SampleWriter(join(dir, PROBES_DIR, SAMPLES_FILE));
  const lastNs = firstNs + N * stepNs;
  for (let r = 0; r < rows; r++) {
    const t = 0.5e9 + r * intervalNs + rnd() * 200_000;
    const dt = r === 0 ? t - baselineNs : intervalNs + (rnd() - 0.5) * 200_000;
    // Transactions starting in this row's interval.
    const from = t - dt;
    const txns = t <= firstNs || from >= lastNs ? 0 : Math.max(0, (Math.min(t, lastNs) - Math.max(from, firstNs)) / stepNs);
    const load = txns / (intervalNs / stepNs); // 0..1
    w.beginRow(t, dt, C);
    for (let k = 0; k < C; k++) {
      let v = 0;
      switch (gen[k]) {
        case Gen.Zero:
          v = rnd() < 0.002 ? 1 : 0;
          break;
        case Gen.PerTxn:
          v = Math.round(scale[k] * txns * (0.9 + 0.2 * rnd()));
          break;
        case Gen.CpuFraction:
          v = scale[k] === 0 ? 0 : Math.round(scale[k] * (columns[k].name.endsWith('.idle') ? 2 - load : load) * (0.5 + rnd()) * 4) / 4;
          break;
        case Gen.Gauge:
          v = scale[k] === 0 ? 0 : Math.round(scale[k] * (0.9 + 0.2 * rnd()));
          break;
        case Gen.Overflow:
          v = overflowAt[r];
          break;
        case Gen.SynRetrans:
          v = retransAt[r];
          break;
        case Gen.Rto:
          v = rtoRow[r];
          break;
        case Gen.AnyRetrans:
          v = retransAt[r] + rtoRow[r];
          break;
      }
      if (r === 0 && columns[k].kind === 'counter') v = NaN;
      if (v !== 0) w.entry(k, v);
    }
    w.endRow();
    if ((r + 1) % 50 === 0) w.flush();
  }
  w.close();

  const meta = syntheticProbeMeta({
    t0Ns,
    intervalNs,
    baselineNs,
    columns,
    rows,
    bytes: w.bytes,
    port: 40000,
    note: 'synthetic samples (bench/synthetic-run.ts)',
    constants: { 'Ip.Forwarding': 2, 'Ip.DefaultTTL': 64, 'Tcp.RtoAlgorithm': 1, 'Tcp.RtoMin': 200, 'Tcp.RtoMax': 120000, 'Tcp.MaxConn': -1 },
  });
  writeJson(join(dir, PROBES_DIR, META_FILE), meta);
  return { columns: C, bytes: w.bytes };
}

// `npx tsx bench/synthetic-run.ts DIR [transactions] [durationS]`
if (process.argv[1] !== undefined && fileURLToPath(import.meta.url) === process.argv[1]) {
  const dir = process.argv[2];
  if (dir === undefined) {
    console.error('usage: tsx bench/synthetic-run.ts DIR [transactions] [durationS]');
    process.exit(2);
  }
  const t = performance.now();
  const r = makeSyntheticRun(dir, {
    transactions: process.argv[3] === undefined ? undefined : Number(process.argv[3]),
    durationS: process.argv[4] === undefined ? undefined : Number(process.argv[4]),
  });
  console.log(`${JSON.stringify(r)} in ${((performance.now() - t) / 1000).toFixed(1)} s`);
}
