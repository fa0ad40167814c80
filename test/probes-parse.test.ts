import test from 'ava';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Columns } from '../probes/columns.ts';
import { listeningInodes } from '../probes/listen-queue.ts';
import { ProcessProbe } from '../probes/process-probe.ts';
import { readProbes } from '../probes/read.ts';
import { Sampler } from '../probes/sampler.ts';
import { SYSTEM_SOURCES } from '../probes/proc-names.ts';
import { match, tokenize, bindTemplate } from '../probes/template.ts';

// Parsing of every /proc format, from files recorded on a 2-CPU VM
// (fixtures/proc/vm-2cpu) and hand-edited variants: no /proc/pressure, a
// kernel with counters we do not know, four CPUs.

const FIX = path.resolve('fixtures/proc');
const ALL = SYSTEM_SOURCES.map((s) => s.id);
const T0 = 0n;

/** A writable copy of a fixture, removed after the test. */
function copyFixture(t: { teardown: (f: () => void) => void }, name: string): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sstest-proc-'));
  fs.cpSync(path.join(FIX, name), dir, { recursive: true });
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  return dir;
}

function runDir(t: { teardown: (f: () => void) => void }): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sstest-run-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  return dir;
}

// every column every sample: the parsers are tested here, the read rates in probes-rates.test.ts
const sampler = (dir: string, procRoot: string, extra: Partial<Parameters<typeof Sampler.create>[0]> = {}): Promise<Sampler> =>
  Sampler.create({ runDir: dir, t0: T0, intervalNs: 20e6, procRoot, clkTck: 100, perCpu: true, sources: ALL, slowPeriodNs: 0, ...extra });

const finish = (s: Sampler): void => {
  s.finish('stop', { meanNs: 0, p50Ns: 0, p99Ns: 0, maxNs: 0, missedSlots: 0 });
};

/** Replace field `name` of a "Group: names / Group: values" table file by fn(old). */
function editTable(file: string, group: string, name: string, fn: (v: bigint) => bigint): void {
  const lines = fs.readFileSync(file, 'latin1').split('\n');
  for (let i = 0; i + 1 < lines.length; i++) {
    const head = lines[i].split(' ');
    if (head[0] !== `${group}:` || /^\d/.test(head[1] ?? '')) continue;
    const j = head.indexOf(name);
    if (j < 0) continue;
    const vals = lines[i + 1].split(' ');
    vals[j] = String(fn(BigInt(vals[j])));
    lines[i + 1] = vals.join(' ');
    fs.writeFileSync(file, lines.join('\n'));
    return;
  }
  throw new Error(`${group}.${name} not in ${file}`);
}

