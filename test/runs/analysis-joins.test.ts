import test from 'ava';
import { execa } from 'execa';
import { join } from 'node:path';
import { countedResetChance, joinKernelEvents } from '../../analysis/joins/kernel.ts';
import { joinServer } from '../../analysis/joins/server.ts';
import {
  allocServerColumns,
  allocTxnColumns,
  readManifest,
  readServer,
  readTransactions,
  type ServerColumns,
  type TxnColumns,
} from '../../analysis/read-run.ts';
import { eventColumns, type KernelEvent, type KernelEventCounts } from '../../probes/kernel-events/events-file.ts';
import { OUTCOME_INDEX, OUTCOME_OK } from '../../lib/types.ts';
import { BIN, ROOT, tempDir } from '../helpers/cli.ts';

const MS = 1_000_000;
const SERVER_PORT = 7000;

interface Txn {
  startNs: number;
  lateUs?: number;
  connectUs: number;
  endUs: number;
  port: number;
  outcome?: number;
}

/** TxnColumns from a few transactions (one exchange, at connect + half the rest). */
function txnColumns(txns: Txn[]): TxnColumns {
  const n = txns.length;
  const c: TxnColumns = allocTxnColumns(n, 1);
  txns.forEach((x, i) => {
    const late = x.lateUs ?? 0;
    c.intendedNs[i] = x.startNs - late * 1000;
    c.lateUs[i] = late;
    c.connectUs[i] = x.connectUs;
    c.exchangeUs[0][i] = x.connectUs + (x.endUs - x.connectUs) / 2;
    c.endUs[i] = x.endUs;
    c.localPort[i] = x.port;
    c.outcome[i] = x.outcome ?? OUTCOME_OK;
  });
  return c;
}

function serverColumns(recs: { acceptNs: number; port: number }[]): ServerColumns {
  const n = recs.length;
  const s: ServerColumns = allocServerColumns(n);
  recs.forEach((r, i) => {
    s.acceptNs[i] = r.acceptNs;
    s.clientPort[i] = r.port;
  });
  return s;
}

const ev = (tNs: number, kind: KernelEvent['kind'], sport: number, dport: number, extra: Partial<KernelEvent> = {}): KernelEvent => ({
  tNs,
  kind,
  family: 4,
  sport,
  dport,
  ...extra,
});

test('server join: a reused port joins each transaction to its own accept', (t) => {
  // port 40000 used three times; port 40001 once; records out of time order
  const c = txnColumns([
    { startNs: 1000 * MS, lateUs: 50, connectUs: 100, endUs: 500, port: 40000 },
    { startNs: 1001 * MS, connectUs: 80, endUs: 400, port: 40001 },
    { startNs: 2000 * MS, connectUs: 100, endUs: 3000, port: 40000 },
    { startNs: 3000 * MS, connectUs: 1_000_100, endUs: 1_000_600, port: 40000 },
  ]);
  const s = serverColumns([
    { acceptNs: 3000 * MS + 1_000_100_000 + 20_000, port: 40000 }, // 3rd: waited 20 us
    { acceptNs: 1000 * MS + 130_000, port: 40000 }, // 1st: waited 30 us
    { acceptNs: 2000 * MS + 1_100_000, port: 40000 }, // 2nd: waited 1000 us
    { acceptNs: 1001 * MS + 80_000, port: 40001 }, // waited 0
  ]);
  const j = joinServer(c, s);
  t.deepEqual([...j.serverIndex], [1, 3, 2, 0]);
  t.is(j.matched, 4);
  t.is(j.unmatchedServer, 0);
  t.true(Math.abs(j.acceptWaitUs[0] - 30) < 0.01, String(j.acceptWaitUs[0]));
  t.true(Math.abs(j.acceptWaitUs[1] - 0) < 0.01);
  t.true(Math.abs(j.acceptWaitUs[2] - 1000) < 0.01);
  t.true(Math.abs(j.acceptWaitUs[3] - 20) < 0.01);
  t.true(Math.abs(j.acceptAfterStartUs[0] - 130) < 0.01);
  t.true(Math.abs(j.acceptAfterStartUs[2] - 1100) < 0.01);
});

