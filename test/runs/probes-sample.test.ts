import test from 'ava';
import { execFile, spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { PassThrough } from 'node:stream';
import { promisify } from 'node:util';
import { UserError } from '../../lib/errors.ts';
import { exportProbes } from '../../probes/export.ts';
import { readOtherProcesses } from '../../probes/other-processes.ts';
import { ProcFile } from '../../probes/procfile.ts';
import { ownProcessesCpu, readProbes } from '../../probes/read.ts';
import type { ProbeResult } from '../../probes/probe-files.ts';
import { checkProbeInterval, startProbes } from '../../probes/run-probes.ts';
import { Sampler } from '../../probes/sampler.ts';
import { renderProbeSection } from '../../reports/probe-section.ts';

// Real sampling runs on this machine (shared, 2 CPUs: bounds are loose),
// the skip path, processes that exit mid-run, the reader's errors, export
// and the report section.

function runDir(t: { teardown: (f: () => void) => void }): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sstest-probe-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  return dir;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** A few connections over loopback, so TCP counters move. */
async function loopbackTraffic(n: number): Promise<void> {
  const server = net.createServer((s) => s.end('x'));
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as net.AddressInfo).port;
  for (let i = 0; i < n; i++) {
    await new Promise<void>((resolve) => {
      const c = net.connect(port, '127.0.0.1');
      c.on('data', () => c.end());
      c.on('close', () => resolve());
      c.on('error', () => resolve());
    });
  }
  await new Promise<void>((r) => server.close(() => r()));
}

test('an open /proc fd re-read at offset 0 gives fresh data, for every file the probes read', async (t) => {
  const files = [
    'stat',
    'softirqs',
    'vmstat',
    'net/snmp',
    'net/netstat',
    'net/sockstat',
    `${process.pid}/stat`,
    `${process.pid}/status`,
    `${process.pid}/schedstat`,
  ];
  const opened = files.map((f) => new ProcFile(path.join('/proc', f)));
  const before = opened.map((f) => f.buf.toString('latin1', 0, f.read()));
  let x = 0;
  for (let i = 0; i < 3e6; i++) x += i; // CPU time, context switches
  await loopbackTraffic(3); // TCP counters, sockets
  await sleep(30);
  const after = opened.map((f) => f.buf.toString('latin1', 0, f.read()));
  files.forEach((f, i) => {
    const fresh = fs.readFileSync(path.join('/proc', f), 'latin1');
    t.not(after[i], before[i], `${f} did not change`);
    // the same shape as a fresh open (values may have moved on meanwhile)
    t.is(after[i].split('\n').length, fresh.split('\n').length, f);
  });
  for (const f of opened) f.close();
  t.true(x > 0);
});

for (const ms of [10, 20]) {
  test(`a real run at ${ms} ms: samples on schedule, counters move, files read back`, async (t) => {
    const dir = runDir(t);
    const probes = await startProbes({ runDir: dir, t0: process.hrtime.bigint(), intervalNs: ms * 1e6, processes: [{ role: 'test', pid: process.pid }] });
    t.true(probes.columns > 100);
    const start = performance.now();
    await loopbackTraffic(20);
    await sleep(1500 - (performance.now() - start));
    const r = await probes.stop();
    const wall = performance.now() - start;
    t.is(r.stopReason, 'stop');
    t.log(
      `${ms} ms: ${r.samples} samples in ${wall.toFixed(0)} ms; late p50 ${(r.jitter.p50Ns / 1e3).toFixed(0)} us, p99 ${(r.jitter.p99Ns / 1e3).toFixed(0)} us, ` +
        `max ${(r.jitter.maxNs / 1e6).toFixed(1)} ms, ${r.jitter.missedSlots} missed; CPU ${(r.overhead.cpuPerSecond * 100).toFixed(2)} % (incl. warm-up)`,
    );
    // Every slot from the first sample to the last is either sampled or counted missed.
    const slots = r.overhead.wallNs / (ms * 1e6) + 1;
    const accounted = r.samples + r.jitter.missedSlots;
    t.true(accounted >= slots * 0.9 - 2 && accounted <= slots * 1.1 + 2, `${r.samples} samples + ${r.jitter.missedSlots} missed, ${slots.toFixed(0)} slots`);
    t.true(r.samples >= wall / ms / 3, `${r.samples} samples in ${wall.toFixed(0)} ms`);
    // loose: the machine is shared (2 CPUs, other tests running)
    t.true(r.jitter.p50Ns < (ms * 1e6) / 2, 'median lateness under half an interval');
    t.true(r.jitter.missedSlots <= slots / 2);
    const d = readProbes(dir);
    t.is(d.rows, r.samples);
    t.false(d.truncated);
    t.true(d.meta.complete);
    // the typical interval is the nominal one
    const dts = Array.from(d.dt.subarray(1, d.rows - 1)).sort((a, b) => a - b);
    const median = dts[Math.floor(dts.length / 2)];
    t.true(Math.abs(median - ms * 1e6) < ms * 1e6 * 0.2, `median dt ${median}`);
    for (let i = 1; i < d.rows; i++) t.true(d.t[i] > d.t[i - 1]);
    const total = (name: string): number => (d.get(name) as Float64Array).reduce((s, v) => (v === v ? s + v : s), 0);
    t.true(total('Tcp.ActiveOpens') >= 20);
    t.true(total('stat.ctxt') > 0);
    t.true(total('proc.test.run_ns') > 0);
    const idle = d.get('cpu.idle') as Float64Array;
    // a share of the span read (jiffy-quantised); NaN before the first span (read every 5th sample)
    t.true(idle.some((v) => v === v));
    t.true(idle.every((v) => v !== v || (v >= 0 && v <= 1.5)));
    t.true(Number.isFinite(r.overhead.cpuPerSecond) && r.overhead.cpuPerSecond > 0);
  });
}