test('every source of a recorded 2-CPU VM parses, by name, with the right kinds', async (t) => {
  const s = await sampler(runDir(t), path.join(FIX, 'vm-2cpu'));
  t.deepEqual(s.skipped, []);
  const names = new Map(s.columns.outputs.map((c) => [c.name, c]));
  for (const n of [
    'cpu.user',
    'cpu.steal',
    'cpu.softirq',
    'cpu.iowait',
    'cpu0.system',
    'cpu1.idle',
    'stat.ctxt',
    'stat.intr',
    'stat.procs_running',
    'stat.procs_blocked',
    'pressure.cpu.some',
    'pressure.io.full',
    'pressure.memory.some',
    'Tcp.ActiveOpens',
    'Tcp.RetransSegs',
    'Tcp.OutRsts',
    'Tcp.CurrEstab',
    'Ip.InReceives',
    'Udp.InDatagrams',
    'IcmpMsg.InType3',
    'TcpExt.ListenOverflows',
    'TcpExt.ListenDrops',
    'TcpExt.TCPSynRetrans',
    'TcpExt.TW',
    'TcpExt.TCPAOGood',
    'IpExt.InOctets',
    'MPTcpExt.MPCurrEstab',
    'Ip6.InReceives',
    'Icmp6.InMsgs',
    'Udp6.InDatagrams',
    'sockstat.TCP.inuse',
    'sockstat.TCP.orphan',
    'sockstat.TCP.tw',
    'sockstat.TCP.alloc',
    'sockstat.TCP.mem',
    'sockstat.sockets.used',
    'sockstat6.TCP6.inuse',
    'softirq.NET_RX',
    'softirq.NET_TX',
    'softirq.TIMER',
    'softirq.SCHED',
    'softirq.NET_RX.cpu0',
    'softirq.SCHED.cpu1',
    'vmstat.pgmajfault',
    'vmstat.allocstall_normal',
    'vmstat.compact_stall',
    'vmstat.pgscan_direct',
    'vmstat.pgsteal_direct',
    'vmstat.nr_free_pages',
  ]) {
    t.true(names.has(n), `${n} missing`);
  }
  t.is(names.get('Tcp.CurrEstab')?.kind, 'gauge');
  t.is(names.get('sockstat.TCP.tw')?.kind, 'gauge');
  t.is(names.get('cpu.user')?.kind, 'fraction');
  t.is(names.get('pressure.cpu.some')?.unit, 'us');
  t.is(names.get('IpExt.InOctets')?.unit, 'bytes');
  t.is(names.get('TcpExt.ListenOverflows')?.kind, 'counter');
  // constants are not sampled, but kept
  t.false(names.has('Tcp.RtoMin'));
  finish(s);
  const d = readProbes(path.dirname(s.dir));
  t.is(d.meta.constants['Tcp.RtoMin'], 200);
  t.is(d.meta.constants['Tcp.RtoMax'], 120000);
  t.is(d.meta.constants['Tcp.MaxConn'], -1);
  t.is(d.meta.cpus, 2);
  // every field of snmp and netstat became a column or a constant: count them in the files
  const fields = (f: string): number =>
    fs
      .readFileSync(path.join(FIX, 'vm-2cpu/net', f), 'latin1')
      .split('\n')
      .filter((l, i) => i % 2 === 0 && l.includes(':'))
      .reduce((n, l) => n + l.split(' ').length - 1, 0);
  const tableCols = d.columns.filter((c) => c.source === 'snmp' || c.source === 'netstat').length + Object.keys(d.meta.constants).length;
  t.is(tableCols, fields('snmp') + fields('netstat'));
});

test('values: gauges as read, counters as deltas, fractions of the interval', async (t) => {
  const proc = copyFixture(t, 'vm-2cpu');
  const dir = runDir(t);
  const s = await sampler(dir, proc);
  // one interval later: the kernel moved some counters
  editTable(path.join(proc, 'net/netstat'), 'TcpExt', 'ListenOverflows', (v) => v + 5n);
  editTable(path.join(proc, 'net/netstat'), 'TcpExt', 'TCPSynRetrans', (v) => v + 2n);
  editTable(path.join(proc, 'net/snmp'), 'Tcp', 'OutRsts', (v) => v + 3n);
  editTable(path.join(proc, 'net/snmp'), 'Tcp', 'CurrEstab', () => 7n);
  const stat = fs.readFileSync(path.join(proc, 'stat'), 'latin1').split('\n');
  const cpu0 = stat[1].split(' ');
  cpu0[1] = String(Number(cpu0[1]) + 1); // user +1 jiffy = 10 ms
  cpu0[8] = String(Number(cpu0[8]) + 1); // steal +1 jiffy
  stat[1] = cpu0.join(' ');
  fs.writeFileSync(path.join(proc, 'stat'), stat.join('\n'));
  fs.writeFileSync(
    path.join(proc, 'pressure/cpu'),
    fs.readFileSync(path.join(proc, 'pressure/cpu'), 'latin1').replace(/total=(\d+)/, (_, v) => `total=${Number(v) + 1500}`),
  );
  fs.writeFileSync(path.join(proc, 'net/sockstat'), fs.readFileSync(path.join(proc, 'net/sockstat'), 'latin1').replace(/tw \d+/, 'tw 10'));
  fs.writeFileSync(
    path.join(proc, 'softirqs'),
    fs
      .readFileSync(path.join(proc, 'softirqs'), 'latin1')
      .replace(/(NET_RX:\s+)(\d+)(\s+)(\d+)/, (_, a, x, b, y) => `${a}${Number(x) + 4}${b}${Number(y) + 6}`),
  );
  s.sample(s.now());
  finish(s);
  const d = readProbes(dir);
  t.is(d.rows, 1);
  const v = (n: string): number => (d.get(n) as Float64Array)[0];
  t.is(v('TcpExt.ListenOverflows'), 5);
  t.is(v('TcpExt.TCPSynRetrans'), 2);
  t.is(v('Tcp.OutRsts'), 3);
  t.is(v('Tcp.RetransSegs'), 0);
  t.is(v('Tcp.CurrEstab'), 7);
  t.is(v('sockstat.TCP.tw'), 10);
  t.is(v('pressure.cpu.some'), 1500);
  t.is(v('softirq.NET_RX'), 10);
  t.is(v('softirq.NET_RX.cpu1'), 6);
  // 1 jiffy (10 ms) over dt; the all-CPU line did not move, cpu0 did
  const dt = d.dt[0];
  t.true(Math.abs(v('cpu0.user') - 10e6 / dt) < 1e-9);
  t.true(Math.abs(v('cpu0.steal') - 10e6 / dt) < 1e-9);
  t.is(v('cpu.user'), 0);
  t.is(v('stat.procs_running'), 1);
});

