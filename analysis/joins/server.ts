import type { ServerColumns, TxnColumns } from '../read-run.ts';
import { txnStartNs } from '../summarize.ts';

// Join each transaction to the server's accept record: same client port, and
// the accept inside the transaction's time window. Ephemeral ports cycle over
// a run, so the port alone is not a key; port and time together are.
//
// Cost: O(n + s) for the bucketing of both sides by port plus a sort of each
// port's records by time (insertion sort for the usual short, nearly sorted
// buckets, a typed-array sort otherwise: O(s log s) worst case), then one walk
// per port through its transactions and records together (the first record
// that can match a transaction only moves forward as their starts ascend).
// Memory: a few typed arrays of n and s entries.

/** Records of one column sorted by (port, time), as a bucketed index. */
export interface PortTimeIndex {
  /** Record indices, sorted by port then time. */
  order: Uint32Array;
  /** order[bucketStart[p] .. bucketStart[p + 1]) are the records of port p. */
  bucketStart: Uint32Array;
  /** The times the order was sorted on (NaN replaced by +Infinity). */
  times: Float64Array;
}

const PORTS = 65536;
const INSERTION_MAX = 32;

/** Bucket records by port (counting sort), then sort each bucket by time. */
export function portTimeIndex(ports: Uint16Array, times: Float64Array, n: number): PortTimeIndex {
  const t = new Float64Array(n);
  for (let i = 0; i < n; i++) t[i] = Number.isNaN(times[i]) ? Infinity : times[i];
  const bucketStart = new Uint32Array(PORTS + 1);
  for (let i = 0; i < n; i++) bucketStart[ports[i] + 1]++;
  for (let p = 0; p < PORTS; p++) bucketStart[p + 1] += bucketStart[p];
  const fill = bucketStart.slice(0, PORTS);
  const order = new Uint32Array(n);
  for (let i = 0; i < n; i++) order[fill[ports[i]]++] = i;
  const byTime = (a: number, b: number): number => t[a] - t[b] || a - b;
  for (let p = 0; p < PORTS; p++) {
    const a = bucketStart[p];
    const b = bucketStart[p + 1];
    if (b - a < 2) continue;
    if (b - a <= INSERTION_MAX) {
      for (let k = a + 1; k < b; k++) {
        const x = order[k];
        const tx = t[x];
        let j = k - 1;
        while (j >= a && t[order[j]] > tx) {
          order[j + 1] = order[j];
          j--;
        }
        order[j + 1] = x;
      }
    } else {
      let sorted = true;
      for (let k = a + 1; k < b && sorted; k++) if (t[order[k]] < t[order[k - 1]]) sorted = false;
      if (!sorted) order.subarray(a, b).sort(byTime);
    }
  }
  return { order, bucketStart, times: t };
}

/** First position k in [a, b) of the index with times[order[k]] >= x (b if none). */
export function lowerBound(ix: PortTimeIndex, a: number, b: number, x: number): number {
  const { order, times } = ix;
  while (a < b) {
    const m = (a + b) >>> 1;
    if (times[order[m]] < x) a = m + 1;
    else b = m;
  }
  return a;
}

/** Actual start of each transaction, ns since t0 (intended start plus lateness). */
export function startNs(c: TxnColumns): Float64Array {
  const s = new Float64Array(c.n);
  for (let i = 0; i < c.n; i++) s[i] = txnStartNs(c, i);
  return s;
}

export interface ServerJoin {
  /** Per transaction: the index of its server record, -1 when none. */
  serverIndex: Int32Array;
  /**
   * Per transaction: accept time minus connect done, us: how long the
   * established connection sat in the accept queue. NaN when unmatched (or
   * the transaction has no connect time).
   *
   * Both times are when a user-space callback ran (the client's 'connect',
   * the server's 'connection'), not when the kernel acted, so the client's
   * event-loop delay shows up here as a negative wait: on a busy loopback
   * run, a third of the waits are below -50 us and a few reach -4 ms. Read
   * it as a queue wait only when it is large and positive.
   */
  acceptWaitUs: Float32Array;
  /**
   * Per transaction: accept time minus the transaction's actual start, us
   * (handshake plus accept-queue wait, as the server saw it; >= 0 when
   * matched). NaN when unmatched. Unlike acceptWaitUs it does not depend on
   * when the client noticed the connect.
   */
  acceptAfterStartUs: Float32Array;
  /** Transactions with a server record. */
  matched: number;
  /** Server records no transaction claimed. */
  unmatchedServer: number;
}

