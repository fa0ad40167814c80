// --target and its loopback guard, and protocol templates (--request,
// --response-until) against a small line server of the test's own on loopback.
import test from 'ava';
import { createServer, type Server, type Socket } from 'node:net';
import { join } from 'node:path';
import { readFileSync, writeFileSync } from 'node:fs';
import { DEFAULTS, resolveConfig } from '../../harness/config.ts';
import { parseResponseUntil, unescapeRequest } from '../../harness/workload/request-template.ts';
import { COMPLETE, EXTRA, MORE, ResponseRule } from '../../harness/workload/response-rule.ts';
import { UserError } from '../../lib/errors.ts';
import { randomBytes } from 'node:crypto';
import { execa, execaSync } from 'execa';
import { assertAccounting, lines, readManifestFile, readSummaryFile, ROOT, sockspike, tempDir } from '../helpers/cli.ts';
import { netnsFor, netnsUnavailable } from '../helpers/netns.ts';
import { hasCommand } from '../helpers/processes.ts';

test('--target outside loopback is refused with one line; --allow-remote passes validation', async (t) => {
  const err = t.throws(() => resolveConfig({ ...DEFAULTS, target: '10.1.2.3:80' }), { instanceOf: UserError });
  t.regex(err!.message, /^--target 10\.1\.2\.3: only loopback addresses .* add --allow-remote/);
  const r = await sockspike(['run', '--target', '10.1.2.3:80', '--duration', '1s', '--out', join(tempDir(t), 'run')]);
  t.is(r.exitCode, 2);
  const out = lines(r.stderr);
  t.is(out.length, 1);
  t.regex(out[0], /^sockspike: --target 10\.1\.2\.3: only loopback addresses/);
  // no traffic leaves the host in this test: only the validation is checked
  const cfg = resolveConfig({ ...DEFAULTS, target: '10.1.2.3:80', allowRemote: true });
  t.is(cfg.host, '10.1.2.3');
  t.is(cfg.port, 80);
  t.deepEqual(cfg.external, { kind: 'target', allowRemote: true });
  for (const ok of ['127.0.0.1:80', '127.9.9.9:80', 'localhost:80', '[::1]:80']) t.notThrows(() => resolveConfig({ ...DEFAULTS, target: ok }), ok);
  for (const bad of ['192.168.1.1:80', '[2001:db8::1]:80', 'example.com:80'])
    t.throws(() => resolveConfig({ ...DEFAULTS, target: bad }), { instanceOf: UserError }, bad);
  t.throws(() => resolveConfig({ ...DEFAULTS, target: '127.0.0.1' }), { message: /use HOST:PORT/ });
  t.throws(() => resolveConfig({ ...DEFAULTS, target: '127.0.0.1:80', serverCmd: 'x' }), { message: /not both/ });
  t.throws(() => resolveConfig({ ...DEFAULTS, allowRemote: true }), { message: /only applies to --target/ });
});

test('request escapes and response rules', (t) => {
  t.deepEqual(unescapeRequest('GET / HTTP/1.0\\r\\n\\r\\n'), Buffer.from('GET / HTTP/1.0\r\n\r\n'));
  t.deepEqual(unescapeRequest('a\\tb\\\\c\\x00\\xfF'), Buffer.from([0x61, 9, 0x62, 0x5c, 0x63, 0, 0xff]));
  t.throws(() => unescapeRequest('\\q'), { message: /unknown escape/ });
  t.throws(() => unescapeRequest('\\x4'), { message: /two hex digits/ });
  const d = new ResponseRule(parseResponseUntil('delimiter:\\r\\n\\r\\n'));
  t.is(d.feed(Buffer.from('HTTP/1.0 200 OK\r\nA: b\r')), MORE);
  t.is(d.feed(Buffer.from('\n\r')), MORE);
  t.is(d.feed(Buffer.from('\n')), COMPLETE, 'a delimiter split over three chunks is found');
  d.reset();
  t.is(d.feed(Buffer.from('x\r\n\r\nmore')), EXTRA, 'bytes after the delimiter');
  const b = new ResponseRule(parseResponseUntil('bytes:5'));
  t.is(b.feed(Buffer.from('abc')), MORE);
  t.is(b.feed(Buffer.from('de')), COMPLETE);
  b.reset();
  t.is(b.feed(Buffer.from('abcdef')), EXTRA);
  t.throws(() => parseResponseUntil('lines:3'), { message: /close, bytes:N or delimiter:STR/ });
  t.throws(() => resolveConfig({ ...DEFAULTS, target: '127.0.0.1:80', request: 'x', responseUntil: 'close' }), {
    message: /--response-until close ends the connection with the first answer: use --exchanges 1/,
  });
  t.throws(() => resolveConfig({ ...DEFAULTS, target: '127.0.0.1:80', request: 'x' }), { message: /needs --response-until/ });
  t.throws(() => resolveConfig({ ...DEFAULTS, request: 'x', responseUntil: 'bytes:1' }), { message: /^--request drives your own server: add --server-cmd/ });
});

