import test from 'ava';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { analyzeRun } from '../analysis/analyze-run.ts';
import { allocTxnColumns, loadStartNs, readManifest, readTransactions } from '../analysis/read-run.ts';
import { flattenConfig, variantName } from '../analysis/compare/run-digest.ts';
import { variantFlags } from '../analysis/compare/variants.ts';
import { outlierSpan } from '../analysis/causes/evidence.ts';
import type { CauseInput } from '../analysis/causes/types.ts';
import { lowerLoad, suggestedRun } from '../lib/run-args.ts';
import type { RunConfig } from '../lib/types.ts';
import { TXN_FLAG_TCPINFO } from '../lib/records.ts';
import { exportTransactions } from '../reports/export.ts';
import { hostCounters, hostCountersLine } from '../reports/host-counters.ts';
import { renderProbeSection } from '../reports/probe-section.ts';
import { probeStatus, writeReport } from '../reports/run-report.ts';
import { buildTimelineSpec } from '../reports/timeline-chart.ts';
import { readProbes } from '../probes/read.ts';
import { DEFAULTS, resolveConfig } from '../harness/config.ts';
import { progressText } from '../harness/progress.ts';
import { BACKLOG1_FIXTURE as FIXTURE, copyFixture } from './helpers/fixture-copy.ts';

// What a newcomer meets (issue 14): the load's own time axis, numbers that
// can be true, host-wide counters said, suggestions that reproduce the run,
// probe-less verdicts, clean exports, compare's variant names.

const editManifest = (dir: string, f: (m: Record<string, unknown>) => void): void => {
  const p = join(dir, 'run.json');
  const m = JSON.parse(readFileSync(p, 'utf8')) as Record<string, unknown>;
  f(m);
  writeFileSync(p, JSON.stringify(m, null, 2));
};

test('time axis: the report, the system table and the timeline count from the load, start-up shown as such', (t) => {
  const dir = copyFixture(t);
  const m = readManifest(dir);
  const origin = loadStartNs(m);
  t.is(origin, m.workload!.firstStartNs);
  t.true(origin > 1e9, 'the fixture has start-up before its load');
  analyzeRun(dir, { outlierUs: 100_000 });
  const md = writeReport(dir);
  // every outlier starts within the load's 3 s, never at the ~5 s of t0 time
  const spans = [...md.matchAll(/between (\d+\.\d\d) s and (\d+\.\d\d) s into the load/g)];
  t.true(spans.length > 0, 'the verdict says when, into the load');
  for (const [, a, b] of spans) t.true(Number(a) >= 0 && Number(b) <= 3.5, `${a}..${b}`);
  t.notRegex(md, /into the run/);
  t.regex(md, /Start: seconds into the load/);
  // the system table: one start-up row, then rows from 0
  const section = renderProbeSection(dir, { originNs: origin });
  t.regex(section, /\| start-up +\|/);
  t.regex(section, /\| 0\.00 s +\|/);
  // the timeline: latency points and probe rows from 0, nothing before
  const c = readTransactions(dir, m);
  const built = buildTimelineSpec({ txn: c, thresholdUs: 100_000, probes: readProbes(dir), originNs: origin })!;
  const data = (built.spec as unknown as { datasets: Record<string, { t: number }[]> }).datasets;
  t.true(Math.min(...data.points.map((p) => p.t)) >= 0);
  t.true(Math.min(...data.points.map((p) => p.t)) < 0.01, 'the first transaction is at 0');
  t.true(
    data.cpu.every((r) => r.t >= 0),
    'start-up probe rows left out',
  );
});

test('outlierSpan counts from the load when the input says where it starts', (t) => {
  const input = { outliers: { count: 2, thresholdUs: 1000, firstNs: 5.5e9, lastNs: 7e9 }, loadStartNs: 4e9 } as unknown as CauseInput;
  t.regex(outlierSpan(input), /between 1\.50 s and 3\.00 s into the load/);
});