test('interval below 10 ms is refused with a one-line UserError', (t) => {
  const err = t.throws(() => checkProbeInterval(5e6), { instanceOf: UserError });
  t.regex(err?.message ?? '', /too short: use at least 10 ms/);
  t.is(checkProbeInterval(10e6), 10e6);
});

test('the skip path: no /proc/pressure, a missing process, no listener: listed with reasons, the run goes on', async (t) => {
  const dir = runDir(t);
  const probes = await startProbes({
    runDir: dir,
    t0: process.hrtime.bigint(),
    procRoot: path.resolve('fixtures/proc/no-pressure'),
    processes: [{ role: 'ghost', pid: 999999 }],
    listener: { pid: process.pid, fd: 0 }, // stdin: not a listening socket
  });
  await sleep(200);
  const r = await probes.stop();
  const reasons = new Map(r.skipped.map((s) => [s.probe, s.reason]));
  t.regex(reasons.get('pressure.cpu') ?? '', /pressure\/cpu does not exist/);
  t.regex(reasons.get('pressure.memory') ?? '', /does not exist/);
  t.regex(reasons.get('proc.ghost') ?? '', /999999\/stat does not exist/);
  t.regex(reasons.get('listen') ?? '', /fd 0 of pid \d+ is not a listening TCP socket|native addon|pidfd_getfd/);
  t.true(r.samples > 0);
  const d = readProbes(dir);
  t.deepEqual(d.meta.skipped, r.skipped);
  t.true(d.has('TcpExt.ListenOverflows'));
  const md = renderProbeSection(dir);
  t.regex(md, /skipped \*\*pressure\.cpu\*\*: .*does not exist/);
});

test('a process that exits mid-run: recorded, no longer sampled, no crash; one added later is sampled', async (t) => {
  const dir = runDir(t);
  const child = spawn(process.execPath, ['-e', 'setInterval(() => {}, 1000)']);
  const childExit = new Promise((r) => child.on('exit', r));
  const late = spawn(process.execPath, ['-e', 'setInterval(() => {}, 1000)']);
  t.teardown(() => {
    // ours: end by pid if still there
    for (const c of [child, late]) if (c.exitCode === null && c.signalCode === null) c.kill();
  });
  const probes = await startProbes({ runDir: dir, t0: process.hrtime.bigint(), processes: [{ role: 'short', pid: child.pid as number }] });
  probes.addProcess('late', late.pid as number);
  await sleep(200);
  child.kill(); // ours, by pid
  await childExit;
  await sleep(300);
  const r = await probes.stop();
  const d = readProbes(dir);
  const short = d.meta.processes.find((p) => p.role === 'short');
  t.truthy(short?.exitedNs);
  const col = d.columns.find((c) => c.name === 'proc.short.run_ns');
  t.true(typeof col?.toRow === 'number' && col.toRow < d.rows);
  const v = d.get('proc.short.run_ns') as Float64Array;
  t.true(Number.isNaN(v[d.rows - 1]));
  t.true(d.meta.notes.some((n) => /short \(pid \d+\) ended during the run/.test(n)));
  const lateCol = d.columns.find((c) => c.name === 'proc.late.run_ns');
  t.true((lateCol?.fromRow ?? -1) >= 0);
  // the two of the run, and the probe process's own CPU (sockspike's own, read every ~500 ms)
  t.deepEqual(
    r.processes.map((p) => [p.role, p.own === true]),
    [
      ['short', false],
      ['probes', true],
      ['late', false],
    ],
  );
});

