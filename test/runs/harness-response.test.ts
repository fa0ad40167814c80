// The client checks every answer: against fake servers of the test's own
// (on 127.0.0.1) that answer short, wrong or too much, the client process
// records failures with their own codes, never 'ok'.
import test, { type ExecutionContext } from 'ava';
import { createServer, type Socket } from 'node:net';
import { OUTCOMES } from '../../lib/types.ts';
import { assertAccounting, tempDir } from '../helpers/cli.ts';
import { clientConfig, runClient } from '../helpers/client.ts';
import { ENGINES, onEngine } from '../helpers/engines.ts';
import type { EngineKind } from '../../harness/engine.ts';

const Q = 3000; // request bytes = response bytes (an exact echo is the right answer)
const N = 12;

/**
 * A server that reads each whole request of Q bytes and answers with
 * answer(request, exchange); a null answer closes the connection.
 * Returns its port; closed in teardown.
 */
async function fakeServer(t: ExecutionContext, answer: (req: Buffer, exchange: number, sock: Socket) => Buffer | null): Promise<number> {
  const socks = new Set<Socket>();
  const server = createServer((sock) => {
    socks.add(sock);
    sock.on('close', () => socks.delete(sock));
    sock.on('error', () => {});
    let pending = Buffer.alloc(0);
    let exchange = 0;
    sock.on('data', (chunk: Buffer) => {
      pending = Buffer.concat([pending, chunk]);
      while (pending.length >= Q && !sock.destroyed) {
        const req = pending.subarray(0, Q);
        pending = pending.subarray(Q);
        const a = answer(req, exchange++, sock);
        if (a === null) sock.end();
        else sock.write(a);
      }
    });
    sock.on('end', () => sock.end());
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  t.teardown(() => {
    for (const s of socks) s.destroy();
    server.close();
  });
  return (server.address() as { port: number }).port;
}

async function against(
  t: ExecutionContext,
  engine: EngineKind,
  answer: (req: Buffer, exchange: number, sock: Socket) => Buffer | null,
  flags: Record<string, string> = {},
) {
  const port = await fakeServer(t, answer);
  const config = clientConfig({ transactions: String(N), port: String(port), ioTimeout: '2s', connectTimeout: '2s', engine, ...flags });
  t.is(config.engine, engine);
  const r = await runClient(t, config, tempDir(t));
  t.is(r.exit.code, 0, 'the client process ends cleanly');
  t.truthy(r.done, 'the client reported its end');
  t.is(r.txns.n, N, 'every transaction recorded');
  t.is(r.done!.attempted, N);
  assertAccounting(t, r.summary);
  const outcomes = Array.from(r.txns.outcome, (o) => OUTCOMES[o]);
  return { r, outcomes };
}

const countOf = (outcomes: string[]): Record<string, number> => {
  const c: Record<string, number> = {};
  for (const o of outcomes) c[o] = (c[o] ?? 0) + 1;
  return c;
};

// every check on each engine: the client's checks are what these tests are about
for (const engine of ENGINES) {
  test(`control: an exact echo is ok (the driver and the fake server work)${onEngine(engine)}`, async (t) => {
    const { r, outcomes } = await against(t, engine, (req) => Buffer.from(req));
    t.deepEqual(countOf(outcomes), { ok: N });
    t.is(r.summary.transactions.ok, N);
    for (let i = 0; i < N; i++) t.is(r.txns.bytesIn[i], 2 * Q);
  });

  test(`short answer then close: short-response, never ok${onEngine(engine)}`, async (t) => {
    // 100 of 3000 bytes, then FIN
    const { r, outcomes } = await against(t, engine, (req, _e, sock) => {
      sock.write(req.subarray(0, 100));
      return null;
    });
    t.deepEqual(countOf(outcomes), { 'short-response': N });
    t.is(r.summary.transactions.ok, 0);
    t.is(r.summary.transactions.failed, N);
    t.deepEqual(r.summary.transactions.errors, { 'short-response': N });
    for (let i = 0; i < N; i++) t.is(r.txns.bytesIn[i], 100, 'the bytes that did come are recorded');
  });

  test(`close without answering the second exchange: short-response${onEngine(engine)}`, async (t) => {
    const { outcomes, r } = await against(t, engine, (req, exchange) => (exchange === 0 ? Buffer.from(req) : null));
    t.deepEqual(countOf(outcomes), { 'short-response': N });
    // the first exchange was done, the second never
    for (let i = 0; i < N; i++) {
      t.false(Number.isNaN(r.txns.exchangeUs[0][i]));
      t.true(Number.isNaN(r.txns.exchangeUs[1][i]));
    }
  });

  test(`wrong bytes (one byte flipped in the middle): bad-response${onEngine(engine)}`, async (t) => {
    const { outcomes, r } = await against(t, engine, (req) => {
      const a = Buffer.from(req);
      a[1500] ^= 0xff;
      return a;
    });
    t.deepEqual(countOf(outcomes), { 'bad-response': N });
    t.deepEqual(r.summary.transactions.errors, { 'bad-response': N });
  });

  test(`a stale answer (another transaction number in the header): bad-response${onEngine(engine)}`, async (t) => {
    const { outcomes } = await against(t, engine, (req) => {
      const a = Buffer.from(req);
      a.writeUInt32LE(a.readUInt32LE(0) + 1, 0);
      return a;
    });
    t.deepEqual(countOf(outcomes), { 'bad-response': N });
  });

  test(`more bytes than asked for: bad-response${onEngine(engine)}`, async (t) => {
    const { outcomes } = await against(t, engine, (req) => Buffer.concat([req, Buffer.from([0x42])]));
    t.deepEqual(countOf(outcomes), { 'bad-response': N });
  });

  test(`no answer at all: timeout after --io-timeout, recorded as timed out${onEngine(engine)}`, async (t) => {
    const { outcomes, r } = await against(t, engine, () => Buffer.alloc(0), { ioTimeout: '150ms', concurrency: '4' });
    t.deepEqual(countOf(outcomes), { timeout: N });
    t.is(r.summary.transactions.timedOut, N);
    for (let i = 0; i < N; i++) t.true(r.txns.endUs[i] >= 140_000 && r.txns.endUs[i] < 2_000_000, `gave up after ${r.txns.endUs[i]} us`);
  });
}