/** A line server: answers each "PING n\r\n" with "PONG n\r\n" (or, with `stall`, half a line and then nothing). */
async function lineServer(t: import('ava').ExecutionContext, stall = false): Promise<number> {
  const socks = new Set<Socket>();
  const srv: Server = createServer((s) => {
    socks.add(s);
    s.on('close', () => socks.delete(s));
    s.on('error', () => {});
    let buf = '';
    s.on('data', (d) => {
      buf += d.toString('latin1');
      for (let i = buf.indexOf('\r\n'); i >= 0; i = buf.indexOf('\r\n')) {
        const line = buf.slice(0, i);
        buf = buf.slice(i + 2);
        s.write(stall ? 'PO' : line.replace('PING', 'PONG') + '\r\n');
      }
    });
  });
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  t.teardown(() => {
    for (const s of socks) s.destroy();
    srv.close();
  });
  return (srv.address() as { port: number }).port;
}

test('--target with a template: three exchanges per connection, each complete at its delimiter', async (t) => {
  const port = await lineServer(t);
  const dir = join(tempDir(t), 'run');
  const r = await sockspike([
    'run',
    '--target',
    `127.0.0.1:${port}`,
    '--request',
    'PING 1\\r\\n',
    '--response-until',
    'delimiter:\\r\\n',
    '--exchanges',
    '3',
    '--transactions',
    '300',
    '--out',
    dir,
    '--no-progress',
    '--no-probes',
  ]);
  t.is(r.exitCode, 0, String(r.stderr));
  const s = readSummaryFile(dir);
  assertAccounting(t, s);
  t.is(s.transactions.attempted, 300);
  t.is(s.transactions.ok, 300, JSON.stringify(s.transactions.errors));
  t.is(s.latencyUs.exchanges.length, 3);
  const m = readManifestFile(dir);
  t.deepEqual(m.config.external, { kind: 'target', allowRemote: false });
  t.is(m.processes.filter((p) => p.role === 'server').length, 0, 'nothing started for a target');
  t.true(
    m.notes.some((n) => /not checked byte for byte, only for completeness: complete at the delimiter/.test(n)),
    m.notes.join(' | '),
  );
  const report = readFileSync(join(dir, 'report.md'), 'utf8');
  t.regex(report, /already running server, --target/);
  t.regex(report, /not checked byte for byte/);
});

test('a templated answer not complete within --io-timeout is a counted timeout', async (t) => {
  const port = await lineServer(t, true);
  const dir = join(tempDir(t), 'run');
  const r = await sockspike([
    'run',
    '--target',
    `127.0.0.1:${port}`,
    '--request',
    'PING 1\\r\\n',
    '--response-until',
    'delimiter:\\r\\n',
    '--exchanges',
    '1',
    '--transactions',
    '4',
    '--io-timeout',
    '300ms',
    '--out',
    dir,
    '--no-progress',
    '--no-probes',
  ]);
  t.is(r.exitCode, 0, String(r.stderr));
  const s = readSummaryFile(dir);
  assertAccounting(t, s);
  t.is(s.transactions.attempted, 4);
  t.is(s.transactions.timedOut, 4);
});

test('--target where nothing listens: one line, exit 2', async (t) => {
  // port 1 (tcpmux): nothing listens there on a test machine
  const r0 = await sockspike(['run', '--target', '127.0.0.1:1', '--duration', '1s', '--out', join(tempDir(t), 'run')]);
  t.is(r0.exitCode, 2);
  t.deepEqual(lines(r0.stderr), ['sockspike: --target 127.0.0.1:1 does not accept connections (refused or no answer within 5 s): is the server running?']);
});

