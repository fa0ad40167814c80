import { copyFileSync, existsSync, mkdirSync, readFileSync } from 'node:fs';
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
import { completeSyntheticManifest, syntheticProbeMeta, writeSyntheticSrv, writeSyntheticTxn, type SyntheticTxn } from '../fixtures/synthetic-records.ts';

// A synthetic run directory, for measuring the analysis (issue 4 "Speed")
// and for tests: the files a real `sockspike run` writes, in their real
// formats, with a known answer. Open loop at N / (duration - 2 s) per
// second; latencies lognormal around 400 us; every Nth transaction an
// outlier stuck ~1 s in connect (the first SYN retransmission after a
// listen-queue overflow), with ListenOverflows / ListenDrops in the probe
// sample covering its start and TCPSynRetrans in the one covering the
// retransmission; ports cycling 32768..60999; a few resets.

const HERE = dirname(fileURLToPath(import.meta.url));
const FIXTURE = join(HERE, '..', 'fixtures', 'runs', 'backlog1-rst');

export interface SyntheticOptions {
  transactions?: number;
  /** Span of the probe samples, s; the workload runs from 1 s to durationS - 1 s. */
  durationS?: number;
  intervalMs?: number;
  /** Every Nth transaction (i % N === N - 1) is a ~1 s connect outlier; 0: none. */
  outlierEvery?: number;
  /** Every Nth transaction (offset so as never to be an outlier) fails with ECONNRESET; 0: none. Default N / 10 (ten failures). */
  failureEvery?: number;
  seed?: number;
}

export interface SyntheticResult {
  dir: string;
  transactions: number;
  outliers: number;
  failures: number;
  serverRecords: number;
  sampleRows: number;
  columns: number;
  bytes: { transactions: number; server: number; samples: number };
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
    probeIntervalNs: intervalNs,
    seed,
  };
  const reproduce = `sockspike run --transactions ${N} --rate ${config.rate} --outlier 100ms`;
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
  const pending: Rec[] = [];
  let outliers = 0;
  let failures = 0;
  let lastEndNs = 0;
  const gauss = (): number => {
    const u = 1 - rnd();
    return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * rnd());
  };
  const lognormal = (medianUs: number, sigma: number): number => medianUs * Math.exp(sigma * gauss());

  for (let i = 0; i < N; i++) {
    const intendedNs = firstNs + i * stepNs;
    const lateUs = 2 + rnd() * 20;
    const total = lognormal(400, 0.25);
    const isOutlier = outlierEvery > 0 && i % outlierEvery === outlierEvery - 1;
    const isFailure = !isOutlier && failureEvery > 0 && i % failureEvery === Math.floor(failureEvery / 2);
    let connectUs = total * (0.25 + 0.05 * rnd());
    if (isOutlier) {
      connectUs += 1_000_000 + lognormal(300, 0.3); // SYN dropped, retransmitted after 1 s
      outliers++;
      outlierStarts.push(intendedNs + lateUs * 1e3);
    }
    const rest = total - total * 0.25;
    const ex1 = connectUs + rest * 0.4;
    const ex2 = connectUs + rest * 0.8;
    const endUs = connectUs + rest;
    const r: Rec = {
      intendedNs,
      lateUs,
      connectUs,
      ex: [isFailure ? NaN : ex1, isFailure ? NaN : ex2],
      accepted: true,
      endUs: isFailure ? connectUs + rest * 0.3 : endUs,
      port: PORT_LO + (i % PORT_SPAN),
      worker: i % 256,
      outcome: isFailure ? OUTCOME_ECONNRESET : OUTCOME_OK,
      retrans: isOutlier ? 1 : 0,
      endNs: 0,
    };
    if (isFailure) failures++;
    r.endNs = intendedNs + (lateUs + r.endUs) * 1e3;
    while (pending.length > 0 && pending[0].endNs <= r.endNs) {
      const p = pending.shift()!;
      writeSyntheticTxn(txn, L, p, PAYLOAD);
      writeSyntheticSrv(srv, p, PAYLOAD);
    }
    if (isOutlier) {
      pending.push(r);
      pending.sort((a, b) => a.endNs - b.endNs);
    } else {
      writeSyntheticTxn(txn, L, r, PAYLOAD);
      writeSyntheticSrv(srv, r, PAYLOAD);
    }
    if (r.endNs > lastEndNs) lastEndNs = r.endNs;
  }
  for (const p of pending) {
    writeSyntheticTxn(txn, L, p, PAYLOAD);
    writeSyntheticSrv(srv, p, PAYLOAD);
    if (p.endNs > lastEndNs) lastEndNs = p.endNs;
  }
  txn.close();
  srv.close();

  const sampleRows = Math.round((durationS * 1e9) / intervalNs);
  const probes = writeProbes(dir, m.t0Ns, intervalNs, sampleRows, N, firstNs, stepNs, outlierStarts, rnd);

  completeSyntheticManifest(m, { firstNs, lastEndNs, attempted: N, samples: sampleRows, why: 'synthetic run', overheadPct: 4 });
  m.notes = [`synthetic run written by bench/synthetic-run.ts (seed ${seed}): ${outliers} planted connect outliers of ~1 s, ${failures} resets`];
  writeJson(join(dir, FILES.manifest), m);
  const envSrc = join(FIXTURE, FILES.environment);
  if (existsSync(envSrc)) copyFileSync(envSrc, join(dir, FILES.environment));

  return {
    dir,
    transactions: N,
    outliers,
    failures,
    serverRecords: srv.count,
    sampleRows,
    columns: probes.columns,
    bytes: { transactions: 16 + N * L.size, server: 16 + srv.count * SRV.size, samples: probes.bytes },
  };
}

type Rec = SyntheticTxn & { endNs: number };

/** How a column's value is made up per row. */
const enum Gen {
  Zero, // a counter that does not move (rarely 1)
  PerTxn, // a counter proportional to the transactions in the interval
  CpuFraction,
  Gauge,
  Overflow, // ListenOverflows / ListenDrops: 1 in the row covering an outlier's start
  SynRetrans, // 1 in the row covering an outlier's retransmission (+1 s)
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
    else if (n === 'TcpExt.TCPSynRetrans' || n === 'Tcp.RetransSegs') gen[k] = Gen.SynRetrans;
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
  for (const s of outlierStarts) {
    const a = rowOf(s);
    const b = rowOf(s + 1e9);
    if (a >= 0 && a < rows) overflowAt[a]++;
    if (b >= 0 && b < rows) retransAt[b]++;
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