test('bounded shares: psi at most 100 %, a process at most its CPUs', (t) => {
  const section = renderProbeSection(FIXTURE, { originNs: loadStartNs(readManifest(FIXTURE)) });
  const lines = section.split('\n');
  // the system timeline comes in several tables to fit a page: each with its own header
  lines.forEach((line, at) => {
    if (!line.startsWith('| time')) return;
    const head = line.split('|').map((x) => x.trim());
    const psi = head.findIndex((h) => h.startsWith('psi '));
    if (psi < 0) return;
    for (const l of lines.slice(at + 2)) {
      if (!/^\| (start-up|\d)/.test(l)) break;
      const v = Number(l.split('|')[psi].trim());
      if (Number.isFinite(v)) t.true(v <= 100, l);
    }
  });
  const cpus = readProbes(FIXTURE).meta.cpus;
  const procHead = lines.findIndex((l) => l.startsWith('| process') && l.includes('peak %'));
  const peakCol = lines[procHead]
    .split('|')
    .map((x) => x.trim())
    .indexOf('peak %');
  const rows = lines.slice(procHead + 2);
  const end = rows.findIndex((x) => !x.startsWith('|'));
  for (const l of rows.slice(0, end < 0 ? rows.length : end)) t.true(Number(l.split('|')[peakCol]) <= 100 * cpus, l);
});

test('host-wide counters: resets a client-fin run cannot make are flagged, with --netns suggested', (t) => {
  const dir = copyFixture(t);
  // the fixture is a server-rst run (a reset per connection by design): as client-fin, its resets are someone else's
  editManifest(dir, (m) => ((m.config as RunConfig).close = 'client-fin'));
  const s = analyzeRun(dir, { outlierUs: 100_000 });
  const m = readManifest(dir);
  const h = hostCounters(readProbes(dir), m, s, loadStartNs(m));
  t.true(h.hostWide);
  t.true(
    h.flags.some((f) => f.counter === 'Tcp.OutRsts' || f.counter === 'Tcp.EstabResets'),
    JSON.stringify(h.flags),
  );
  const line = hostCountersLine(h, m)!;
  t.regex(line, /TCP counters are host-wide/);
  t.regex(line, /client-fin run makes no resets/);
  t.regex(line, /sockspike run .*--netns/);
  t.regex(writeReport(dir), /TCP counters are host-wide/);
  // as recorded (server-rst), its resets are its own: nothing flagged
  const dir2 = copyFixture(t);
  const s2 = analyzeRun(dir2, { outlierUs: 100_000 });
  const m2 = readManifest(dir2);
  t.deepEqual(
    hostCounters(readProbes(dir2), m2, s2, loadStartNs(m2)).flags.filter((f) => f.counter.includes('Rst') || f.counter.includes('Reset')),
    [],
  );
});

/** A configuration as `sockspike run` resolves it: the declared defaults, then the flags given. */
const config = (flags: Record<string, unknown>): RunConfig => {
  const { duration: _none, ...defaults } = DEFAULTS;
  return resolveConfig({ ...defaults, sysctl: [], fault: [], ...flags } as never);
};

test('suggestions keep every setting of the run and change exactly what they say', (t) => {
  const c = config({ netns: true, fault: ['syn-drop:5%@2s-6s'], sysctl: ['net.ipv4.tcp_tw_reuse=0'], concurrency: '4', duration: '20s', splitWrites: '2' });
  const cmd = suggestedRun(c, { '--nodelay': 'on' });
  for (const part of [
    '--netns',
    '--fault syn-drop:5%@2s-6s',
    '--sysctl net.ipv4.tcp_tw_reuse=0',
    '--concurrency 4',
    '--duration 20s',
    '--split-writes 2',
    '--nodelay on',
  ])
    t.true(cmd.includes(part), `${part} in ${cmd}`);
  t.false(suggestedRun(c, { '--split-writes': null }).includes('--split-writes'));
  t.true(suggestedRun(c, { '--concurrency': 2 }).includes('--concurrency 2'));
  t.false(suggestedRun(c, { '--concurrency': 2 }).includes('--concurrency 4'));
  // the defaults alone (in the host's namespace): a short command; a namespace of the run's own, the default as root, is kept
  t.is(suggestedRun(config({ netns: false })), 'sockspike run --duration 10s --concurrency 1 --close client-fin');
  if (config({}).netns) t.true(suggestedRun(config({})).endsWith(' --netns'));
  // lowering the load never proposes the same load
  t.deepEqual(lowerLoad(config({ concurrency: '8' }), 300), { '--concurrency': 4 });
  t.notDeepEqual(lowerLoad(config({}), 300), { '--concurrency': 1 });
  t.truthy(lowerLoad(config({}), 300)['--think-time']);
  t.deepEqual(lowerLoad(config({ rate: '1000' }), 300), { '--rate': 500 });
  // a scenario's settings are spelt out (no --scenario needed, none lost)
  const external = config({ serverCmd: 'python3 srv.py --port {port}', concurrency: '4' });
  t.true(suggestedRun(external, {}).startsWith("sockspike run --server-cmd 'python3 srv.py --port {port}'"));
});