// Serial: it sets SOCKSPIKE_PROBE_THREAD for the probe process it forks, and
// ava runs serial tests before the concurrent ones, so no other fork sees it.
test.serial(
  "the addon's read thread and the JavaScript reader: the same columns and rates, on schedule; the thread walks /proc for other processes",
  async (t) => {
    const busy = spawn(process.execPath, ['-e', 'const end = Date.now() + 15000; while (Date.now() < end);'], { stdio: 'ignore' });
    t.teardown(() => {
      if (busy.exitCode === null && busy.signalCode === null) busy.kill('SIGKILL'); // ours, by pid
    });
    const sample = async (thread: boolean): Promise<{ dir: string; d: ReturnType<typeof readProbes>; r: ProbeResult }> => {
      const dir = runDir(t);
      const before = process.env.SOCKSPIKE_PROBE_THREAD;
      if (!thread) process.env.SOCKSPIKE_PROBE_THREAD = '0';
      try {
        const probes = await startProbes({ runDir: dir, t0: process.hrtime.bigint(), intervalNs: 20e6, processes: [{ role: 'test', pid: process.pid }] });
        await sleep(4500); // two walks of other processes (every 2 s), the first a baseline
        const r = await probes.stop();
        return { dir, d: readProbes(dir), r };
      } finally {
        if (before === undefined) delete process.env.SOCKSPIKE_PROBE_THREAD;
        else process.env.SOCKSPIKE_PROBE_THREAD = before;
      }
    };
    const th = await sample(true);
    const js = await sample(false);
    const fallback = /reads made by the probe process's JavaScript, not the addon's read thread/;
    t.false(
      th.d.meta.notes.some((n) => fallback.test(n)),
      th.d.meta.notes.join('; '),
    );
    t.true(js.d.meta.notes.some((n) => fallback.test(n)));
    for (const x of [th, js]) {
      // about one sample per 20 ms over 4.5 s, each on its slot, in time order
      t.true(x.d.rows >= 180 && x.d.rows <= 230, `${x.d.rows} rows`);
      t.true(x.r.jitter.p50Ns < 10e6, `median lateness ${x.r.jitter.p50Ns} ns`);
      for (let i = 1; i < x.d.rows; i++) t.true(x.d.t[i] > x.d.t[i - 1]);
      t.true(
        [...(x.d.raw('pressure.cpu.some') as Float64Array)].slice(1).every((v) => v === v),
        'pressure read in every row',
      );
      t.is(x.d.every('Tcp.ActiveOpens'), 5);
    }
    const names = (x: typeof th): string[] => x.d.columns.map((c) => `${c.name}/${c.every ?? 1}`).sort();
    t.deepEqual(names(th), names(js));
    t.deepEqual(
      th.d.meta.rates!.map((r) => [r.every, r.reads.length]),
      js.d.meta.rates!.map((r) => [r.every, r.reads.length]),
    );
    // the busy process (a node loop, not one of the run's) named by the thread's walk with about a core
    const walks = readOtherProcesses(th.dir);
    t.true(walks.length >= 1, 'a walk after the baseline');
    const node = walks[walks.length - 1].top.find((x) => x.comm === 'node');
    t.truthy(node, JSON.stringify(walks));
    t.true(node!.cores > 0.5 && node!.cores <= 2.05, `${node!.cores} cores`);
  },
);

test('reader: a missing or corrupt run directory is a one-line UserError', (t) => {
  const dir = runDir(t);
  const e1 = t.throws(() => readProbes(dir), { instanceOf: UserError });
  t.regex(e1?.message ?? '', /meta\.json: missing/);
  fs.mkdirSync(path.join(dir, 'probes'));
  fs.writeFileSync(path.join(dir, 'probes/meta.json'), '{"schema":');
  t.regex(t.throws(() => readProbes(dir), { instanceOf: UserError })?.message ?? '', /corrupt \(not JSON\)/);
  t.false((t.throws(() => readProbes(dir))?.message ?? '').includes('\n'));
});