export interface ServerJoinOptions {
  /** Widen the window [start, start + endUs] by this much on both sides, us (clock skew). Default 0. */
  slackUs?: number;
}

/**
 * Match transaction i to the server record with clientPort == localPort[i]
 * and acceptNs in [start, start + endUs] (widened by slackUs); when several
 * qualify, the one nearest to the connect-done time. Transactions with port 0
 * (never bound) get -1.
 */
export function joinServer(c: TxnColumns, s: ServerColumns, opts: ServerJoinOptions = {}): ServerJoin {
  // The analysis and the report join the same columns (read-run.ts reads a run once per process): join once.
  if ((opts.slackUs ?? 0) !== 0) return joinServerNow(c, s, opts);
  let byServer = joined.get(c);
  if (byServer === undefined) joined.set(c, (byServer = new WeakMap()));
  let j = byServer.get(s);
  if (j === undefined) byServer.set(s, (j = joinServerNow(c, s, opts)));
  return j;
}

/** Joins already made, by the columns joined (callers only read a join). */
const joined = new WeakMap<TxnColumns, WeakMap<ServerColumns, ServerJoin>>();

function joinServerNow(c: TxnColumns, s: ServerColumns, opts: ServerJoinOptions): ServerJoin {
  const slackNs = (opts.slackUs ?? 0) * 1000;
  const n = c.n;
  const serverIndex = new Int32Array(n).fill(-1);
  const acceptWaitUs = new Float32Array(n).fill(NaN);
  const acceptAfterStartUs = new Float32Array(n).fill(NaN);
  const claimed = new Uint8Array(s.n);
  // Server records and transactions, each by port then time; then one walk
  // per port through both, the server side's times gathered in walk order.
  const ix = portTimeIndex(s.clientPort, s.acceptNs, s.n);
  const { order, bucketStart } = ix;
  const st = new Float64Array(s.n);
  for (let k = 0; k < s.n; k++) st[k] = ix.times[order[k]];
  const tx = portTimeIndex(c.localPort, startNs(c), n);
  let matched = 0;
  for (let port = 1; port < PORTS; port++) {
    const a = bucketStart[port];
    const b = bucketStart[port + 1];
    const ta = tx.bucketStart[port];
    const tb = tx.bucketStart[port + 1];
    if (a === b || ta === tb) continue;
    let lo = a;
    for (let q = ta; q < tb; q++) {
      const i = tx.order[q];
      const start = tx.times[i];
      if (start === Infinity) break; // NaN starts sort last
      const endUs = c.endUs[i];
      const connectUs = c.connectUs[i];
      const end = start + (Number.isNaN(endUs) ? (Number.isNaN(connectUs) ? 0 : connectUs) : endUs) * 1000 + slackNs;
      const connectDone = start + (Number.isNaN(connectUs) ? 0 : connectUs) * 1000;
      // starts ascend within the port: the first record at or after start - slack only moves forward
      while (lo < b && st[lo] < start - slackNs) lo++;
      let best = -1;
      let bestDist = Infinity;
      for (let k = lo; k < b; k++) {
        const tr = st[k];
        if (tr > end) break;
        const d = Math.abs(tr - connectDone);
        if (d < bestDist) {
          bestDist = d;
          best = order[k];
        }
      }
      if (best < 0) continue;
      serverIndex[i] = best;
      claimed[best] = 1;
      matched++;
      acceptAfterStartUs[i] = (s.acceptNs[best] - start) / 1000;
      if (!Number.isNaN(connectUs)) acceptWaitUs[i] = (s.acceptNs[best] - connectDone) / 1000;
    }
  }
  let unmatchedServer = 0;
  for (let r = 0; r < s.n; r++) if (claimed[r] === 0) unmatchedServer++;
  return { serverIndex, acceptWaitUs, acceptAfterStartUs, matched, unmatchedServer };
}