test('server join: refused and unbound transactions get -1 and NaN', (t) => {
  const c = txnColumns([
    { startNs: 10 * MS, connectUs: NaN, endUs: 40, port: 40010, outcome: OUTCOME_INDEX.ECONNREFUSED },
    { startNs: 11 * MS, connectUs: NaN, endUs: 40, port: 0, outcome: OUTCOME_INDEX.EADDRNOTAVAIL },
    { startNs: 12 * MS, connectUs: 50, endUs: 200, port: 40011 },
  ]);
  // an accept on 40010 long before (an earlier connection), one on 40011 after the window
  const s = serverColumns([
    { acceptNs: 1 * MS, port: 40010 },
    { acceptNs: 13 * MS, port: 40011 },
    { acceptNs: 11 * MS, port: 0 },
  ]);
  const j = joinServer(c, s);
  t.deepEqual([...j.serverIndex], [-1, -1, -1]);
  t.is(j.matched, 0);
  t.is(j.unmatchedServer, 3);
  t.true(j.acceptWaitUs.every((x) => Number.isNaN(x)));
  t.true(j.acceptAfterStartUs.every((x) => Number.isNaN(x)));
});

test('kernel join: a SYN retransmit counts for its transaction, not a later one on the same port', (t) => {
  const P = 40100;
  const c = txnColumns([
    // connect stalled by a SYN retransmission at 1 s
    { startNs: 100 * MS, connectUs: 1_000_200, endUs: 1_000_600, port: P },
    // the same port again, 5 ms after the first ended: its padded window overlaps the first's end
    { startNs: 1106 * MS, connectUs: 100, endUs: 500, port: P },
    { startNs: 100 * MS, connectUs: 100, endUs: 300, port: P + 1 },
  ]);
  const events = [
    // file order is not time order
    ev(1101 * MS, 'send-reset', SERVER_PORT, P), // server resets 0.4 ms after the first ended: first's
    ev(1100 * MS, 'retransmit', P, SERVER_PORT, { state: 'SYN_SENT' }), // inside the first's window
    ev(1100 * MS + 300_000, 'retransmit', P, SERVER_PORT, { state: 'ESTABLISHED' }),
    ev(1101 * MS + 10_000, 'receive-reset', P, SERVER_PORT), // the same reset, received by the client
    ev(1106 * MS + 50_000, 'state', P, SERVER_PORT, { oldState: 'SYN_SENT', newState: 'ESTABLISHED' }), // second's
    ev(1104 * MS, 'drop', SERVER_PORT, P, { reason: 'TCP_RESET' }), // 3.4 ms after the first ended, 2 ms before the second: the second's
    ev(100 * MS + 100_000, 'retransmit-synack', SERVER_PORT, P + 1),
    ev(100 * MS + 200_000, 'send-reset', P + 1, SERVER_PORT), // client aborts
    ev(100 * MS + 210_000, 'receive-reset', SERVER_PORT, P + 1), // server sees it
    ev(100 * MS + 220_000, 'send-reset', P + 1, SERVER_PORT), // a second client reset
    // outside every window: before, after, wrong server port, port 0, unknown client port
    ev(80 * MS, 'retransmit', P, SERVER_PORT, { state: 'SYN_SENT' }),
    ev(1200 * MS, 'retransmit', P, SERVER_PORT),
    ev(1100 * MS, 'retransmit', P, SERVER_PORT + 1),
    ev(100 * MS, 'state', 0, SERVER_PORT, { oldState: 'CLOSE', newState: 'SYN_SENT' }),
    ev(100 * MS, 'retransmit', 50000, SERVER_PORT),
  ];
  const j = joinKernelEvents(c, SERVER_PORT, eventColumns(events));
  t.deepEqual([...j.synRetransmits], [1, 0, 0]);
  t.deepEqual([...j.retransmits], [1, 0, 0]);
  t.deepEqual([...j.synackRetransmits], [0, 0, 1]);
  t.deepEqual([...j.resetsReceived], [1, 0, 0], 'one reset from the server, seen twice');
  t.deepEqual([...j.resetsSent], [0, 0, 2]);
  t.deepEqual([...j.drops], [0, 1, 0]);
  t.deepEqual([...j.states], [0, 1, 0]);
  t.is(j.matched, 10);
  t.is(j.unmatched, 5);
  t.is(j.transactionsWithEvents, 3);
  t.deepEqual([...j.eventTxn], [0, 0, 0, 0, 1, 1, 2, 2, 2, 2, -1, -1, -1, -1, -1]);
  // time order within a transaction
  t.deepEqual(
    j.eventsFor(0).map((e) => e.kind),
    ['retransmit', 'retransmit', 'send-reset', 'receive-reset'],
  );
  t.deepEqual(
    j.eventsFor(1).map((e) => e.kind),
    ['drop', 'state'],
  );
  t.deepEqual(j.eventsFor(3), []);
});

