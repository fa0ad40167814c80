import test from 'ava';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { analyzeSystemState } from '../analysis/system-state.ts';
import { Columns } from '../probes/columns.ts';
import { exportProbes } from '../probes/export.ts';
import { META_FILE, META_SCHEMA, META_VERSION, PROBES_DIR, SAMPLES_FILE, SAMPLES_MAGIC, SAMPLES_VERSION, type ProbeMeta } from '../probes/probe-files.ts';
import { ownProcessesCpu, readProbes } from '../probes/read.ts';
import { SampleWriter } from '../probes/sample-writer.ts';
import { Sampler } from '../probes/sampler.ts';
import { bindTemplate, match, OP_SKIPLINE, tokenize } from '../probes/template.ts';
import { DIGITS, readDigits } from '../probes/delta.ts';

// Read rates: a metric read every Nth sample is "not read" in the rows
// between (never 0), its delta covers the span since its last read, and
// every reader of rows (get/sparse for the analysis and the report, the
// system-state comparison, the export) sees it at its real spacing: no
// spike every Nth row with zeros between.

const tmp = (): string => mkdtempSync(join(tmpdir(), 'sockspike-rates-'));

test('columns: a counter read every 3rd sample keeps its last read and gives its delta over the span', (t) => {
  const c = new Columns(4);
  const fast = c.ensure({ name: 'fast', kind: 'counter', unit: 'count', source: 't' }, 0);
  const slow = c.ensure({ name: 'slow', kind: 'counter', unit: 'count', source: 't', every: 3 }, 0);
  const frac = c.ensure({ name: 'slowfrac', kind: 'fraction', unit: 'fraction', source: 't', every: 3, scale: 1 }, 0);
  const g = c.group(3);
  t.is(c.specs[c.groups[g].spanCol].name, 'probe.every3.dt_ns');
  t.is(c.outputs.find((o) => o.name === 'slow')?.every, 3);
  t.is(c.outputs.find((o) => o.name === 'fast')?.every, 1);
  // baseline at t = 0: everything read
  c.plan(0, true);
  c.set(fast, 0);
  c.set(slow, 100);
  c.set(frac, 0);
  c.rotate(0);
  const seen: { fast: number; slow: number | null; frac: number | null; span: number | null }[] = [];
  for (let row = 0; row < 6; row++) {
    const tNs = (row + 1) * 10;
    c.plan(row);
    c.set(fast, (row + 1) * 2);
    if (c.isRead(slow)) {
      c.set(slow, 100 + (row + 1) * 7); // 7 per sample
      c.set(frac, (row + 1) * 5); // 5 ns of CPU per 10 ns: 0.5
    }
    c.compute(10, tNs);
    seen.push({
      fast: c.value[fast],
      slow: c.isRead(slow) ? c.value[slow] : null,
      frac: c.isRead(frac) ? c.value[frac] : null,
      span: c.isRead(slow) ? c.value[c.groups[g].spanCol] : null,
    });
    c.rotate(tNs);
  }
  t.deepEqual(
    seen.map((s) => s.fast),
    [2, 2, 2, 2, 2, 2],
  );
  // read in rows 2 and 5 only, each time the delta of 3 samples, over a span of 30 ns
  t.deepEqual(
    seen.map((s) => s.slow),
    [null, null, 21, null, null, 21],
  );
  t.deepEqual(
    seen.map((s) => s.span),
    [null, null, 30, null, null, 30],
  );
  t.deepEqual(
    seen.map((s) => s.frac),
    [null, null, 0.5, null, null, 0.5],
  );
});