test('reader: a damaged samples.bin is caught, a truncated tail (killed sampler) is tolerated', async (t) => {
  const dir = runDir(t);
  // in-process, so the file has a known shape: 120 rows in blocks of 50
  const s = await Sampler.create({ runDir: dir, t0: process.hrtime.bigint(), intervalNs: 20e6, sources: ['stat', 'netstat'] });
  for (let i = 0; i < 120; i++) s.sample(s.now());
  s.finish('stop', { meanNs: 0, p50Ns: 0, p99Ns: 0, maxNs: 0, missedSlots: 0 });
  const file = path.join(dir, 'probes/samples.bin');
  const good = fs.readFileSync(file);
  const rows = readProbes(dir).rows;
  // a flipped block marker
  const bad = Buffer.from(good);
  bad[16] ^= 0xff;
  fs.writeFileSync(file, bad);
  t.regex(t.throws(() => readProbes(dir), { instanceOf: UserError })?.message ?? '', /samples\.bin: corrupt \(block 0/);
  // cut mid-block: complete meta says more rows: corrupt
  fs.writeFileSync(file, good.subarray(0, good.length - 7));
  t.regex(t.throws(() => readProbes(dir), { instanceOf: UserError })?.message ?? '', /corrupt \(holds \d+ rows, meta\.json says \d+\)/);
  // ... but while the sampler had not finished (meta incomplete), it is a truncated tail
  const meta = JSON.parse(fs.readFileSync(path.join(dir, 'probes/meta.json'), 'utf8'));
  fs.writeFileSync(path.join(dir, 'probes/meta.json'), JSON.stringify({ ...meta, complete: false, rows: null }));
  const d = readProbes(dir);
  t.true(d.truncated);
  t.is(rows, 120);
  t.is(d.rows, 100); // the two complete blocks
  t.regex(renderProbeSection(dir), /did not finish cleanly/);
});

test('export: CSV and NDJSON, one line per sample, every column by name', async (t) => {
  const dir = runDir(t);
  const probes = await startProbes({ runDir: dir, t0: process.hrtime.bigint(), sources: ['snmp', 'sockstat'] });
  await sleep(300);
  await probes.stop();
  const d = readProbes(dir);
  const collect = async (format: 'csv' | 'ndjson'): Promise<string[]> => {
    const out = new PassThrough();
    const chunks: Buffer[] = [];
    out.on('data', (c: Buffer) => chunks.push(c));
    const n = await exportProbes(dir, out, { format });
    t.is(n, d.rows);
    return Buffer.concat(chunks).toString('utf8').trimEnd().split('\n');
  };
  const csv = await collect('csv');
  t.is(csv.length, d.rows + 1);
  const head = csv[0].split(',');
  t.deepEqual(head.slice(0, 2), ['t_ns', 'dt_ns']);
  t.true(head.includes('Tcp.ActiveOpens'));
  t.is(head.length, d.columns.length + 2);
  t.is(Number(csv[1].split(',')[0]), d.t[0]);
  const nd = await collect('ndjson');
  t.is(nd.length, d.rows);
  const first = JSON.parse(nd[0]) as Record<string, number | null>;
  t.is(first.t_ns, d.t[0]);
  // a gauge read every 5th sample: its value in the rows where it was read, null in the others
  const inuse = d.raw('sockstat.TCP.inuse') as Float64Array;
  const r = inuse.findIndex((v) => v === v);
  t.true(r > 0);
  t.is((JSON.parse(nd[r]) as Record<string, number | null>)['sockstat.TCP.inuse'], inuse[r]);
  t.is((JSON.parse(nd[r - 1]) as Record<string, number | null>)['sockstat.TCP.inuse'], null);
  t.true('Tcp.OutRsts' in first);
  await t.throwsAsync(exportProbes(dir, new PassThrough(), { format: 'xml' as 'csv' }), { instanceOf: UserError });
});

test('report section: timeline, counters that moved, processes, marks, overhead', async (t) => {
  const dir = runDir(t);
  const t0 = process.hrtime.bigint();
  const probes = await startProbes({ runDir: dir, t0, processes: [{ role: 'test', pid: process.pid }] });
  await sleep(100);
  await loopbackTraffic(10);
  const mark = Number(process.hrtime.bigint() - t0);
  await sleep(600);
  await probes.stop();
  const md = renderProbeSection(dir, { highlightNs: [mark] });
  t.regex(md, /^## System state/);
  t.regex(md, /### Timeline\n/);
  t.regex(md, /\| time +\| user % \| sys % \| softirq % \|.*steal %/);
  t.regex(md, /◀ 1/);
  t.regex(md, /### Counters that moved\n\n\| counter/);
  t.regex(md, /\| Tcp\.ActiveOpens +\| +\d+/);
  t.regex(md, /\| test +\| +\d+ \|/);
  t.regex(md, /Probe process: \d+\.\d+ % of one core/);
  // every table row has as many cells as its header
  for (const block of md.split('\n\n').filter((b) => b.startsWith('|'))) {
    const lines = block.split('\n');
    const cells = (l: string): number => l.split('|').length;
    t.true(
      lines.every((l) => cells(l) === cells(lines[0])),
      block,
    );
  }
});

test('the probe process ends by itself, files complete, when its parent dies without stopping it', async (t) => {
  const dir = runDir(t);
  const script = `
    import { startProbes } from ${JSON.stringify(path.resolve('probes/run-probes.ts'))};
    const h = await startProbes({ runDir: ${JSON.stringify(dir)}, t0: process.hrtime.bigint(), sources: ['stat'] });
    console.log(h.pid);
    setTimeout(() => process.kill(process.pid, 'SIGKILL'), 300);`;
  const { stdout } = await promisify(execFile)(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { timeout: 30_000 }).catch(
    (err: { stdout?: string }) => ({ stdout: err.stdout ?? '' }),
  );
  const pid = Number(stdout.trim());
  t.true(pid > 0);
  const deadline = Date.now() + 5000;
  while (fs.existsSync(`/proc/${pid}`) && Date.now() < deadline) await sleep(50);
  t.false(fs.existsSync(`/proc/${pid}`), 'the probe process outlived its parent');
  const d = readProbes(dir);
  t.true(d.meta.complete);
  t.is(d.meta.result?.stopReason, 'parent-gone');
  t.true(d.rows > 5);
});

test("read rates and sockspike's own processes: a real probe process says what it read how often, and the CPU of the processes it was told are sockspike's own", async (t) => {
  const dir = runDir(t);
  const t0 = process.hrtime.bigint();
  // this test process stands in for the orchestrator, as `sockspike run` registers itself
  const probes = await startProbes({
    runDir: dir,
    t0,
    processes: [
      { role: 'server', pid: process.pid },
      { role: 'orchestrator', pid: process.pid, own: true },
    ],
  });
  await loopbackTraffic(20);
  // busy for a while: the orchestrator's CPU must show
  const until = performance.now() + 1200;
  while (performance.now() < until) await loopbackTraffic(2);
  await probes.stop();
  const d = readProbes(dir);
  t.is(d.meta.version, 2);
  t.deepEqual(
    d.meta.processes.map((p) => [p.role, p.own === true]),
    [
      ['server', false],
      ['orchestrator', true],
      ['probes', true],
    ],
  );
  t.is(d.every('proc.server.utime'), 5); // CPU times count in 10 ms ticks: at the slow rate
  t.is(d.every('proc.server.wait_ns'), 5);
  t.is(d.every('proc.orchestrator.utime'), 25);
  t.false(d.has('proc.orchestrator.wait_ns'), 'own processes: CPU only');
  // pressure every sample, Tcp counters every 5th; a counter moved by the traffic, summed over rows, equals what was read
  t.is(d.every('pressure.cpu.some'), 1);
  t.is(d.every('Tcp.ActiveOpens'), 5);
  const slow = d.columns.find((c) => (c.every ?? 1) === 5 && c.kind === 'counter' && (d.reads(c.name)?.rows.length ?? 0) > 0);
  t.truthy(slow, 'a counter read every 5th sample that moved');
  const rowsSum = [...d.get(slow!.name)!].filter((x) => x === x).reduce((a, b) => a + b, 0);
  const readSum = [...d.reads(slow!.name)!.values].filter((x) => x === x).reduce((a, b) => a + b, 0);
  t.true(Math.abs(rowsSum - readSum) <= 1e-6 * Math.max(1, readSum), `${slow!.name}: ${rowsSum} over rows, ${readSum} as read`);
  const own = ownProcessesCpu(d)!;
  t.deepEqual(
    own.processes.map((p) => p.role),
    ['orchestrator', 'probes'],
  );
  t.true(own.processes[0].share > 0.2, `the busy orchestrator: ${own.processes[0].share}`);
  const md = renderProbeSection(dir);
  t.regex(
    md,
    /Read rates: every sample: pressure\/cpu; pressure\/memory\. every 5 samples \(100 ms\): stat;.*net\/netstat;.*vmstat; server stat; server status, schedstat\. every 25 samples \(500 ms\): orchestrator stat; probes stat/,
  );
  t.regex(
    md,
    /sockspike's own processes besides the client and server: \d+\.\d+ % of a core together while sampling \(orchestrator \d+\.\d+ %, probes \d+(\.\d+)? %/,
  );
  t.regex(md, /\| orchestrator \| +\d+ \| +\d+\.\d \|.*\| +- \|/);
});