test('kernel join: a retransmit the peer drops as data it already had is spurious, not counted as a retransmit', (t) => {
  const P = 40200;
  const c = txnColumns([
    // the server's FIN sent again 4 ms in (a tail loss probe), the client drops it as old data
    { startNs: 100 * MS, connectUs: 30, endUs: 4600, port: P },
    // a FIN the client needed: no OLD_DATA drop after it
    { startNs: 100 * MS, connectUs: 30, endUs: 210_000, port: P + 1 },
    // the client's data retransmitted, and an OLD_DATA drop in the other direction: not a pair
    { startNs: 100 * MS, connectUs: 30, endUs: 210_000, port: P + 2 },
  ]);
  const events = [
    ev(104 * MS, 'retransmit', SERVER_PORT, P, { state: 'FIN_WAIT1' }),
    ev(104 * MS + 50_000, 'drop', SERVER_PORT, P, { reason: 'TCP_OLD_DATA' }),
    ev(305 * MS, 'retransmit', SERVER_PORT, P + 1, { state: 'FIN_WAIT1' }),
    ev(305 * MS + 50_000, 'drop', SERVER_PORT, P + 1, { reason: 'NO_SOCKET' }),
    ev(305 * MS, 'retransmit', P + 2, SERVER_PORT, { state: 'ESTABLISHED' }),
    ev(305 * MS + 50_000, 'drop', SERVER_PORT, P + 2, { reason: 'TCP_OLD_DATA' }),
  ];
  const j = joinKernelEvents(c, SERVER_PORT, eventColumns(events));
  t.deepEqual([...j.retransmits], [0, 1, 1]);
  t.deepEqual([...j.spuriousRetransmits], [1, 0, 0]);
  t.deepEqual([...j.drops], [1, 1, 1]);
});

test('kernel join: padded windows are 10 ms, and the nearest transaction wins', (t) => {
  const P = 40200;
  const c = txnColumns([
    { startNs: 100 * MS, connectUs: 100, endUs: 1000, port: P }, // window 100..101 ms
    { startNs: 130 * MS, connectUs: 100, endUs: 1000, port: P }, // window 130..131 ms
  ]);
  const events = [
    ev(90 * MS + 1, 'drop', P, SERVER_PORT), // 9.999999 ms before the first
    ev(89 * MS, 'drop', P, SERVER_PORT), // 11 ms before: none
    ev(111 * MS, 'drop', P, SERVER_PORT), // 10 ms after the first end
    ev(112 * MS, 'drop', P, SERVER_PORT), // 11 ms after the first, 18 ms before the second: none
    ev(121 * MS, 'drop', P, SERVER_PORT), // 20 ms after the first, 9 ms before the second
  ];
  const j = joinKernelEvents(c, SERVER_PORT, eventColumns(events));
  t.deepEqual([...j.eventTxn], [0, -1, 0, -1, 1]);
  t.deepEqual([...j.drops], [2, 1]);
});