/** A run directory of version 2 holding `rows` samples of 20 ms: a counter and a gauge read every 5th sample. */
function syntheticRun(rows: number, counterAt: Map<number, number>, gaugeAt: Map<number, number>): string {
  const dir = tmp();
  const pdir = join(dir, PROBES_DIR);
  // columns: 0 fast counter, 1 slow counter, 2 slow gauge, 3 span column
  const columns: ProbeMeta['columns'] = [
    { name: 'fast.count', kind: 'counter', unit: 'count', source: 't', fromRow: 0, toRow: null, every: 1 },
    { name: 'slow.count', kind: 'counter', unit: 'count', source: 't', fromRow: 0, toRow: null, every: 5 },
    { name: 'slow.gauge', kind: 'gauge', unit: 'count', source: 't', fromRow: 0, toRow: null, every: 5 },
    { name: 'probe.every5.dt_ns', kind: 'gauge', unit: 'ns', source: 'probe', fromRow: 0, toRow: null, every: 5 },
  ];
  const meta: ProbeMeta = {
    schema: META_SCHEMA,
    version: META_VERSION,
    samples: { file: SAMPLES_FILE, magic: SAMPLES_MAGIC, version: SAMPLES_VERSION },
    t0Ns: '0',
    intervalNs: 20e6,
    clkTck: 100,
    cpus: 2,
    procRoot: '/proc',
    netns: null,
    baselineNs: 0,
    columns,
    rates: [
      { every: 1, periodNs: 20e6, spanColumn: null, reads: ['fast'] },
      { every: 5, periodNs: 100e6, spanColumn: 'probe.every5.dt_ns', reads: ['slow'] },
    ],
    constants: {},
    skipped: [],
    processes: [],
    listener: null,
    notes: [],
    complete: true,
    rows,
    result: null,
  };
  mkdirSync(pdir, { recursive: true });
  const writer = new SampleWriter(join(pdir, SAMPLES_FILE));
  for (let r = 0; r < rows; r++) {
    writer.beginRow((r + 1) * 20e6, 20e6, 4);
    writer.entry(0, 1);
    if ((r + 1) % 5 === 0) {
      const v = counterAt.get(r) ?? 0;
      if (v !== 0) writer.entry(1, v);
      const gv = gaugeAt.get(r) ?? 0;
      if (gv !== 0) writer.entry(2, gv);
      writer.entry(3, 100e6);
    }
    writer.endRow();
  }
  writer.close();
  writeFileSync(join(pdir, META_FILE), JSON.stringify(meta));
  return dir;
}

