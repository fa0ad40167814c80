import test from 'ava';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { analyzeRun } from '../analysis/analyze-run.ts';
import { CATALOGUE, findCauses, type CauseInput } from '../analysis/causes/index.ts';
import { buildCauseInput } from '../analysis/causes/input.ts';
import { selfCheck } from '../analysis/causes/harness-check.ts';
import { allocTxnColumns, readManifest, readTransactions } from '../analysis/read-run.ts';
import { totalUs } from '../analysis/summarize.ts';
import { writeReport } from '../reports/run-report.ts';
import type { ProbeData, StallMonitorData } from '../probes/read.ts';
import type { RunConfig, Summary } from '../lib/types.ts';
import { CONFIG, causeInput } from './helpers/cause-input.ts';
import { copyFixture } from './helpers/fixture-copy.ts';

// The cause catalogue: on the recorded backlog-1 run (known answer:
// accept-queue overflow), on a clean threshold, and per cause on constructed
// inputs.

const input = causeInput;

test('the catalogue has every id of the issue, once, each with a title and the evidence it needs', (t) => {
  const ids = CATALOGUE.map((m) => m.id);
  t.deepEqual([...ids].sort(), [
    'abortive-close-reset',
    'accept-queue-overflow',
    'cpu-saturation',
    'cpu-steal',
    'data-retransmit',
    'harness-cpu',
    'harness-stall',
    'memory-reclaim',
    'nagle-delayed-ack',
    'port-exhaustion',
    'server-processing',
    'softirq-saturation',
    'syn-loss',
  ]);
  for (const m of CATALOGUE) t.true(m.title.length > 0 && m.needs.length > 0, m.id);
});

