import test from 'ava';
import { existsSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { decodeFromCompressedBase64 } from 'hdr-histogram-js';
import type { Summary } from '../lib/types.ts';
import { LATENCY_AXIS, LATENCY_FILE, percentilePoints, writeLatencyChart } from '../reports/latency-chart.ts';
import { loadResvg, svgToPng } from '../reports/png.ts';
import { TIMELINE_FILE, writeTimelineChart } from '../reports/timeline-chart.ts';
import { ROOT } from './helpers/cli.ts';
import { copyFixture } from './helpers/fixture-copy.ts';

// The latency distribution picture (latency.svg) from summary.json's
// HdrHistogram, and the PNGs rendered beside the SVGs.

const FIXTURE = join(ROOT, 'fixtures', 'runs', 'backlog1-rst');
const KB = 1024;

test('writeLatencyChart writes latency.svg for the backlog1-rst fixture', async (t) => {
  const dir = copyFixture(t);
  const t0 = performance.now();
  const name = await writeLatencyChart(dir);
  const ms = performance.now() - t0;
  t.is(name, LATENCY_FILE);
  const file = join(dir, LATENCY_FILE);
  const svg = readFileSync(file, 'utf8');
  const size = statSync(file).size;
  t.log(`rendered in ${ms.toFixed(0)} ms, ${(size / KB).toFixed(0)} KiB`);
  t.true(svg.startsWith('<svg'));
  t.true(svg.trimEnd().endsWith('</svg>'));
  t.true(size < 500 * KB, `${size} bytes`);
  for (const title of [LATENCY_AXIS.percentile, LATENCY_AXIS.latency, 'outlier threshold', 'sockspike latency distribution'])
    t.true(svg.includes(title), title);
  for (const label of ['50%', '90%', '99%', '99.9%']) t.true(svg.includes(`>${label}<`), label);
});

test('percentilePoints follows the histogram: monotonic, ends at the max', (t) => {
  const s = JSON.parse(readFileSync(join(FIXTURE, 'summary.json'), 'utf8')) as Summary;
  const h = decodeFromCompressedBase64(s.hdr.total, 32, false);
  const pts = percentilePoints(h);
  t.true(pts.length > 100);
  t.is(pts[0].x, 1);
  for (let i = 1; i < pts.length; i++) {
    t.true(pts[i].x >= pts[i - 1].x);
    t.true(pts[i].ms >= pts[i - 1].ms);
  }
  t.is(pts[pts.length - 1].pct, 100);
  t.is(pts[pts.length - 1].ms, Number((h.maxValue / 1e3).toPrecision(4)));
  h.destroy();
});

test('writeLatencyChart returns null for a run with no successful transaction', async (t) => {
  const dir = copyFixture(t);
  const path = join(dir, 'summary.json');
  const s = JSON.parse(readFileSync(path, 'utf8')) as Summary;
  s.transactions.ok = 0;
  s.latencyUs.total.count = 0;
  writeFileSync(path, JSON.stringify(s));
  t.is(await writeLatencyChart(dir), null);
  t.false(existsSync(join(dir, LATENCY_FILE)));
});

test('svgToPng writes a PNG beside each SVG when @resvg/resvg-js loads', async (t) => {
  const dir = copyFixture(t);
  await writeTimelineChart(dir);
  await writeLatencyChart(dir);
  if (!loadResvg()) {
    t.log('@resvg/resvg-js cannot load here: no PNGs (svgToPng returns null)');
    t.is(svgToPng(join(dir, LATENCY_FILE)), null);
    return;
  }
  for (const svg of [TIMELINE_FILE, LATENCY_FILE]) {
    const t0 = performance.now();
    const png = svgToPng(join(dir, svg));
    const ms = performance.now() - t0;
    t.is(png, svg.replace(/\.svg$/, '.png'));
    const buf = readFileSync(join(dir, png!));
    t.log(`${png}: ${(buf.length / KB).toFixed(0)} KiB in ${ms.toFixed(0)} ms, ${buf.readUInt32BE(16)}x${buf.readUInt32BE(20)} px`);
    t.deepEqual([...buf.subarray(0, 8)], [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
    t.is(buf.readUInt32BE(16), 1000); // IHDR width
  }
});
