import test from 'ava';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { readProbes } from '../../probes/read.ts';
import { startProbes } from '../../probes/run-probes.ts';

// The probes in a network namespace of the test's own: known events move
// known counters of that namespace, and nothing else moves them. A connect
// to a closed port is answered by a RST (Tcp.OutRsts) and fails
// (Tcp.AttemptFails); a listener with backlog 1 that never accepts
// overflows its accept queue (TcpExt.ListenOverflows), which the
// listen-queue probe sees full: depth = limit + 1.

const unavailable = ((): string | null => {
  if (typeof process.getuid !== 'function' || process.getuid() !== 0) return 'not root: cannot create network namespaces';
  const ip = spawnSync('ip', ['-V']);
  if (ip.error) return `the ip command is missing (${(ip.error as NodeJS.ErrnoException).code})`;
  return null;
})();

// Listens on 127.0.0.1 with backlog 1, prints the port, then blocks its
// event loop so that Node never accepts: connections pile up in the kernel.
const LISTENER = `
const net = require('node:net');
const s = net.createServer().listen({ host: '127.0.0.1', port: 0, backlog: 1 }, () => {
  process.stdout.write(s.address().port + '\\n', () => Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 15000));
});`;

// One connect to a closed port, then N at once to the listener; after 1.5 s
// (one SYN retransmission) everything is closed.
const CONNECTOR = `
const net = require('node:net');
const [port, n] = process.argv.slice(1).map(Number);
const refused = new Promise((r) => net.connect(1, '127.0.0.1').on('error', (e) => r(e.code)));
refused.then((code) => {
  const socks = [];
  let connected = 0;
  for (let i = 0; i < n; i++) {
    const c = net.connect(port, '127.0.0.1', () => connected++);
    c.on('error', () => {});
    socks.push(c);
  }
  setTimeout(() => {
    for (const c of socks) c.destroy();
    process.stdout.write(JSON.stringify({ refused: code, connected }) + '\\n');
  }, 1500);
});`;

const inNs = (ns: string, args: string[]): ChildProcess => spawn('ip', ['netns', 'exec', ns, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });

const firstLine = (c: ChildProcess): Promise<string> =>
  new Promise((resolve, reject) => {
    let out = '';
    let err = '';
    c.stdout?.on('data', (d: Buffer) => {
      out += d.toString();
      if (out.includes('\n')) resolve(out.split('\n')[0]);
    });
    c.stderr?.on('data', (d: Buffer) => (err += d.toString()));
    c.on('exit', (code) => reject(new Error(`exited ${code} before answering: ${err.trim()}`)));
    setTimeout(() => reject(new Error('no answer within 15 s')), 15_000).unref();
  });

test('in a namespace of its own: closed-port connect moves OutRsts/AttemptFails, an overflowing accept queue moves ListenOverflows and shows full', async (t) => {
  if (unavailable) {
    t.log(`skipped: ${unavailable}`);
    t.pass();
    return;
  }
  const ns = `sstest-${randomBytes(4).toString('hex')}`;
  const add = spawnSync('ip', ['netns', 'add', ns], { encoding: 'utf8' });
  if (add.status !== 0) {
    t.log(`skipped: ip netns add failed: ${add.stderr.trim()}`);
    t.pass();
    return;
  }
  const children: ChildProcess[] = [];
  t.teardown(() => {
    // ours, by pid
    for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
    spawnSync('ip', ['netns', 'del', ns]);
  });
  t.is(spawnSync('ip', ['-n', ns, 'link', 'set', 'lo', 'up']).status, 0);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sstest-netns-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));

  const listener = inNs(ns, [process.execPath, '-e', LISTENER]);
  children.push(listener);
  const port = Number(await firstLine(listener));
  t.true(port > 0);

  const probes = await startProbes({
    runDir: dir,
    t0: process.hrtime.bigint(),
    intervalNs: 20e6,
    netns: ns,
    listener: { port },
    processes: [{ role: 'server', pid: listener.pid as number }],
    sources: ['stat', 'snmp', 'netstat', 'sockstat'],
  });
  const listenSkipped = probes.skipped.find((s) => s.probe === 'listen');
  const connector = inNs(ns, [process.execPath, '-e', CONNECTOR, String(port), '6']);
  children.push(connector);
  const outcome = JSON.parse(await firstLine(connector)) as { refused: string; connected: number };
  t.is(outcome.refused, 'ECONNREFUSED');
  // The server goes away: the probe's duplicate of its socket must not keep the port listening.
  const listening = (): boolean => {
    const tcp = spawnSync('ip', ['netns', 'exec', ns, 'cat', '/proc/net/tcp'], { encoding: 'utf8' }).stdout;
    const hexPort = `:${port.toString(16).toUpperCase().padStart(4, '0')}`;
    return tcp.split('\n').some((l) => l.split(/\s+/)[2]?.endsWith(hexPort) && l.split(/\s+/)[4] === '0A');
  };
  t.true(listening());
  listener.kill('SIGKILL'); // ours, by pid
  await new Promise((r) => setTimeout(r, 1500));
  const stillListening = listening();
  const r = await probes.stop();
  t.is(r.stopReason, 'stop');
  const d = readProbes(dir);
  t.is(d.meta.netns, ns);
  // the reads as made (counters read every 5th sample are spread over its rows by get(), in floating point)
  const total = (name: string): number => (d.raw(name) as Float64Array).reduce((s, v) => (v === v ? s + v : s), 0);
  const max = (name: string): number => (d.get(name) as Float64Array).reduce((m, v) => (v > m ? v : m), -Infinity);
  t.log(
    `in ${ns}: OutRsts ${total('Tcp.OutRsts')}, AttemptFails ${total('Tcp.AttemptFails')}, ListenOverflows ${total('TcpExt.ListenOverflows')}, ` +
      `ListenDrops ${total('TcpExt.ListenDrops')}, TCPSynRetrans ${total('TcpExt.TCPSynRetrans')}, connected ${outcome.connected}/6`,
  );
  t.true(total('Tcp.OutRsts') >= 1);
  t.true(total('Tcp.AttemptFails') >= 1);
  t.true(total('Tcp.ActiveOpens') >= 7);
  t.true(total('TcpExt.ListenOverflows') >= 1);
  t.true(total('TcpExt.ListenDrops') >= 1);
  if (listenSkipped) {
    t.log(`listen-queue probe skipped: ${listenSkipped.reason}`);
  } else {
    t.is(max('listen.limit'), 1);
    t.is(max('listen.depth'), max('listen.limit') + 1); // the kernel lets one more in than the backlog
    t.is(d.meta.listener?.pid, listener.pid);
    t.false(stillListening, 'the port stayed in LISTEN after its server died');
    t.true(d.meta.notes.some((n) => /owner of the listening socket\) exited/.test(n)));
    t.true(Number.isNaN((d.get('listen.depth') as Float64Array)[d.rows - 1]));
  }
});