test('the all-CPU line is a fraction of all CPUs', async (t) => {
  const proc = copyFixture(t, 'vm-2cpu');
  const dir = runDir(t);
  const s = await sampler(dir, proc, { sources: ['stat'] });
  const stat = fs.readFileSync(path.join(proc, 'stat'), 'latin1').split('\n');
  const all = stat[0].split(' '); // "cpu  74347 ..." (two spaces: field 1 is empty)
  all[2] = String(Number(all[2]) + 4); // user +4 jiffies across 2 CPUs
  stat[0] = all.join(' ');
  fs.writeFileSync(path.join(proc, 'stat'), stat.join('\n'));
  s.sample(s.now());
  finish(s);
  const d = readProbes(dir);
  t.true(Math.abs((d.get('cpu.user') as Float64Array)[0] - 40e6 / 2 / d.dt[0]) < 1e-9);
});

test('a kernel without /proc/pressure: pressure skipped with the reason, the rest samples', async (t) => {
  const dir = runDir(t);
  const s = await sampler(dir, path.join(FIX, 'no-pressure'));
  t.deepEqual(
    s.skipped.map((k) => k.probe),
    ['pressure.cpu', 'pressure.io', 'pressure.memory'],
  );
  for (const k of s.skipped) t.regex(k.reason, /pressure\/\w+ does not exist/);
  t.true(s.columns.index.has('TcpExt.ListenOverflows'));
  s.sample(s.now());
  finish(s);
  const d = readProbes(dir);
  t.is(d.meta.skipped.length, 3);
  t.false(d.has('pressure.cpu.some'));
});

test('a netstat with counters we do not know: every one of them becomes a column', async (t) => {
  const s = await sampler(runDir(t), path.join(FIX, 'extra-counters'));
  for (const n of [
    'TcpExt.TCPFutureCounter',
    'TcpExt.TCPAnotherNewOne',
    'FutureExt.AlphaCount',
    'FutureExt.BetaCount',
    'Tcp.FutureTcpField',
    'TcpExt.ListenOverflows',
  ]) {
    t.true(s.columns.index.has(n), n);
  }
  // a value past 2^32 (split hi/lo) reads exactly
  const c = s.columns.index.get('TcpExt.TCPAnotherNewOne') as number;
  // after the baseline read, its values are the previous ones
  t.is(s.columns.prevHi[c] * 2 ** 32 + s.columns.prevLo[c], 123456789012345);
  finish(s);
});