test('--target --allow-remote drives a non-loopback address inside a namespace of the test own', async (t) => {
  const why = netnsUnavailable() ?? (hasCommand('python3') ? null : 'python3 is not installed');
  if (why !== null) return (t.log(`skipped: ${why}`), t.pass());
  const ns = netnsFor(t);
  const tag = randomBytes(3).toString('hex');
  const [hostIf, nsIf] = [`sv${tag}`, `sp${tag}`];
  const net = `10.213.${randomBytes(1)[0]}`;
  const ip = (...args: string[]): void => {
    execaSync('ip', args, { timeout: 10_000 });
  };
  ip('link', 'add', hostIf, 'type', 'veth', 'peer', 'name', nsIf);
  t.teardown(() => {
    try {
      execaSync('ip', ['link', 'del', hostIf], { timeout: 10_000, reject: false });
    } catch {
      // gone with the namespace
    }
  });
  ip('link', 'set', nsIf, 'netns', ns);
  ip('addr', 'add', `${net}.1/30`, 'dev', hostIf);
  ip('link', 'set', hostIf, 'up');
  ip('-n', ns, 'addr', 'add', `${net}.2/30`, 'dev', nsIf);
  ip('-n', ns, 'link', 'set', nsIf, 'up');
  // the reported-case server inside the namespace, on its veth address (ip netns exec execs it: same pid)
  const server = execa(
    'ip',
    ['netns', 'exec', ns, 'python3', join(ROOT, 'fixtures', 'servers', 'reported-case-server.py'), '--host', `${net}.2`, '--port', '18080', '--backlog', '64'],
    {
      reject: false,
      stdio: 'ignore',
    },
  );
  t.teardown(() => {
    if (server.pid !== undefined && server.exitCode === null) process.kill(server.pid, 'SIGKILL');
  });
  const target = `${net}.2:18080`;
  const refused = await sockspike(['run', '--target', target, '--transactions', '10', '--out', join(tempDir(t), 'refused')]);
  t.is(refused.exitCode, 2, 'without --allow-remote: refused');
  t.regex(lines(refused.stderr)[0], /only loopback addresses/);
  const dir = join(tempDir(t), 'run');
  let r = await sockspike(['run', '--target', target, '--allow-remote', '--transactions', '50', '--out', dir, '--no-progress', '--no-probes']);
  for (let i = 0; i < 20 && r.exitCode === 2 && /does not accept connections/.test(String(r.stderr)); i++) {
    await new Promise((res) => setTimeout(res, 250)); // python still starting
    r = await sockspike(['run', '--target', target, '--allow-remote', '--transactions', '50', '--out', dir, '--no-progress', '--no-probes']);
  }
  t.is(r.exitCode, 0, String(r.stderr));
  const s = readSummaryFile(dir);
  t.is(s.transactions.ok, 50, JSON.stringify(s.transactions.errors));
  t.deepEqual(readManifestFile(dir).config.external, { kind: 'target', allowRemote: true });
});

test('settings of the built-in server are refused with an external one', (t) => {
  t.throws(() => resolveConfig({ ...DEFAULTS, serverCmd: 'x {port}', backlog: '1' }), {
    message: /--backlog sets the built-in server's listen backlog: with --server-cmd/,
  });
  t.throws(() => resolveConfig({ ...DEFAULTS, target: '127.0.0.1:80', acceptDelay: '5ms' }), { message: /--accept-delay .* with --target/ });
  t.notThrows(() => resolveConfig({ ...DEFAULTS, serverCmd: 'x {port}' }));
});

test('--request-file with --response-until bytes:N', async (t) => {
  const port = await lineServer(t);
  const base = tempDir(t);
  const req = join(base, 'ping.bin');
  writeFileSync(req, 'PING 42\r\n');
  const dir = join(base, 'run');
  const r = await sockspike([
    'run',
    '--target',
    `localhost:${port}`,
    '--request-file',
    req,
    '--response-until',
    'bytes:9',
    '--exchanges',
    '2',
    '--transactions',
    '100',
    '--out',
    dir,
    '--no-progress',
    '--no-probes',
  ]);
  t.is(r.exitCode, 0, String(r.stderr));
  const s = readSummaryFile(dir);
  assertAccounting(t, s);
  t.is(s.transactions.ok, 100, JSON.stringify(s.transactions.errors));
  const cfg = readManifestFile(dir).config;
  t.is(cfg.host, '127.0.0.1');
  t.is(cfg.requestBytes, 9);
  t.is(cfg.responseBytes, 9);
  t.is(cfg.template?.source, `--request-file ${req}`);
  // one byte short of the answer: every exchange times out
  const dir2 = join(base, 'short');
  const r2 = await sockspike([
    'run',
    '--target',
    `127.0.0.1:${port}`,
    '--request-file',
    req,
    '--response-until',
    'bytes:10',
    '--exchanges',
    '1',
    '--transactions',
    '3',
    '--io-timeout',
    '200ms',
    '--out',
    dir2,
    '--no-progress',
    '--no-probes',
  ]);
  t.is(r2.exitCode, 0, String(r2.stderr));
  t.is(readSummaryFile(dir2).transactions.timedOut, 3);
});