test('backlog-1 run: accept-queue-overflow first, with the listen-overflow evidence, in summary.json and the report verdict', (t) => {
  const dir = copyFixture(t);
  const s = analyzeRun(dir, { outlierUs: 100_000 });
  const top = s.causes?.[0];
  t.is(top?.id, 'accept-queue-overflow', JSON.stringify(s.causes));
  t.true(top!.confidence >= 0.6, String(top!.confidence));
  t.true(
    top!.evidence.some((e) => /ListenOverflows/.test(e)),
    top!.evidence.join('\n'),
  );
  t.true(top!.tryNext.some((e) => /sockspike run .*--backlog \d+/.test(e)));
  t.is(s.selfCheck?.stalled, 0);
  const saved = JSON.parse(readFileSync(join(dir, 'summary.json'), 'utf8')) as Summary;
  t.is(saved.causes?.[0]?.id, 'accept-queue-overflow');
  const md = writeReport(dir);
  const verdict = md.split('## Outcomes')[0];
  t.regex(verdict, /Most likely cause: Listen \(accept\) queue overflow.*(very likely|likely)/);
  t.regex(md, /## Likely cause/);
  t.regex(md, /What to try:/);
  t.regex(md, /Harness self-check: none of the 6 outliers/);
});

test('kernel events (read synchronously) join SYN retransmits to the outlier transactions as evidence', (t) => {
  const dir = copyFixture(t);
  const m = readManifest(dir);
  const c = readTransactions(dir, m);
  const lines = [JSON.stringify({ format: 'sockspike-kernel-events', version: 1, t0Ns: '0', ports: [m.config.port] })];
  let n = 0;
  for (let i = 0; i < c.n; i++) {
    if (totalUs(c, i) <= 100_000) continue;
    n++;
    const start = c.intendedNs[i] + c.lateUs[i] * 1000;
    lines.push(JSON.stringify({ tNs: start + 1e9, kind: 'retransmit', family: 4, sport: c.localPort[i], dport: m.config.port, state: 'SYN_SENT' }));
  }
  lines.push(JSON.stringify({ end: true, events: n }));
  mkdirSync(join(dir, 'events'), { recursive: true });
  writeFileSync(join(dir, 'events', 'kernel-events.ndjson'), lines.join('\n') + '\n');
  const s = analyzeRun(dir, { outlierUs: 100_000 });
  t.is(s.causes?.[0]?.id, 'accept-queue-overflow');
  t.true(
    s.causes![0].evidence.some((e) => e.includes(`kernel events: ${n} of ${n} outlier connections retransmitted their SYN`)),
    s.causes![0].evidence.join('\n'),
  );
});

test('kernel events attached late: only the outliers that began after bpftrace attached are counted', (t) => {
  const dir = copyFixture(t);
  const m = readManifest(dir);
  const c = readTransactions(dir, m);
  const outliers = [...Array(c.n).keys()].filter((i) => totalUs(c, i) > 100_000).sort((a, b) => c.intendedNs[a] - c.intendedNs[b]);
  t.true(outliers.length >= 4, `${outliers.length} outliers in the fixture`);
  // attached between the second and third outlier: the first two cannot show events
  const attachedNs = Math.round((c.intendedNs[outliers[1]] + c.intendedNs[outliers[2]]) / 2);
  const lines = [JSON.stringify({ format: 'sockspike-kernel-events', version: 1, t0Ns: '0', ports: [m.config.port], attachedNs })];
  const after = outliers.slice(2);
  for (const i of after) {
    const start = c.intendedNs[i] + c.lateUs[i] * 1000;
    lines.push(JSON.stringify({ tNs: start + 1e9, kind: 'retransmit', family: 4, sport: c.localPort[i], dport: m.config.port, state: 'SYN_SENT' }));
  }
  lines.push(JSON.stringify({ end: true, events: after.length }));
  mkdirSync(join(dir, 'events'), { recursive: true });
  writeFileSync(join(dir, 'events', 'kernel-events.ndjson'), lines.join('\n') + '\n');
  const s = analyzeRun(dir, { outlierUs: 100_000 });
  t.is(s.causes?.[0]?.id, 'accept-queue-overflow');
  const line = s.causes![0].evidence.find((e) => e.startsWith('kernel events:')) ?? '';
  // every outlier that could show an event did: a full share, not after.length / all
  t.regex(
    line,
    new RegExp(
      `^kernel events: ${after.length} of ${after.length} outlier connections \\(the 2 before bpftrace attached at [0-9.]+ s cannot show events\\) retransmitted their SYN`,
    ),
    line,
  );
});

test('a threshold above every latency: no cause, and no cause section', (t) => {
  const dir = copyFixture(t);
  const s = analyzeRun(dir, { outlierUs: 3_600_000_000 });
  t.deepEqual(s.causes, []);
  const md = writeReport(dir);
  t.notRegex(md, /## Likely cause/);
  t.notRegex(md, /Most likely cause/);
});

test('nothing fits: causes empty, and the report says no known cause matched and points at the system-state table', (t) => {
  t.deepEqual(findCauses(input()), []);
  const dir = copyFixture(t);
  analyzeRun(dir, { outlierUs: 100_000 });
  const s = JSON.parse(readFileSync(join(dir, 'summary.json'), 'utf8')) as Summary;
  s.causes = [];
  writeFileSync(join(dir, 'summary.json'), JSON.stringify(s));
  const md = writeReport(dir);
  t.regex(md, /No known cause matched/);
  t.regex(md, /strongest correlations/);
  t.regex(md, /System state around the outliers/);
});

test('a ~40 ms mode in an exchange with split writes and TCP_NODELAY off: nagle-delayed-ack', (t) => {
  const causes = findCauses(
    input({
      config: { ...CONFIG, splitWrites: 2, nodelay: false },
      outliers: {
        modes: [
          { label: 'delayed ACK (40 ms): median excess 40.2 ms', count: 90, share: 0.9, minUs: 40_100, medianUs: 40_700, maxUs: 42_000, timer: 'delayed-ack' },
        ],
        phases: {
          dominant: 'exchange 1',
          rows: [{ phase: 'exchange 1', outliers: 90, share: 0.9, medianExcessUs: 40_000, normalMedianUs: 300, unfinished: 0 }],
        },
        count: 100,
      },
    }),
  );
  t.is(causes[0]?.id, 'nagle-delayed-ack', JSON.stringify(causes));
  t.true(causes[0].confidence >= 0.8);
  t.true(causes[0].tryNext.some((x) => /--nodelay on/.test(x)));
  // the same mode with one write per request and TCP_NODELAY on: weaker
  const weak = findCauses(
    input({
      config: { ...CONFIG, splitWrites: 1, nodelay: true },
      outliers: { modes: [{ label: 'x', count: 1, share: 0.1, minUs: 0, medianUs: 0, maxUs: 0, timer: 'delayed-ack' }] },
    }),
  );
  t.false(weak.some((c) => c.id === 'nagle-delayed-ack' && c.confidence >= 0.6));
});

test('EADDRNOTAVAIL errors: port-exhaustion, even without outliers', (t) => {
  const causes = findCauses(input({ transactions: { attempted: 10_000, failed: 120, errors: { EADDRNOTAVAIL: 120 } }, outliers: { count: 0, total: 0 } }));
  t.is(causes[0]?.id, 'port-exhaustion', JSON.stringify(causes));
  t.true(causes[0].confidence >= 0.5);
  t.regex(causes[0].summary, /120 connects/);
});

test('ECONNRESET errors with an rst close: abortive-close-reset', (t) => {
  const causes = findCauses(
    input({
      config: { ...CONFIG, close: 'server-rst' },
      transactions: { attempted: 100, failed: 7, errors: { ECONNRESET: 7 } },
      outliers: { count: 0, total: 0 },
    }),
  );
  t.is(causes[0]?.id, 'abortive-close-reset');
});

test('a clean run gets no cause even with busy CPUs', (t) => {
  const busy = { unit: 'fraction', kind: 'fraction', near: 0.95, otherwise: 0.95, nearMax: 1, max: 1, nearRows: 0, otherRows: 100, nearMaxAtNs: NaN };
  t.deepEqual(findCauses(input({ outliers: { count: 0, total: 0 }, metrics: { 'cpu.user': busy, 'cpu.system': busy } })), []);
});

// ---- harness stall, through the self-check and buildCauseInput ----

/** 200 transactions 10 ms apart, 1 ms each; every 40th one takes 150 ms. CPU busy around the slow ones. */
function stallRun(withMonitors: boolean): CauseInput {
  const n = 200;
  const c = allocTxnColumns(n, 1);
  const outliers: number[] = [];
  for (let i = 0; i < n; i++) {
    c.intendedNs[i] = i * 10e6;
    const slow = i % 40 === 20;
    c.connectUs[i] = 100;
    c.exchangeUs[0][i] = slow ? 149_000 : 800;
    c.endUs[i] = slow ? 150_000 : 1_000;
    c.localPort[i] = 40_000 + i;
    if (slow) outliers.push(i);
  }
  // probe rows every 20 ms; CPU 95% busy in rows overlapping a slow transaction, 20% otherwise
  const rows = 110;
  const t = Float64Array.from({ length: rows }, (_, r) => (r + 1) * 20e6);
  const dt = new Float64Array(rows).fill(20e6);
  const near = (r: number): boolean => outliers.some((i) => t[r] >= c.intendedNs[i] && t[r] - 20e6 <= c.intendedNs[i] + 150e6);
  const user = Float64Array.from({ length: rows }, (_, r) => (near(r) ? 0.6 : 0.1));
  const system = Float64Array.from({ length: rows }, (_, r) => (near(r) ? 0.35 : 0.1));
  const cols = { 'cpu.user': user, 'cpu.system': system } as Record<string, Float64Array>;
  const probes = {
    rows,
    t,
    dt,
    columns: Object.keys(cols).map((name) => ({ name, kind: 'fraction', unit: 'fraction', source: 'stat', fromRow: 0, toRow: null })),
    get: (name: string) => cols[name] ?? null,
    has: (name: string) => name in cols,
    self: [],
  } as unknown as ProbeData;
  // the client's event loop: a 140 ms stall in the 20 ms interval where each slow transaction starts
  const eldT = outliers.map((i) => c.intendedNs[i] + 20e6);
  const mon: StallMonitorData = {
    role: 'client',
    pid: 1,
    file: 'probes/self-client.1.bin',
    resolutionNs: 10e6,
    intervalNs: 20e6,
    eld: {
      t: Float64Array.from(eldT),
      dt: new Float64Array(eldT.length).fill(20e6),
      mean: new Float64Array(eldT.length).fill(50e6),
      max: new Float64Array(eldT.length).fill(140e6),
      min: new Float64Array(eldT.length),
      ticks: new Float64Array(eldT.length).fill(1),
    },
    run: null,
    gc: { start: new Float64Array(0), duration: new Float64Array(0), kind: new Float64Array(0) },
    truncated: false,
  };
  const summary = {
    latencyUs: { total: { p50: 1_000 } },
    outliers: {
      thresholdUs: 100_000,
      modes: [],
      phases: {
        dominant: 'exchange 1',
        rows: [{ phase: 'exchange 1', outliers: outliers.length, share: 1, medianExcessUs: 148_000, normalMedianUs: 800, unfinished: 0 }],
      },
    },
    transactions: { attempted: n, failed: 0, timedOut: 0, errors: {} },
  } as unknown as Summary;
  return buildCauseInput({
    config: { ...CONFIG, port: 5000 } as unknown as RunConfig,
    summary,
    sysctls: {},
    c,
    s: null,
    outliers: Uint32Array.from(outliers),
    probes,
    self: withMonitors ? [mon] : [],
    events: null,
    describe: () => ({ modes: [], phases: null }),
  });
}

test("self-check: a loop stall overlapping every outlier makes them all the harness's doing", (t) => {
  const inp = stallRun(true);
  t.is(inp.harness?.stalled, 5);
  t.is(inp.harness?.byLoopDelay, 5);
  t.is(inp.outliers.count, 0);
  const causes = findCauses(inp);
  t.is(causes[0]?.id, 'harness-stall', JSON.stringify(causes));
  t.is(causes[0].confidence, 1);
  t.regex(causes[0].summary, /5 of 5 outliers/);
  t.false(causes.some((c) => c.id === 'cpu-saturation'));
});

test('without the stall the same busy CPUs are blamed: cpu-saturation', (t) => {
  const causes = findCauses(stallRun(false));
  t.is(causes[0]?.id, 'cpu-saturation', JSON.stringify(causes));
});

test('self-check: a GC pause counts only when it is a large part of the excess', (t) => {
  const c = allocTxnColumns(1, 1);
  c.intendedNs[0] = 1e9;
  c.endUs[0] = 200_000;
  const gc = (ms: number): StallMonitorData => ({
    role: 'server',
    pid: 2,
    file: 'x',
    resolutionNs: 10e6,
    intervalNs: 20e6,
    eld: {
      t: new Float64Array(0),
      dt: new Float64Array(0),
      mean: new Float64Array(0),
      max: new Float64Array(0),
      min: new Float64Array(0),
      ticks: new Float64Array(0),
    },
    run: null,
    gc: { start: Float64Array.of(1.05e9), duration: Float64Array.of(ms * 1e6), kind: Float64Array.of(1) },
    truncated: false,
  });
  t.is(selfCheck([gc(150)], c, [0], 1_000).check.byGc, 1);
  t.is(selfCheck([gc(5)], c, [0], 1_000).check.stalled, 0);
});
