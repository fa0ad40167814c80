// The native addon (native/sockspike.c) through its wrapper (lib/native.ts).
// Real sockets on 127.0.0.1 only; every test closes what it opens.
import test, { type ExecutionContext } from 'ava';
import { execFile } from 'node:child_process';
import { once } from 'node:events';
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import { UserError } from '../../lib/errors.ts';
import {
  DEFAULT_ADDON_PATH,
  TCPI,
  TCPI_LENGTH,
  fdOf,
  loadAddon,
  native,
  nativeUnavailable,
  newTcpInfoBuffer,
  setSocketLinger,
  type NativeAddon,
} from '../../lib/native.ts';

const HOST = '127.0.0.1';
const EAGAIN = 11;
const EBADF = 9;
const TCP_ESTABLISHED = 1;
const TCP_LISTEN = 10;
const wrapperPath = fileURLToPath(new URL('../../lib/native.ts', import.meta.url));

// Tests that need the addon; a missing addon fails 'the addon loads' once
// instead of every test (unless it was disabled on purpose).
const nt = native ? test.serial : test.skip;
const n = (): NativeAddon => {
  if (!native) throw new Error(`native addon unavailable: ${nativeUnavailable}`);
  return native;
};

// ------------------------------------------------------------------ helpers

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Resolve with the first emission of event, or reject after ms. */
const onceWithin = async <T = unknown[]>(emitter: NodeJS.EventEmitter, event: string, ms = 3000): Promise<T> =>
  (await once(emitter, event, { signal: AbortSignal.timeout(ms) })) as T;

/** Poll cond every 5 ms until true or ms elapse. */
const waitFor = async (cond: () => boolean, ms = 2000): Promise<boolean> => {
  const until = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > until) return false;
    await sleep(5);
  }
  return true;
};

/** A Node server on 127.0.0.1:0, closed at teardown together with every socket it accepted. */
const nodeServer = async (t: ExecutionContext, onConnection: (s: net.Socket) => void, backlog?: number): Promise<{ server: net.Server; port: number }> => {
  const accepted = new Set<net.Socket>();
  const server = net.createServer((s) => {
    accepted.add(s);
    s.on('close', () => accepted.delete(s));
    onConnection(s);
  });
  t.teardown(() => {
    for (const s of accepted) s.destroy();
    server.close();
  });
  server.listen({ port: 0, host: HOST, backlog });
  await onceWithin(server, 'listening');
  return { server, port: (server.address() as net.AddressInfo).port };
};

/** A connected client, destroyed at teardown. */
const connect = async (t: ExecutionContext, port: number): Promise<net.Socket> => {
  const c = net.connect(port, HOST);
  t.teardown(() => c.destroy());
  await onceWithin(c, 'connect');
  return c;
};

/** A raw listening fd from the addon, closed at teardown. */
const rawListener = (t: ExecutionContext, backlog: number): { fd: number; port: number } => {
  const fd = n().listen(HOST, 0, backlog);
  let open = true;
  t.teardown(() => {
    if (open) n().close(fd);
    open = false;
  });
  return { fd, port: n().localPort(fd) };
};

/** /proc/net/tcp entries (state as a number) for the connection between two local ports. */
const tcpEntries = (portA: number, portB: number): number[] => {
  const states: number[] = [];
  for (const line of readFileSync('/proc/net/tcp', 'utf8').split('\n').slice(1)) {
    const f = line.trim().split(/\s+/);
    if (f.length < 4) continue;
    const lp = parseInt(f[1].split(':')[1], 16);
    const rp = parseInt(f[2].split(':')[1], 16);
    if ((lp === portA && rp === portB) || (lp === portB && rp === portA)) states.push(parseInt(f[3], 16));
  }
  return states;
};
const TIME_WAIT = 6;

const errCode = (e: unknown): string | undefined => (e as NodeJS.ErrnoException | undefined)?.code;

/** Run an ES module snippet in a child node (with tsx); resolve with its exit and output. */
const runChild = (
  code: string,
  env: Record<string, string> = {},
  ms = 10_000,
): Promise<{ code: number | null; signal: string | null; stdout: string; stderr: string }> =>
  new Promise((resolve) => {
    execFile(process.execPath, ['--import=tsx', '--input-type=module', '-e', code], { env: { ...process.env, ...env }, timeout: ms }, (err, stdout, stderr) => {
      const e = err as (Error & { code?: number | string; signal?: string }) | null;
      resolve({
        code: e ? (typeof e.code === 'number' ? e.code : null) : 0,
        signal: e?.signal ?? null,
        stdout,
        stderr,
      });
    });
  });