test('new counters appearing mid-run (kernel module, IcmpMsg type): new columns from that row, no misread', async (t) => {
  const proc = copyFixture(t, 'vm-2cpu');
  const dir = runDir(t);
  const s = await sampler(dir, proc, { sources: ['netstat', 'snmp'] });
  s.sample(s.now());
  fs.copyFileSync(path.join(FIX, 'extra-counters/net/netstat'), path.join(proc, 'net/netstat'));
  editTable(path.join(proc, 'net/netstat'), 'TcpExt', 'ListenOverflows', (v) => v + 1n);
  s.sample(s.now());
  s.sample(s.now());
  finish(s);
  const d = readProbes(dir);
  t.is(d.rows, 3);
  const alpha = d.columns.find((c) => c.name === 'FutureExt.AlphaCount');
  t.is(alpha?.fromRow, 1);
  const a = d.get('FutureExt.AlphaCount') as Float64Array;
  t.true(Number.isNaN(a[0])); // did not exist
  t.true(Number.isNaN(a[1])); // first value: no delta yet
  t.is(a[2], 0);
  t.deepEqual(Array.from(d.get('TcpExt.ListenOverflows') as Float64Array), [0, 1, 0]);
  t.true(d.meta.notes.some((n) => /netstat: layout changed 1 time/.test(n)));
});

test('a CPU going offline mid-run: its columns read NaN, the others go on', async (t) => {
  const proc = copyFixture(t, 'vm-2cpu');
  const dir = runDir(t);
  const s = await sampler(dir, proc, { sources: ['stat'] });
  const stat = fs.readFileSync(path.join(proc, 'stat'), 'latin1');
  fs.writeFileSync(path.join(proc, 'stat'), stat.replace(/^cpu1 .*\n/m, ''));
  s.sample(s.now());
  finish(s);
  const d = readProbes(dir);
  t.true(Number.isNaN((d.get('cpu1.user') as Float64Array)[0]));
  t.is((d.get('cpu0.user') as Float64Array)[0], 0);
  t.is((d.get('stat.ctxt') as Float64Array)[0], 0);
});

test('four CPUs: per-CPU columns for each, softirq sums over all', async (t) => {
  const proc = copyFixture(t, '4cpu');
  const dir = runDir(t);
  const s = await sampler(dir, proc, { sources: ['stat', 'softirqs'] });
  t.true(s.columns.index.has('cpu3.steal'));
  t.true(s.columns.index.has('softirq.NET_RX.cpu3'));
  fs.writeFileSync(path.join(proc, 'softirqs'), fs.readFileSync(path.join(proc, 'softirqs'), 'latin1').replace(/(NET_RX:.*) 204$/m, '$1 304'));
  s.sample(s.now());
  finish(s);
  const d = readProbes(dir);
  t.is(d.meta.cpus, 4);
  t.is((d.get('softirq.NET_RX.cpu3') as Float64Array)[0], 100);
  t.is((d.get('softirq.NET_RX') as Float64Array)[0], 100);
  // per-CPU columns off: sums still there, per-CPU ones not written
  const s2 = await Sampler.create({ runDir: runDir(t), t0: T0, intervalNs: 20e6, procRoot: proc, clkTck: 100, perCpu: false, sources: ['stat', 'softirqs'] });
  const names = s2.columns.outputs.map((c) => c.name);
  t.true(names.includes('softirq.NET_RX'));
  t.false(names.includes('softirq.NET_RX.cpu3'));
  t.false(names.includes('cpu3.user'));
  t.true(names.includes('cpu.user'));
  finish(s2);
});

