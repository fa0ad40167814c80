import test from 'ava';
import { cpuSaturation } from '../analysis/causes/cpu-saturation.ts';
import { cpuOwners, ownerOf } from '../analysis/causes/cpu-owners.ts';
import { harnessCpu } from '../analysis/causes/harness-cpu.ts';
import type { MetricNear } from '../analysis/causes/index.ts';
import type { ProbeData } from '../probes/read.ts';
import { causeInput } from './helpers/cause-input.ts';

// Whose CPU: busy time around the outliers split between sockspike, the
// server under test, injected load and everything else; CPU saturation by
// sockspike alone is harness-cpu, never cpu-saturation.

/** Probe rows with constant columns (fractions of a core for proc.*, of all CPUs for cpu.*). */
function probes(cpus: number, rows: number, cols: Record<string, number>): ProbeData {
  const values = new Map(Object.entries(cols).map(([k, v]) => [k, new Float64Array(rows).fill(v)]));
  return {
    meta: { cpus },
    rows,
    columns: [...values.keys()].map((name) => ({ name })),
    get: (name: string) => values.get(name) ?? null,
  } as unknown as ProbeData;
}

const all = (rows: number): Uint8Array => new Uint8Array(rows).fill(1);
const level = (near: number, otherwise = near): MetricNear => ({
  unit: 'fraction',
  kind: 'fraction',
  near,
  otherwise,
  nearMax: near,
  max: near,
  nearRows: 20,
  otherRows: 80,
  nearMaxAtNs: 1e9,
});
const busyMetrics = { 'cpu.user': level(0.8, 0.78), 'cpu.system': level(0.15, 0.15) };

test('owners: sockspike is its client, built-in server, probes and bpftrace; a --server-cmd server is the server; cpu-hog is injected', (t) => {
  t.is(ownerOf('client', true), 'sockspike');
  t.is(ownerOf('client-2', true), 'sockspike');
  t.is(ownerOf('server', true), 'sockspike');
  t.is(ownerOf('server', false), 'server');
  t.is(ownerOf('server-4711', false), 'server');
  t.is(ownerOf('probes', false), 'sockspike');
  t.is(ownerOf('bpftrace', false), 'sockspike');
  t.is(ownerOf('cpu-hog-3', true), 'injected');
});

test('the busy cores no sampled process accounts for are "other processes", never below zero', (t) => {
  const p = probes(2, 10, {
    'cpu.user': 0.8,
    'cpu.system': 0.15,
    'proc.client.utime': 0.7,
    'proc.client.stime': 0.2,
    'proc.server.utime': 0.5,
    'proc.server.stime': 0.1,
  });
  const o = cpuOwners(p, all(10), all(10), true)!;
  t.is(o.cpus, 2);
  t.is(Math.round(o.busy.near * 100) / 100, 1.9);
  t.is(Math.round(o.owners.sockspike.near * 100) / 100, 1.5);
  t.is(Math.round(o.owners.others.near * 100) / 100, 0.4);
  t.deepEqual(
    o.owners.sockspike.processes.map((x) => x.key),
    ['client', 'server'],
  );
  const over = cpuOwners(probes(2, 4, { 'cpu.user': 0.2, 'cpu.system': 0.1, 'proc.client.utime': 0.9 }), all(4), all(4), true)!;
  t.is(over.owners.others.near, 0);
});

test("saturated CPUs held by sockspike's own client and server: harness-cpu, and cpu-saturation stays silent", (t) => {
  const p = probes(2, 10, {
    'cpu.user': 0.8,
    'cpu.system': 0.15,
    'proc.client.utime': 0.7,
    'proc.client.stime': 0.2,
    'proc.server.utime': 0.6,
    'proc.server.stime': 0.2,
  });
  const input = causeInput({ metrics: busyMetrics, cpu: cpuOwners(p, all(10), all(10), true) });
  t.is(cpuSaturation.match(input), null);
  const h = harnessCpu.match(input);
  t.truthy(h);
  t.regex(h!.summary, /by sockspike's own processes: sockspike's own processes 1\.7 cores \(client 0\.9 cores, server 0\.8 cores\)/);
  t.true(h!.tryNext.some((x) => /--concurrency 4/.test(x)));
});

test('saturated CPUs with another job holding a core: cpu-saturation, naming who held them', (t) => {
  const p = probes(2, 10, { 'cpu.user': 0.8, 'cpu.system': 0.15, 'proc.client.utime': 0.3, 'proc.server.utime': 0.2, 'proc.cpu-hog-1.utime': 0.95 });
  const input = causeInput({ metrics: busyMetrics, cpu: cpuOwners(p, all(10), all(10), true) });
  t.is(harnessCpu.match(input), null);
  const c = cpuSaturation.match(input);
  t.truthy(c);
  t.regex(c!.summary, /held by the injected load \(--fault cpu-hog\) 0\.9[5]? cores/);
  // an external server's own CPU is the server under test's, not sockspike's
  const ext = probes(2, 10, { 'cpu.user': 0.8, 'cpu.system': 0.15, 'proc.client.utime': 0.4, 'proc.server.utime': 1.2 });
  const e = cpuSaturation.match(causeInput({ metrics: busyMetrics, cpu: cpuOwners(ext, all(10), all(10), false) }));
  t.regex(e!.summary, /held by the server under test 1\.2 cores/);
});

test('without per-process CPU, cpu-saturation is as before (nobody named)', (t) => {
  const c = cpuSaturation.match(causeInput({ metrics: busyMetrics }));
  t.truthy(c);
  t.notRegex(c!.summary, /held by/);
  t.is(harnessCpu.match(causeInput({ metrics: busyMetrics })), null);
});

test('the busiest other processes by name, from the walks that overlap the rows around the outliers', (t) => {
  const p = probes(2, 10, { 'cpu.user': 0.8, 'cpu.system': 0.15, 'proc.client.utime': 0.3, 'proc.server.utime': 0.2 });
  const withTimes = { ...p, t: Float64Array.from({ length: 10 }, (_, r) => 1e9 + r * 20e6), dt: new Float64Array(10).fill(20e6) } as ProbeData;
  const near = new Uint8Array(10);
  near[3] = 1;
  const walks = [
    { tNs: 1.1e9, dtNs: 2e9, top: [{ comm: 'yes', pids: 1, cores: 0.98 }] }, // covers row 3 (1.04-1.06 s)
    { tNs: 5e9, dtNs: 2e9, top: [{ comm: 'cc1', pids: 2, cores: 1.5 }] }, // after it
  ];
  const o = cpuOwners(withTimes, all(10), near, true, walks)!;
  t.deepEqual(o.owners.others.processes, [{ key: 'yes', near: 0.98 }]);
  const c = cpuSaturation.match(causeInput({ metrics: busyMetrics, cpu: o }));
  t.regex(c!.summary, /other processes 1\.\d cores \(yes 0\.98 cores\)/);
});