// ------------------------------------------------------------------ loading

(process.env.SOCKSPIKE_NO_NATIVE === '1' ? test.skip : test.serial)('the addon loads', (t) => {
  t.truthy(native, `native addon unavailable: ${nativeUnavailable} (build it with npm install)`);
  t.is(nativeUnavailable, null);
});

test.serial('loadAddon reports a missing or broken addon in one line, without throwing', (t) => {
  const dir = mkdtempSync(path.join(tmpdir(), 'sockspike-native-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));

  const missing = loadAddon(path.join(dir, 'nope.node'));
  t.is(missing.addon, null);
  t.regex(missing.reason ?? '', /not built .*nope\.node missing/);

  const garbage = path.join(dir, 'garbage.node');
  writeFileSync(garbage, 'this is not a shared object');
  const broken = loadAddon(garbage);
  t.is(broken.addon, null);
  t.regex(broken.reason ?? '', /^native addon did not load: /);
  t.false((broken.reason ?? '').includes('\n'));

  const hollow = path.join(dir, 'hollow.cjs');
  writeFileSync(hollow, 'module.exports = { setLinger() {} };');
  const stale = loadAddon(hollow);
  t.is(stale.addon, null);
  t.regex(stale.reason ?? '', /lacks getLinger, tcpInfo, .*pidfdGetfd/);

  if (native) {
    const good = loadAddon(DEFAULT_ADDON_PATH);
    t.truthy(good.addon);
    t.is(good.reason, null);
  }
});

test.serial('with the addon disabled the wrapper imports cleanly and helpers fail with a UserError', async (t) => {
  const r = await runChild(
    `import { native, nativeUnavailable, setSocketLinger } from ${JSON.stringify(wrapperPath)};
     import net from 'node:net';
     console.log(JSON.stringify({ native, nativeUnavailable }));
     try { setSocketLinger(new net.Socket(), true, 0); } catch (e) { console.log(e.name + ': ' + e.message); }`,
    { SOCKSPIKE_NO_NATIVE: '1' },
  );
  t.is(r.code, 0, r.stderr);
  const [first, second] = r.stdout.trim().split('\n');
  t.deepEqual(JSON.parse(first), { native: null, nativeUnavailable: 'native addon disabled (SOCKSPIKE_NO_NATIVE=1)' });
  t.is(second, 'UserError: SO_LINGER {1, 0} needs the native addon: native addon disabled (SOCKSPIKE_NO_NATIVE=1)');
  t.true(new UserError('x') instanceof Error);
});

// ------------------------------------------------------------------ fdOf

nt('fdOf finds the fd of a socket and a server, -1 when there is none', async (t) => {
  const { server } = await nodeServer(t, () => {});
  t.true(fdOf(server) >= 0);
  const idle = new net.Socket();
  t.is(fdOf(idle), -1);
  const c = await connect(t, (server.address() as net.AddressInfo).port);
  const fd = fdOf(c);
  t.true(fd >= 0);
  t.is(n().localPort(fd), c.localPort!);
  c.destroy();
  t.is(fdOf(c), -1);
});

// ------------------------------------------------------------------ tcpInfo

nt('tcpInfo on an ESTABLISHED client socket', async (t) => {
  const { port } = await nodeServer(t, (s) => s.pipe(s));
  const c = await connect(t, port);
  c.write('ping');
  await onceWithin(c, 'data');
  const info = newTcpInfoBuffer();
  t.is(info.length, TCPI_LENGTH);
  t.true(n().tcpInfo(fdOf(c), info));
  t.is(info[TCPI.STATE], TCP_ESTABLISHED);
  t.true(info[TCPI.RTT_US] > 0, `rtt_us ${info[TCPI.RTT_US]}`);
  t.true(info[TCPI.SND_MSS] > 0);
  t.true(info[TCPI.RTO_US] >= 200_000, `rto_us ${info[TCPI.RTO_US]}`); // TCP_RTO_MIN
  t.true(info[TCPI.SND_CWND] > 0);
  t.is(info[TCPI.TOTAL_RETRANS], 0);
});

nt('tcpInfo returns false on a bad fd and rejects a wrong buffer', (t) => {
  const info = newTcpInfoBuffer().fill(7);
  t.false(n().tcpInfo(999_999, info));
  t.true(
    info.every((v) => v === 7),
    'out untouched on failure',
  );
  const devnull = openSync('/dev/null', 'r');
  t.teardown(() => closeSync(devnull));
  t.false(n().tcpInfo(devnull, info));
  t.throws(() => n().tcpInfo(devnull, new Float64Array(TCPI_LENGTH) as unknown as Uint32Array), { instanceOf: TypeError });
  t.throws(() => n().tcpInfo(devnull, new Uint32Array(TCPI_LENGTH - 1)), { instanceOf: RangeError });
  t.throws(() => n().tcpInfo(-1, info), { instanceOf: RangeError });
});

nt('tcpInfo on a listener: accept-queue length in unacked, backlog in sacked', async (t) => {
  const BACKLOG = 5;
  const PENDING = 3;
  const { fd, port } = rawListener(t, BACKLOG);
  const clients = await Promise.all(Array.from({ length: PENDING }, () => connect(t, port)));
  const info = newTcpInfoBuffer();
  const queued = await waitFor(() => n().tcpInfo(fd, info) && info[TCPI.UNACKED] === PENDING);
  t.true(queued, `unacked ${info[TCPI.UNACKED]}`);
  t.is(info[TCPI.STATE], TCP_LISTEN);
  t.is(info[TCPI.UNACKED], PENDING);
  t.is(info[TCPI.SACKED], BACKLOG);
  for (const c of clients) c.destroy();
});

// ------------------------------------------------------------------ SO_LINGER

nt('setLinger {1, 0} then destroy: the peer sees ECONNRESET and no TIME_WAIT is left', async (t) => {
  let serverSide: net.Socket | undefined;
  let gotData = false;
  const { port } = await nodeServer(t, (s) => {
    serverSide = s;
    s.on('data', () => (gotData = true));
    s.on('error', () => {});
  });
  const c = await connect(t, port);
  const clientPort = c.localPort!;
  c.write('x');
  // Let the server read first: an RST that arrives together with unread data
  // is reported by Node as a clean end (see the test further down).
  t.true(await waitFor(() => gotData));
  const peer = serverSide!;
  const peerError = onceWithin<[Error]>(peer, 'error');
  setSocketLinger(c, true, 0);
  t.deepEqual(n().getLinger(fdOf(c)), { on: true, seconds: 0 });
  c.destroy();
  const [err] = await peerError;
  t.is(errCode(err), 'ECONNRESET');
  if (!peer.closed) await onceWithin(peer, 'close');
  t.deepEqual(tcpEntries(clientPort, port), [], 'nothing left of the connection, no TIME_WAIT');
});

nt('control: an ordinary client-first close leaves the client port in TIME_WAIT', async (t) => {
  const { port } = await nodeServer(t, (s) => s.resume());
  const c = await connect(t, port);
  const clientPort = c.localPort!;
  c.end();
  await onceWithin(c, 'close');
  t.true(await waitFor(() => tcpEntries(clientPort, port).includes(TIME_WAIT)), 'TIME_WAIT seen');
});

nt('setLinger with a timeout: set, read back, graceful close', async (t) => {
  let serverSide: net.Socket | undefined;
  const { port } = await nodeServer(t, (s) => {
    serverSide = s;
    s.resume();
  });
  const c = await connect(t, port);
  const fd = fdOf(c);
  n().setLinger(fd, true, 5);
  t.deepEqual(n().getLinger(fd), { on: true, seconds: 5 });
  n().setLinger(fd, false, 0);
  t.is(n().getLinger(fd).on, false);
  n().setLinger(fd, true, 2);
  c.write('bye');
  t.true(await waitFor(() => serverSide !== undefined));
  const ended = onceWithin(serverSide!, 'end');
  const t0 = performance.now();
  c.destroy(); // close(2) with linger 2 s: returns at once when nothing is unacknowledged
  t.true(performance.now() - t0 < 500);
  await ended; // a FIN, not an RST
  t.pass();
});

nt('setLinger errors carry the errno name', (t) => {
  const bad = t.throws(() => n().setLinger(999_999, true, 0));
  t.is(errCode(bad), 'EBADF');
  t.is((bad as NodeJS.ErrnoException).errno, -EBADF);
  t.is((bad as NodeJS.ErrnoException).syscall, 'setsockopt(SO_LINGER)');
  t.regex(bad?.message ?? '', /Bad file descriptor \(EBADF\)/);
  const devnull = openSync('/dev/null', 'r');
  t.teardown(() => closeSync(devnull));
  t.is(errCode(t.throws(() => n().setLinger(devnull, true, 0))), 'ENOTSOCK');
  t.throws(() => n().setLinger(devnull, true, -1), { instanceOf: RangeError });
  t.is(errCode(t.throws(() => n().getLinger(999_999))), 'EBADF');
});

nt('SO_LINGER with a timeout blocks close(2) even on a non-blocking socket (the event loop stalls)', async (t) => {
  let serverSide: net.Socket | undefined;
  const { port } = await nodeServer(t, (s) => {
    serverSide = s;
    s.pause(); // read nothing: the client's data stays unacknowledged in its send buffer
    s.on('error', () => {});
  });
  const c = await connect(t, port);
  n().setLinger(fdOf(c), true, 1);
  c.write(Buffer.alloc(16 << 20));
  t.true(await waitFor(() => serverSide !== undefined));
  await sleep(100);
  const t0 = performance.now();
  c.destroy();
  const blocked = performance.now() - t0;
  t.log(`destroy() with SO_LINGER {1, 1} and unsent data blocked the event loop for ${blocked.toFixed(0)} ms`);
  t.true(blocked >= 900 && blocked < 3000, `blocked ${blocked} ms`);
  serverSide!.destroy();
});

/** Connect to a raw listener, accept, wrap the fd in a net.Socket (both destroyed at teardown). */
const acceptPair = async (t: ExecutionContext, lfd: number, port: number) => {
  const client = net.connect(port, HOST);
  t.teardown(() => client.destroy());
  client.on('error', () => {});
  await onceWithin(client, 'connect');
  let fd = -EAGAIN;
  if (!(await waitFor(() => (fd = n().accept(lfd)) >= 0))) throw new Error(`accept: ${fd}`);
  const linger = n().getLinger(fd);
  const server = new net.Socket({ fd, readable: true, writable: true });
  t.teardown(() => server.destroy());
  server.on('error', () => {});
  return { client, server, linger };
};

/** How a client's read side ends: 'end' (FIN/EOF) or the error code. */
const clientOutcome = (c: net.Socket): Promise<{ data: string; end: string }> =>
  new Promise((resolve) => {
    let data = '';
    c.on('data', (d) => (data += String(d)));
    c.on('error', (e) => resolve({ data, end: errCode(e) ?? String(e) }));
    c.on('end', () => resolve({ data, end: 'end' }));
  });

nt("a listener's SO_LINGER {1, 0} is inherited by accepted sockets: their close sends an RST", async (t) => {
  for (const linger of [true, false]) {
    const { fd: lfd, port } = rawListener(t, 8);
    if (linger) n().setLinger(lfd, true, 0);
    const pair = await acceptPair(t, lfd, port);
    t.deepEqual(pair.linger, linger ? { on: true, seconds: 0 } : { on: false, seconds: 0 }, 'getLinger on the accepted fd');
    const outcome = clientOutcome(pair.client);
    pair.server.destroy(); // close(2)
    const result = await Promise.race([outcome, sleep(3000).then(() => ({ data: '', end: 'timeout' }))]);
    t.log(`listener SO_LINGER ${linger ? '{1, 0}' : 'off    '}: accepted socket's close -> client sees ${result.end}`);
    t.is(result.end, linger ? 'ECONNRESET' : 'end');
  }
});

nt('Node reports an RST that arrives with unread data as a clean end, not ECONNRESET', async (t) => {
  // The reported case: the server writes its answer and closes a socket that
  // inherited SO_LINGER {1, 0}. The kernel sends the data, then an RST; the
  // client's kernel moves the socket to CLOSE. When the client reads, libuv sees
  // POLLHUP after a partial read and reports EOF, so Node emits 'end'. Outcome
  // accounting from Node alone would therefore miss these resets; the kernel
  // state (TCP_INFO) and counters (TcpExt TCPAbortOn*) do show them.
  const { fd: lfd, port } = rawListener(t, 8);
  n().setLinger(lfd, true, 0);
  const { client, server } = await acceptPair(t, lfd, port);
  client.pause();
  server.write('answer');
  server.destroy();
  const info = newTcpInfoBuffer();
  const TCP_CLOSE = 7;
  t.true(await waitFor(() => n().tcpInfo(fdOf(client), info) && info[TCPI.STATE] === TCP_CLOSE), `state ${info[TCPI.STATE]}`);
  const outcome = clientOutcome(client);
  client.resume();
  const result = await Promise.race([outcome, sleep(3000).then(() => ({ data: '', end: 'timeout' }))]);
  t.log(`kernel state CLOSE (reset) with 'answer' unread -> Node: data ${JSON.stringify(result.data)}, then ${result.end}`);
  t.is(result.data, 'answer');
  t.is(result.end, 'end');
});

// ------------------------------------------------------------------ listen / accept / watchReadable

nt('accept returns -EAGAIN with nothing pending, -errno on a bad fd', (t) => {
  const { fd, port } = rawListener(t, 4);
  t.true(port > 0);
  t.is(n().accept(fd), -EAGAIN);
  t.is(n().accept(999_999), -EBADF);
  t.is(n().localPort(999_999), -EBADF);
});

nt('listen: EADDRINUSE, bad host, IPv6 literal', async (t) => {
  const { port } = await nodeServer(t, () => {});
  const inUse = t.throws(() => n().listen(HOST, port, 4));
  t.is(errCode(inUse), 'EADDRINUSE');
  t.is((inUse as NodeJS.ErrnoException).syscall, 'bind');
  t.throws(() => n().listen('localhost', 0, 4), { instanceOf: TypeError, message: /not an IPv4 or IPv6 literal/ });
  t.throws(() => n().listen(HOST, 70_000, 4), { instanceOf: RangeError });
  try {
    const fd6 = n().listen('[::1]', 0, 4);
    t.true(n().localPort(fd6) > 0);
    n().close(fd6);
  } catch (e) {
    t.log(`IPv6 loopback unavailable here (${errCode(e)}); skipped that part`);
  }
});

nt('listen + watchReadable + accept: the fd wrapped in net.Socket echoes and closes normally', async (t) => {
  const { fd: lfd, port } = rawListener(t, 16);
  const accepted: net.Socket[] = [];
  let wakeups = 0;
  let lastAccept = 0;
  const watch = n().watchReadable(lfd, () => {
    wakeups++;
    for (;;) {
      const fd = n().accept(lfd);
      lastAccept = fd;
      if (fd < 0) break;
      const s = new net.Socket({ fd, readable: true, writable: true });
      accepted.push(s);
      s.pipe(s); // echo; ends when the client ends
    }
  });
  t.teardown(() => {
    watch.stop();
    for (const s of accepted) s.destroy();
  });

  const c = await connect(t, port);
  const request = Buffer.alloc(3000, 'q'); // the reported case's message size
  let received = 0;
  c.on('data', (d: Buffer) => (received += d.length));
  c.write(request);
  t.true(await waitFor(() => received === request.length), `echoed ${received} of ${request.length}`);
  t.true(wakeups >= 1);
  t.is(lastAccept, -EAGAIN, 'the callback drained the queue');
  t.is(accepted.length, 1);
  const s = accepted[0];
  t.is(s.remotePort, c.localPort);
  t.is(s.localPort, port);
  const serverClosed = onceWithin(s, 'close');
  c.end();
  await onceWithin(c, 'close');
  await serverClosed;
  t.true(s.destroyed);
  watch.stop();
  watch.stop(); // idempotent
});

nt('watchReadable: bad fd, second watch on one fd, close() stops the watch', async (t) => {
  t.is(errCode(t.throws(() => n().watchReadable(999_999, () => {}))), 'EBADF');
  t.throws(() => n().watchReadable(0, 'nope' as unknown as () => void), { instanceOf: TypeError });
  const lfd = n().listen(HOST, 0, 4);
  const port = n().localPort(lfd);
  let calls = 0;
  const w = n().watchReadable(lfd, () => {
    calls++;
    while (n().accept(lfd) >= 0);
  });
  t.is(errCode(t.throws(() => n().watchReadable(lfd, () => {}))), 'EEXIST');
  n().close(lfd); // stops the watch first
  w.stop(); // still harmless
  t.is(errCode(t.throws(() => n().close(lfd))), 'EBADF');
  const c = net.connect(port, HOST);
  c.on('error', () => {}); // ECONNREFUSED: the listener is gone
  await Promise.race([new Promise((r) => c.on('close', r)), sleep(1000)]);
  c.destroy();
  t.is(calls, 0);
});

nt('watchReadable does not keep the process alive after stop() or close()', async (t) => {
  const r = await runChild(
    `import { native } from ${JSON.stringify(wrapperPath)};
     const a = native.listen('127.0.0.1', 0, 4);
     const b = native.listen('127.0.0.1', 0, 4);
     native.watchReadable(a, () => {}).stop();
     native.watchReadable(b, () => {});
     native.close(a);
     native.close(b);
     console.log('done');`,
    {},
    5000,
  );
  t.is(r.signal, null, 'the child had to be killed: a poll kept it alive');
  t.is(r.code, 0, r.stderr);
  t.is(r.stdout.trim(), 'done');
});

nt('an exception thrown by the watchReadable callback is an uncaught exception', async (t) => {
  const script = (handler: boolean) =>
    `import net from 'node:net';
     import { native } from ${JSON.stringify(wrapperPath)};
     const lfd = native.listen('127.0.0.1', 0, 4);
     ${handler ? `process.on('uncaughtException', (e) => { console.log('caught ' + e.message); w.stop(); native.close(lfd); c.destroy(); });` : ''}
     const w = native.watchReadable(lfd, () => { throw new Error('boom from watch callback'); });
     const c = net.connect(native.localPort(lfd), '127.0.0.1');
     c.on('error', () => {});`;
  const crashed = await runChild(script(false), {}, 5000);
  t.is(crashed.signal, null);
  t.not(crashed.code, 0);
  t.regex(crashed.stderr, /boom from watch callback/);
  const caught = await runChild(script(true), {}, 5000);
  t.is(caught.code, 0, caught.stderr);
  t.is(caught.stdout.trim(), 'caught boom from watch callback');
});

nt('a worker terminated with an active watch tears down cleanly', async (t) => {
  // Regression: the poll's close callback must run before the worker unloads the addon.
  for (let i = 0; i < 3; i++) {
    const worker = new Worker(
      `const n = require(${JSON.stringify(DEFAULT_ADDON_PATH)});
       const fd = n.listen('127.0.0.1', 0, 4);
       n.watchReadable(fd, () => {});
       require('node:worker_threads').parentPort.postMessage(fd);`,
      { eval: true },
    );
    const [fd] = await onceWithin<[number]>(worker, 'message');
    t.true(fd >= 0);
    await worker.terminate();
  }
  // A segfault would have taken this process down before here.
  const r = await runChild(
    `import { Worker } from 'node:worker_threads';
     const w = new Worker(\`const n = require(${JSON.stringify(DEFAULT_ADDON_PATH)}); n.watchReadable(n.listen('127.0.0.1', 0, 4), () => {}); require('node:worker_threads').parentPort.postMessage(1);\`, { eval: true, execArgv: [] });
     w.once('message', async () => { await w.terminate(); console.log('terminated'); });`,
  );
  t.is(r.signal, null);
  t.is(r.code, 0, r.stderr);
  t.is(r.stdout.trim(), 'terminated');
});

// ------------------------------------------------------------------ pidfd_getfd

nt("pidfdGetfd duplicates this process's listening fd; tcpInfo works on the duplicate", async (t) => {
  const BACKLOG = 7;
  const { server, port } = await nodeServer(t, (s) => s.destroy(), BACKLOG);
  const fd = fdOf(server);
  let dup: number;
  try {
    dup = n().pidfdGetfd(process.pid, fd);
  } catch (e) {
    const code = errCode(e);
    if (code === 'ENOSYS' || code === 'EPERM') {
      t.log(`pidfd_getfd unavailable here (${code}: ${(e as Error).message}); test skipped`);
      t.pass();
      return;
    }
    throw e;
  }
  t.teardown(() => {
    if (dup >= 0) n().close(dup);
  });
  t.not(dup, fd);
  t.is(n().localPort(dup), port);
  const info = newTcpInfoBuffer();
  t.true(n().tcpInfo(dup, info));
  t.is(info[TCPI.STATE], TCP_LISTEN);
  t.is(info[TCPI.SACKED], BACKLOG);
  n().close(dup);
  dup = -1;
  // Closing the duplicate leaves the original listening.
  const c = await connect(t, port);
  c.destroy();

  t.is(errCode(t.throws(() => n().pidfdGetfd(process.pid, 999_999))), 'EBADF');
  t.is(errCode(t.throws(() => n().pidfdGetfd(0x3fff_ffff, 0))), 'ESRCH');
});