test('a run without probes says so in its verdict and points to no section it lacks', (t) => {
  const dir = copyFixture(t);
  rmSync(join(dir, 'probes'), { recursive: true });
  editManifest(dir, (m) => {
    (m.probes as { skipped: unknown[] }).skipped = [{ probe: 'system probes and kernel events', reason: 'turned off with --no-probes' }];
  });
  analyzeRun(dir, { outlierUs: 100_000 });
  const md = writeReport(dir);
  t.regex(md, /\*\*No system data:\*\* the probes were off \(turned off with --no-probes\)/);
  t.notRegex(md, /see "System state around the outliers"/);
  t.notRegex(md, /\b1 outliers\b/);
  t.regex(
    probeStatus({ ...readManifest(dir), probes: { skipped: [{ probe: 'system probes', reason: 'the probe process exited with code 1' }] } } as never)!,
    /cut short/,
  );
});

test('transactions CSV: integers for ns, one decimal for us, TCP states by name', async (t) => {
  const c = allocTxnColumns(1, 2);
  c.intendedNs[0] = 7875047910.5;
  c.lateUs[0] = 0.25;
  c.connectUs[0] = 30311.603515625;
  c.exchangeUs[0][0] = 30400.1;
  c.exchangeUs[1][0] = 30500.9;
  c.endUs[0] = 30600;
  c.flags[0] = TXN_FLAG_TCPINFO;
  c.tcpiState[0] = 8;
  let text = '';
  const out = new Writable({
    write(chunk: Buffer, _enc, cb) {
      text += chunk.toString();
      cb();
    },
  });
  await exportTransactions(out, 'csv', c);
  const [head, row] = text.trim().split('\n');
  const cell = (name: string): string => row.split(',')[head.split(',').indexOf(name)];
  t.is(cell('intended_ns'), '7875047911');
  t.is(cell('connect_us'), '30311.6');
  t.is(cell('exchange1_took_us'), '88.5');
  t.is(cell('close_took_us'), '99.1');
  t.is(cell('tcpi_state'), 'CLOSE_WAIT');
  t.notRegex(text, /\d\.\d{2,}/, 'no float noise');
});

test('compare names variants in flag syntax, not JSON', (t) => {
  const base = flattenConfig(config({}) as unknown as Record<string, unknown>);
  const faulty = flattenConfig(config({ fault: ['syn-drop:5%'], sysctl: ['net.ipv4.tcp_tw_reuse=0'] }) as unknown as Record<string, unknown>);
  t.is(faulty.fault, 'syn-drop:5%');
  t.is(faulty['sysctl.net.ipv4.tcp_tw_reuse'], '0');
  t.is(base.fault, 'none');
  t.notRegex(variantName(faulty), /[{}"]/);
  t.is(variantFlags({ fault: 'syn-drop:5%', backlog: '1' }), '--backlog 1 --fault syn-drop:5%');
});

test('progress line: elapsed, remaining, and the average rate over the load (as the summary counts it)', (t) => {
  const m = { type: 'progress' as const, attempted: 9000, ok: 9000, failed: 0, timedOut: 0, inflight: 1, p99Us: 900 };
  const text = progressText(m, 3000, { durationNs: 10e9, transactions: null });
  t.regex(text, /^3 s elapsed, ~7 s left/);
  t.regex(text, /3000\/s/, 'the average since the load began, not the last update');
  t.regex(progressText(m, 3000, { durationNs: null, transactions: 12_000 }), /~1 s left/);
});