/** Count records of send-reset (3) and receive-reset (4): [bucket start, kind, server side, count]. */
function counts(rows: [number, number, number, number][], bucketNs: number): KernelEventCounts {
  const n = rows.length;
  return {
    n,
    bucketNs,
    tNs: Float64Array.from(rows.map((r) => r[0])),
    kind: Uint8Array.from(rows.map((r) => r[1])),
    serverSide: Uint8Array.from(rows.map((r) => r[2])),
    a: new Uint8Array(n),
    b: new Uint8Array(n),
    reason: new Int32Array(n).fill(-1),
    count: Uint32Array.from(rows.map((r) => r[3])),
  };
}

test('counted resets: where the kernel only counted them, each transaction has the share of those not recorded', (t) => {
  // buckets of 100 ms starting 30 ms after t0 (t0 is not on the bucket grid)
  const W = 100 * MS;
  const off = 30 * MS;
  // bucket A [30, 130) ms: 10 transactions, each aborted by the client: 10 resets counted on both sides, 2 recorded
  // bucket B [130, 230) ms: 4 transactions, 1 reset, recorded (under the budget): nothing to estimate
  const txns: Txn[] = [];
  for (let k = 0; k < 10; k++) txns.push({ startNs: off + 5 * MS + k * 8 * MS, connectUs: 100, endUs: 1000, port: 40000 + k });
  for (let k = 0; k < 4; k++) txns.push({ startNs: off + W + 5 * MS + k * 8 * MS, connectUs: 100, endUs: 1000, port: 41000 + k });
  const c = txnColumns(txns);
  const endOf = (i: number): number => txns[i].startNs + 1 * MS - 1000;
  const ev = eventColumns([
    { tNs: endOf(0), kind: 'send-reset', family: 4, sport: 40000, dport: SERVER_PORT },
    { tNs: endOf(0) + 1000, kind: 'receive-reset', family: 4, sport: SERVER_PORT, dport: 40000 },
    { tNs: endOf(1), kind: 'send-reset', family: 4, sport: 40001, dport: SERVER_PORT },
    { tNs: endOf(1) + 1000, kind: 'receive-reset', family: 4, sport: SERVER_PORT, dport: 40001 },
    { tNs: endOf(12), kind: 'send-reset', family: 4, sport: 41002, dport: SERVER_PORT },
  ]);
  const cn = counts(
    [
      [off, 3, 0, 10],
      [off, 4, 1, 9], // the server saw one fewer (counts can miss one between a print and its clear)
      [off + W, 3, 0, 1],
    ],
    W,
  );
  const j = joinKernelEvents(c, SERVER_PORT, ev);
  t.deepEqual([...j.resetsSent], [1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0]);
  const chance = countedResetChance(c, SERVER_PORT, j, ev, cn);
  // bucket A: 10 resets counted, 2 recorded: 8 for the 8 transactions without one
  t.deepEqual(
    [...chance].map((x) => Math.round(x * 100) / 100),
    [0, 0, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0],
  );
  // half of them counted: a chance of one half each
  const half = countedResetChance(c, SERVER_PORT, j, ev, counts([[off, 3, 0, 6]], W));
  t.deepEqual([...half.subarray(2, 10)], new Array(8).fill(0.5));
  // every reset recorded (version 1 files have no counts): nothing estimated
  t.deepEqual([...countedResetChance(c, SERVER_PORT, j, ev, counts([], W))], new Array(14).fill(0));
});

