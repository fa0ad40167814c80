import test from 'ava';
import { readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { allocTxnColumns, readManifest, readTransactions } from '../analysis/read-run.ts';
import { HEADER_BYTES } from '../lib/records.ts';
import { OUTCOME_TIMEOUT } from '../lib/types.ts';
import { readProbes } from '../probes/read.ts';
import { AXIS, buildTimelineSpec, MAX_NORMAL, NORMAL_BUCKETS, renderSvg, TIMELINE_FILE, writeTimelineChart } from '../reports/timeline-chart.ts';
import { ROOT } from './helpers/cli.ts';
import { copyFixture } from './helpers/fixture-copy.ts';

// The timeline picture (timeline.svg): rendered headless from a real run
// directory, bounded in size, and null when there is nothing to draw.

const FIXTURE = join(ROOT, 'fixtures', 'runs', 'backlog1-rst');
const MB = 1024 * 1024;

test('writeTimelineChart writes a self-contained timeline.svg for the backlog1-rst fixture', async (t) => {
  const dir = copyFixture(t);
  const t0 = performance.now();
  const name = await writeTimelineChart(dir);
  const ms = performance.now() - t0;
  t.is(name, TIMELINE_FILE);
  const file = join(dir, TIMELINE_FILE);
  const svg = readFileSync(file, 'utf8');
  const size = statSync(file).size;
  t.log(`rendered in ${ms.toFixed(0)} ms, ${(size / 1024).toFixed(0)} KiB`);
  t.true(svg.startsWith('<svg'));
  t.true(svg.trimEnd().endsWith('</svg>'));
  t.true(size < 3 * MB, `${size} bytes`);
  for (const title of [AXIS.time, AXIS.latency, AXIS.cpu, AXIS.pressure, AXIS.counters, AXIS.tw, 'sockspike timeline']) t.true(svg.includes(title), title);
  // The counters that moved in this run (accept queue overflow, SYN retransmits, resets).
  for (const c of ['ListenOverflows', 'TCPSynRetrans', 'OutRsts']) t.true(svg.includes(c), c);
  // Self-contained: no links other than the SVG namespaces, no external fonts or images.
  const urls = [...svg.matchAll(/(?:href|src)="([^"]*)"|url\((?!#)/g)];
  t.deepEqual(urls, []);
  t.false(svg.includes('@font-face'));
});

test('buildTimelineSpec keeps every outlier and failure and caps normal points for 1e6 transactions', async (t) => {
  const n = 1_000_000;
  const c = allocTxnColumns(n, 1);
  const thresholdUs = 100_000;
  let outliers = 0;
  let failures = 0;
  let seed = 12345;
  const rand = (): number => (seed = (seed * 1103515245 + 12345) >>> 0) / 2 ** 32;
  for (let i = 0; i < n; i++) {
    c.intendedNs[i] = i * 600_000; // 10 minutes
    c.lateUs[i] = i % 97 === 0 ? 50 : 0;
    c.endUs[i] = 300 + rand() * 2000;
    c.connectUs[i] = 100;
    c.exchangeUs[0][i] = 200;
    if (i % 1000 === 7) {
      c.endUs[i] = 1_000_000 + rand() * 10_000; // a SYN retransmit
      outliers++;
    } else if (i % 20_011 === 3) {
      c.outcome[i] = OUTCOME_TIMEOUT;
      c.endUs[i] = 5_000_000;
      failures++;
    }
  }
  const t0 = performance.now();
  const built = buildTimelineSpec({ txn: c, thresholdUs });
  const ms = performance.now() - t0;
  t.log(`spec for 1e6 transactions in ${ms.toFixed(0)} ms`);
  t.truthy(built);
  const { stats, spec } = built!;
  t.is(stats.transactions, n);
  t.is(stats.outliers, outliers);
  t.is(stats.failures, failures);
  t.is(stats.drawn.outlier, outliers);
  t.is(stats.drawn.timeout, failures);
  t.true(stats.normalReduced);
  t.is(stats.drawn.normal, 0);
  t.true(stats.drawn['normal (bucket min/median/max)'] <= 3 * NORMAL_BUCKETS);
  t.true(stats.drawn['normal (bucket min/median/max)'] > NORMAL_BUCKETS);
  const points = (spec as unknown as { datasets: { points: unknown[] } }).datasets.points;
  t.is(points.length, outliers + failures + stats.drawn['normal (bucket min/median/max)']);
  t.true(JSON.stringify(spec).length < 3 * MB);
  // Deterministic.
  t.deepEqual(buildTimelineSpec({ txn: c, thresholdUs })!.spec, spec);
  const r0 = performance.now();
  const svg = await renderSvg(spec);
  t.log(`rendered in ${(performance.now() - r0).toFixed(0)} ms, ${(svg.length / 1024).toFixed(0)} KiB`);
  t.true(svg.startsWith('<svg'));
  t.true(svg.length < 3 * MB, `${svg.length} chars`);
});

test('buildTimelineSpec draws every normal transaction when there are few', (t) => {
  const n = MAX_NORMAL;
  const c = allocTxnColumns(n, 1);
  for (let i = 0; i < n; i++) {
    c.intendedNs[i] = i * 1e6;
    c.endUs[i] = i === 5 ? 2e6 : 500;
  }
  const { stats } = buildTimelineSpec({ txn: c, thresholdUs: 1e5 })!;
  t.false(stats.normalReduced);
  t.is(stats.drawn.normal, n - 1);
  t.is(stats.drawn.outlier, 1);
});

test('writeTimelineChart returns null for a run with no transactions', async (t) => {
  const dir = copyFixture(t);
  const m = readManifest(dir);
  for (const f of m.files.transactions) {
    const p = join(dir, f);
    writeFileSync(p, readFileSync(p).subarray(0, HEADER_BYTES)); // header only
  }
  t.is(await writeTimelineChart(dir), null);
  t.throws(() => statSync(join(dir, TIMELINE_FILE)));
  t.is(buildTimelineSpec({ txn: allocTxnColumns(0, 1), thresholdUs: 1000 }), null);
});

test('buildTimelineSpec adds a pressure panel for the fixture (it has /proc/pressure columns)', (t) => {
  const dir = FIXTURE;
  const m = readManifest(dir);
  const txn = readTransactions(dir, m);
  const probes = readProbes(dir);
  t.truthy(probes.get('pressure.cpu.some'));
  const built = buildTimelineSpec({ txn, thresholdUs: 100_000, probes })!;
  const spec = built.spec as unknown as {
    datasets: Record<string, { resource: string; pct: number }[]>;
    vconcat: { layer: { encoding?: { y?: { title?: string } } }[] }[];
  };
  const rows = spec.datasets.pressure;
  t.truthy(rows);
  const resources = new Set(rows.map((r) => r.resource));
  // cpu and io stalled in this run; memory never did (all zero): not drawn.
  t.true(resources.has('cpu some'));
  t.false(resources.has('memory some'));
  t.true(rows.every((r) => r.pct >= 0 && r.pct <= 100));
  t.true(rows.some((r) => r.pct > 10));
  t.true(spec.vconcat.some((p) => p.layer.some((l) => l.encoding?.y?.title === AXIS.pressure)));
  t.true(built.stats.counters.includes('pressure.cpu.some'));
  t.false(built.stats.counters.includes('pressure.memory.some'));
});