test('reader: a counter read every 5th sample is spread over the rows it covers; a gauge is "not read" between reads', (t) => {
  const dir = syntheticRun(
    12,
    new Map([
      [4, 50],
      [9, 0],
    ]),
    new Map([
      [4, 3],
      [9, 0],
    ]),
  );
  try {
    const d = readProbes(dir);
    t.is(d.every('slow.count'), 5);
    t.is(d.every('fast.count'), 1);
    const c = d.get('slow.count')!;
    // 50 over rows 0-4 (equal dt): 10 each; 0 over rows 5-9; rows 10, 11: not read yet (NaN)
    t.deepEqual([...c.slice(0, 10)], [10, 10, 10, 10, 10, 0, 0, 0, 0, 0]);
    t.true(Number.isNaN(c[10]) && Number.isNaN(c[11]));
    // the sum over rows is the counter's total, exactly
    t.is(
      [...c].filter((x) => x === x).reduce((a, b) => a + b, 0),
      50,
    );
    // as read: the value in the read rows only (0 included), NaN elsewhere
    const raw = d.raw('slow.count')!;
    t.is(raw[4], 50);
    t.is(raw[9], 0);
    t.true(Number.isNaN(raw[0]) && Number.isNaN(raw[5]) && Number.isNaN(raw[11]));
    const reads = d.reads('slow.count')!;
    t.deepEqual([...reads.rows], [4]);
    t.deepEqual([...reads.spanNs], [100e6]);
    // a gauge: its value where read, NaN (not 0) where not
    const g = d.get('slow.gauge')!;
    t.is(g[4], 3);
    t.is(g[9], 0);
    for (const r of [0, 1, 2, 3, 5, 6, 7, 8, 10, 11]) t.true(Number.isNaN(g[r]), `row ${r}`);
    t.true(Number.isNaN(d.sparse('slow.gauge')!.fill));
    t.is(d.sparse('slow.count')!.fill, 0);
    // a column read every sample is as before
    t.deepEqual([...d.get('fast.count')!], new Array(12).fill(1));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('system-state: a counter read every 5th sample compares at its rate over the span, and a gauge only where read', (t) => {
  const dir = syntheticRun(
    20,
    new Map([
      [4, 50],
      [9, 50],
      [14, 50],
      [19, 50],
    ]),
    new Map([
      [4, 7],
      [9, 7],
      [14, 9],
      [19, 9],
    ]),
  );
  try {
    const d = readProbes(dir);
    const outliers = new Uint8Array(20);
    for (let r = 10; r < 20; r++) outliers[r] = 1;
    const res = analyzeSystemState(d, outliers);
    const all = [...res.metrics, ...res.skipped.map((s) => ({ metric: s.metric }))];
    // the same rate in every row (500/s): constant, not a spike every 5th row with zeros between
    t.truthy(
      res.skipped.find((s) => s.metric === 'slow.count' && s.reason === 'constant'),
      JSON.stringify(all),
    );
    const g = res.metrics.find((m) => m.metric === 'slow.gauge')!;
    t.deepEqual(g.n, { outlier: 2, normal: 2 });
    t.is(g.outlierMedian, 9);
    t.is(g.normalMedian, 7);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('export: a metric read every 5th sample is an empty cell where it was not read, with the span beside it', async (t) => {
  const dir = syntheticRun(6, new Map([[4, 50]]), new Map([[4, 3]]));
  try {
    let text = '';
    const out = new Writable({
      write(chunk: Buffer, _enc, cb) {
        text += chunk.toString();
        cb();
      },
    });
    await exportProbes(dir, out, { format: 'csv' });
    const lines = text.trim().split('\n');
    t.is(lines[0], 't_ns,dt_ns,fast.count,slow.count,slow.gauge,probe.every5.dt_ns');
    t.is(lines[1], '20000000,20000000,1,,,');
    t.is(lines[5], '100000000,20000000,1,50,3,100000000');
    t.is(lines[6], '120000000,20000000,1,,,');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('sampler on this machine: slow sources every 5th sample, deltas over the span, own processes, meta version 2', async (t) => {
  const dir = tmp();
  try {
    const s = await Sampler.create({ runDir: dir, t0: process.hrtime.bigint(), intervalNs: 20e6, processes: [{ role: 'client', pid: process.pid }] });
    for (let i = 0; i < 23; i++) {
      // about 1 ms apart: the rates are per sample, not per time
      const until = performance.now() + 1;
      while (performance.now() < until);
      s.sample(s.now(), i === 22);
    }
    s.finish('stop', { meanNs: 0, p50Ns: 0, p99Ns: 0, maxNs: 0, missedSlots: 0 });
    const meta = JSON.parse(readFileSync(join(dir, PROBES_DIR, META_FILE), 'utf8')) as ProbeMeta;
    t.is(meta.version, 2);
    t.regex(meta.readRule ?? '', /not read \(nothing stored: not 0\)/);
    t.deepEqual(
      meta.rates!.map((r) => [r.every, r.spanColumn]),
      [
        [1, null],
        [5, 'probe.every5.dt_ns'],
        [25, 'probe.every25.dt_ns'],
      ],
    );
    // pressure every sample (its other lines with the rest); netstat, snmp, stat, vmstat and the processes' CPU every 5th
    t.deepEqual(meta.rates![0].reads, ['/proc/pressure/cpu', '/proc/pressure/memory']);
    for (const f of ['/proc/net/netstat', '/proc/net/snmp', '/proc/stat', '/proc/net/sockstat', '/proc/vmstat']) t.true(meta.rates![1].reads.includes(f), f);
    t.true(meta.rates![2].reads.some((r) => r.startsWith('proc.probes ')));
    for (const c of ['pressure.cpu.some', 'pressure.memory.full']) t.is(meta.columns.find((x) => x.name === c)?.every, 1, c);
    for (const c of [
      'TcpExt.ListenOverflows',
      'TcpExt.TCPHPHits',
      'Tcp.RetransSegs',
      'cpu.steal',
      'cpu0.steal',
      'vmstat.pgfault',
      'proc.client.utime',
      'proc.client.wait_ns',
      'sockstat.TCP.tw',
    ])
      t.is(meta.columns.find((x) => x.name === c)?.every, 5, c);
    t.deepEqual(
      meta.processes.map((p) => [p.role, p.own === true]),
      [
        ['client', false],
        ['probes', true],
      ],
    );
    const d = readProbes(dir);
    t.is(d.rows, 23);
    // vmstat read in rows 4, 9, 14, 19 and the last (22: a last sample reads everything)
    const span = d.raw('probe.every5.dt_ns')!;
    const readRows = [...span.keys()].filter((r) => span[r] === span[r]);
    t.deepEqual(readRows, [4, 9, 14, 19, 22]);
    // each read's span is the time since the previous one
    t.true(Math.abs(span[9] - (d.t[9] - d.t[4])) < 1);
    t.true(Math.abs(span[22] - (d.t[22] - d.t[19])) < 1);
    // pgfault (this process faults pages all the time): the spread rows sum to what was read
    const raw = d.raw('vmstat.pgfault')!;
    const spreadRows = d.get('vmstat.pgfault')!;
    const sumRaw = readRows.reduce((a, r) => a + (raw[r] === raw[r] ? raw[r] : 0), 0);
    const sumSpread = [...spreadRows].filter((x) => x === x).reduce((a, b) => a + b, 0);
    t.true(Math.abs(sumRaw - sumSpread) < 1e-6 * Math.max(1, sumRaw), `${sumRaw} vs ${sumSpread}`);
    for (const r of [0, 1, 2, 3, 5, 10, 20, 21]) t.true(Number.isNaN(raw[r]), `pgfault not read in row ${r}`);
    // a column read every sample is still read every sample
    const some = d.raw('pressure.cpu.some')!;
    t.true([...some].every((x) => x === x));
    t.is(d.every('pressure.cpu.some'), 1);
    // the probe process's own CPU, from its /proc/PID/stat every 25th sample (and the last)
    const own = ownProcessesCpu(d);
    t.truthy(own);
    t.deepEqual(
      own!.processes.map((p) => p.role),
      ['probes'],
    );
    t.true(own!.total >= 0);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a recorded run of version 1 (every column every sample) reads as before', (t) => {
  const d = readProbes('fixtures/runs/backlog1-rst');
  t.is(d.meta.version, 1);
  for (const c of d.columns) t.is(d.every(c.name), 1);
  const name = d.columns.find((c) => c.kind === 'counter')!.name;
  t.deepEqual([...d.raw(name)!], [...d.get(name)!]);
  t.is(ownProcessesCpu(d), null);
});

test('template: numbers nobody reads at this rate are skipped to the end of their line, and a changed layout is still caught', (t) => {
  const text = readFileSync('fixtures/proc/vm-2cpu/net/netstat', 'latin1');
  const buf = Buffer.from(text, 'latin1');
  const tok = tokenize(buf, buf.length);
  // bind one number (TcpExt.ListenOverflows) and drop the rest
  const names = tok.lines[0].slice(1).map((x) => x.text);
  const at = names.indexOf('ListenOverflows');
  const slot = tok.lines[1][1 + at].slot;
  const cols = new Int32Array(tok.template.slots).fill(-1);
  cols[slot] = 0;
  const bound = bindTemplate(tok.template, cols);
  t.true(
    Array.from(bound.ops)
      .filter((_, i) => i % 2 === 0)
      .includes(OP_SKIPLINE),
  );
  const hi = new Float64Array(1);
  const lo = new Float64Array(1);
  const ok = new Uint8Array(1);
  t.true(match(bound, buf, buf.length, hi, lo, ok));
  t.is(lo[0], Number(tok.lines[1][1 + at].text));
  // other values in the skipped lines: still a match
  const moved = Buffer.from(
    text.replace(/^(IpExt: )(\d+)/m, (_, a: string, v: string) => `${a}${Number(v) + 123456}`),
    'latin1',
  );
  t.true(match(bound, moved, moved.length, hi, lo, ok));
  // a renamed counter in a header line: the layout changed
  const renamed = Buffer.from(text.replace('TCPHPHits', 'TCPHPHitz'), 'latin1');
  t.false(match(bound, renamed, renamed.length, hi, lo, ok));
  // a new line: the layout changed
  const longer = Buffer.from(text + 'NewExt: A\nNewExt: 1\n', 'latin1');
  t.false(match(bound, longer, longer.length, hi, lo, ok));
});

test('numbers: exact up to 2^64 - 1, on the fast path (up to 15 digits) and past it', (t) => {
  for (const s of ['0', '7', '4294967295', '4294967296', '999999999999999', '1000000000000000', '9007199254740993', '18446744073709551615']) {
    const b = Buffer.from(`${s} `);
    t.is(readDigits(b, 0, b.length), s.length);
    t.is((BigInt(DIGITS.hi) * 2n ** 32n + BigInt(DIGITS.lo)).toString(), s);
  }
});