test('joins scale: 1e6 transactions, 1e5 events', (t) => {
  const n = 1_000_000;
  const e = 100_000;
  const ports = 28_000;
  // closed loop over 28 000 ports: transaction i on port 32768 + i % ports, 100 us apart, 80 us long
  const c = txnColumns([]);
  const big: TxnColumns = {
    ...c,
    n,
    intendedNs: new Float64Array(n),
    lateUs: new Float32Array(n),
    connectUs: new Float32Array(n),
    exchangeUs: [new Float32Array(n)],
    endUs: new Float32Array(n),
    localPort: new Uint16Array(n),
  };
  // records in order of end: shuffle neighbours a little
  for (let i = 0; i < n; i++) {
    const k = i % 2 === 0 && i + 1 < n ? i + 1 : i % 2 === 1 ? i - 1 : i;
    big.intendedNs[k] = i * 100_000;
    big.connectUs[k] = 30;
    big.endUs[k] = 80;
    big.localPort[k] = 32768 + (i % ports);
  }
  const s = serverColumns([]);
  const srv: ServerColumns = { ...s, n, acceptNs: new Float64Array(n), clientPort: new Uint16Array(n) };
  for (let i = 0; i < n; i++) {
    srv.acceptNs[i] = i * 100_000 + 40_000;
    srv.clientPort[i] = 32768 + (i % ports);
  }
  const events: KernelEvent[] = [];
  for (let q = 0; q < e; q++) {
    const i = (q * 7919) % n; // scattered, unsorted
    events.push(ev(i * 100_000 + 20_000, 'retransmit', 32768 + (i % ports), SERVER_PORT, { state: 'SYN_SENT' }));
  }
  let t0 = performance.now();
  const js = joinServer(big, srv);
  const serverMs = performance.now() - t0;
  t0 = performance.now();
  const jk = joinKernelEvents(big, SERVER_PORT, eventColumns(events));
  const kernelMs = performance.now() - t0;
  t.log(`joinServer ${n} txns x ${n} accepts: ${serverMs.toFixed(0)} ms; joinKernelEvents ${n} txns x ${e} events: ${kernelMs.toFixed(0)} ms`);
  t.is(js.matched, n);
  t.true(Math.abs(js.acceptWaitUs[0] - 10) < 0.01);
  t.is(jk.matched, e);
  let syn = 0;
  for (let i = 0; i < n; i++) syn += jk.synRetransmits[i];
  t.is(syn, e);
  t.true(serverMs < 10_000, `joinServer took ${serverMs} ms`);
  t.true(kernelMs < 10_000, `joinKernelEvents took ${kernelMs} ms`);
});

test('server join on a real run: every ok transaction has its accept', async (t) => {
  const out = join(tempDir(t), 'run');
  const r = await execa('node', [BIN, 'run', '--transactions', '300', '--concurrency', '2', '--no-probes', '--out', out], {
    cwd: ROOT,
    reject: false,
    stdin: 'ignore',
    timeout: 90_000,
    env: { NO_COLOR: '1' },
  });
  t.is(r.exitCode, 0, `${r.stdout}\n${r.stderr}`);
  const m = readManifest(out);
  const c = readTransactions(out, m);
  const s = readServer(out, m);
  t.truthy(s, 'server.bin');
  if (!s) return;
  const j = joinServer(c, s);
  let ok = 0;
  let minWait = Infinity;
  let maxWait = -Infinity;
  let nearZeroOrPositive = 0;
  const bad: string[] = [];
  for (let i = 0; i < c.n; i++) {
    if (c.outcome[i] !== OUTCOME_OK) continue;
    ok++;
    const w = j.acceptWaitUs[i];
    // the accept happened after the client started and before it ended
    const after = j.acceptAfterStartUs[i];
    if (j.serverIndex[i] < 0 || !(w >= -c.connectUs[i] && w <= c.endUs[i] - c.connectUs[i]) || !(after >= 0 && after <= c.endUs[i]))
      bad.push(`txn ${i} port ${c.localPort[i]}: server ${j.serverIndex[i]}, wait ${w}`);
    else {
      if (w > -50) nearZeroOrPositive++;
      minWait = Math.min(minWait, w);
      maxWait = Math.max(maxWait, w);
      if (s.clientPort[j.serverIndex[i]] !== c.localPort[i]) bad.push(`txn ${i}: port mismatch`);
    }
  }
  t.log(
    `${c.n} transactions, ${ok} ok, ${j.matched} matched of ${s.n} accepts; accept wait ${minWait.toFixed(1)}..${maxWait.toFixed(1)} us, ` +
      `${nearZeroOrPositive} > -50 us`,
  );
  t.true(ok >= 290, `ok ${ok}`);
  t.deepEqual(bad.slice(0, 10), []);
  // each accept claimed once
  const seen = new Set<number>();
  for (let i = 0; i < c.n; i++) if (j.serverIndex[i] >= 0) seen.add(j.serverIndex[i]);
  t.is(seen.size, j.matched);
});