test('/proc/PID files: stat (comm with spaces and parens), status, schedstat', (t) => {
  const proc = copyFixture(t, 'vm-2cpu');
  const stat = fs.readFileSync(path.join(proc, '4242/stat'), 'latin1');
  // utime 1234, stime 567 (fields 14, 15), majflt 9 (field 12), in a comm that would fool a split on spaces
  const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  rest[9] = '9';
  rest[11] = '1234';
  rest[12] = '567';
  fs.writeFileSync(path.join(proc, '4242/stat'), `4242 (node (worker) 1) ${rest.join(' ')}`);
  const cols = new Columns();
  const p = new ProcessProbe('server', 4242, 'server', proc);
  p.register(cols, 0, 100);
  t.true(p.sample(cols, 0));
  const raw = (f: string): number => cols.raw(cols.index.get(`proc.server.${f}`) as number);
  t.is(raw('utime'), 1234);
  t.is(raw('stime'), 567);
  t.is(raw('majflt'), 9);
  const status = fs.readFileSync(path.join(proc, '4242/status'), 'latin1');
  t.is(raw('voluntary_ctxt_switches'), Number(/\nvoluntary_ctxt_switches:\s+(\d+)/.exec(status)?.[1]));
  t.is(raw('nonvoluntary_ctxt_switches'), Number(/nonvoluntary_ctxt_switches:\s+(\d+)/.exec(status)?.[1]));
  const [run, wait, slices] = fs.readFileSync(path.join(proc, '4242/schedstat'), 'latin1').trim().split(' ').map(Number);
  t.is(raw('run_ns'), run);
  t.is(raw('wait_ns'), wait);
  t.is(raw('timeslices'), slices);
  // a zombie is gone
  fs.writeFileSync(path.join(proc, '4242/stat'), `4242 (node) Z ${rest.slice(1).join(' ')}`);
  t.false(p.sample(cols, 1));
  t.true(p.gone);
  t.is(cols.outputs.find((c) => c.name === 'proc.server.utime')?.toRow, 1);
});

test('/proc/net/tcp: the inode of a listening socket by port', (t) => {
  t.deepEqual(listeningInodes(2024, path.join(FIX, 'vm-2cpu')), ['39']);
  t.deepEqual(listeningInodes(2025, path.join(FIX, 'vm-2cpu')), []);
});

test('template: numbers glued to names stay names; signs, fractions, 64-bit values; any change is caught', (t) => {
  const text = 'cpu0 12 -1\navg10=2.30 total=18446744073709551615\nIcmp6InType133 7\n  pad   9\n';
  const buf = Buffer.from(text, 'latin1');
  const tok = tokenize(buf, buf.length);
  const words = tok.lines.map((l) => l.map((x) => `${x.kind}:${x.text}`).join(' '));
  t.deepEqual(words, ['word:cpu0 num:12 num:-1', 'word:avg10= num:2.30 word:total= num:18446744073709551615', 'word:Icmp6InType133 num:7', 'word:pad num:9']);
  const cols = new Columns();
  const slot = Array.from({ length: tok.template.slots }, (_, i) => cols.ensure({ name: `s${i}`, kind: 'gauge', unit: '', source: 't' }, 0));
  const bound = bindTemplate(tok.template, slot);
  t.true(match(bound, buf, buf.length, cols.curHi, cols.curLo, cols.curOk));
  t.is(cols.raw(slot[0]), 12);
  t.is(cols.raw(slot[1]), -1);
  t.is(cols.raw(slot[2]), 2.3);
  t.is(cols.curHi[slot[3]], 4294967295);
  t.is(cols.curLo[slot[3]], 4294967295);
  // wider numbers and the padding next to numbers may change
  const wider = Buffer.from('cpu0  123456 -1\navg10=12.30 total=5\nIcmp6InType133 70\n  pad 9\n', 'latin1');
  t.true(match(bound, wider, wider.length, cols.curHi, cols.curLo, cols.curOk));
  t.is(cols.raw(slot[0]), 123456);
  // a renamed field, a missing number, an extra line: no match
  for (const bad of [
    'cpu1 12 -1\navg10=2.30 total=5\nIcmp6InType133 7\n  pad   9\n',
    'cpu0 12\navg10=2.30 total=5\nIcmp6InType133 7\n  pad   9\n',
    text + 'extra 1\n',
  ]) {
    const b = Buffer.from(bad, 'latin1');
    t.false(match(bound, b, b.length, cols.curHi, cols.curLo, cols.curOk), bad);
  }
});
