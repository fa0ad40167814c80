import { eventAt, kindCodeOf, type KernelEvent, type KernelEventColumns, type KernelEventCounts } from '../../probes/kernel-events/events-file.ts';
import { lowerBound, portTimeIndex } from './server.ts';
import type { TxnColumns } from '../read-run.ts';
import { txnStartNs } from '../summarize.ts';
import { TCP_STATES } from '../../lib/tcp-states.ts';

// Join kernel events (events/kernel-events.bin, or .ndjson in older runs;
// those recorded one by one) to transactions: an event
// belongs to transaction i when one of its ports is the transaction's local
// port and the other the server port, and its time lies within the
// transaction's window [start, start + endUs] widened by 10 ms on each side.
// Ports cycle over a run, so when the widened windows of two transactions on
// the same port both hold an event, it goes to the one whose own window is
// nearest (distance 0 when inside).
//
// A retransmission the peer then drops as TCP_OLD_DATA (every byte of it
// already received) was spurious: the peer had the segment, so nothing
// waited for the copy. Such a retransmit (the next OLD_DATA drop in the
// same direction of the same transaction pairs with the earliest unpaired
// retransmit) counts in spuriousRetransmits, not in retransmits: a client
// descheduled before it ACKs the server's FIN sees the FIN again (a tail
// loss probe after a few ms) and drops it, and the retransmit is then the
// outlier's consequence, not its cause.
//
// Cost: O(n + e): only the transactions on ports that have events are
// bucketed, plus sorts (O(n log n + e log e) worst case), then
// a binary search per event; the backward scan per event stops at the first
// transaction whose window (or any earlier one's) ends before the event, so it
// is O(1) for the sequential use a port gets. Memory: typed arrays of n and e.

export const KERNEL_JOIN_PAD_NS = 10_000_000;

const K_RETRANSMIT = kindCodeOf('retransmit');
const K_SYNACK = kindCodeOf('retransmit-synack');
const K_SEND_RESET = kindCodeOf('send-reset');
const K_RECEIVE_RESET = kindCodeOf('receive-reset');
const K_DROP = kindCodeOf('drop');
const K_STATE = kindCodeOf('state');
const SYN_SENT = TCP_STATES.indexOf('SYN_SENT');

export interface KernelJoin {
  /** Per transaction: SYN retransmissions (retransmit of a SYN_SENT socket). */
  synRetransmits: Uint32Array;
  /** Per transaction: other retransmissions, either side (data, FIN), but for the spurious ones. */
  retransmits: Uint32Array;
  /** Per transaction: retransmissions the peer dropped as data it already had (TCP_OLD_DATA). */
  spuriousRetransmits: Uint32Array;
  /** Per transaction: SYN-ACK retransmissions by the server. */
  synackRetransmits: Uint32Array;
  /**
   * Per transaction: resets the client sent (to the server). A reset can be
   * seen twice, sent by one side and received by the other: each direction
   * counts the larger of its send-reset and receive-reset events.
   */
  resetsSent: Uint32Array;
  /** Per transaction: resets the server sent (the client received), counted as resetsSent. */
  resetsReceived: Uint32Array;
  /** Per transaction: packets the kernel dropped (skb:kfree_skb with a reason), either direction. */
  drops: Uint32Array;
  /** Per transaction: socket state changes (inet_sock_set_state). */
  states: Uint32Array;
  /** Per input event (in the order given): the transaction it belongs to, -1 none. */
  eventTxn: Int32Array;
  /** Events joined to a transaction. */
  matched: number;
  /**
   * Events joined to none: not between a client port and the server port (a
   * CLOSE->SYN_SENT change has source port 0), or outside every window.
   */
  unmatched: number;
  /** Transactions with at least one event. */
  transactionsWithEvents: number;
  /** The events of transaction i, in time order (empty when none). */
  eventsFor(i: number): KernelEvent[];
}

export interface KernelJoinOptions {
  /** Widen each transaction's window by this on both sides, ns. Default 10 ms. */
  padNs?: number;
}

/** Indices sorted by key (stable; NaN keys compare as equal, so give none). */
/** The kernel's number for a named reason of an event kind (from the tracepoint's format, per run), or -2 when it has none. */
function reasonCode(events: KernelEventColumns, kind: 'drop' | 'send-reset', name: string): number {
  const table = events.reasons[kind] ?? {};
  for (const [code, n] of Object.entries(table)) if (n === name) return Number(code);
  return -2;
}

function sortedIndex(key: Float64Array): Uint32Array {
  const n = key.length;
  const idx = new Uint32Array(n);
  let sorted = true;
  for (let i = 0; i < n; i++) {
    idx[i] = i;
    if (i > 0 && key[i] < key[i - 1]) sorted = false;
  }
  if (!sorted) idx.sort((a, b) => key[a] - key[b] || a - b);
  return idx;
}

export function joinKernelEvents(c: TxnColumns, serverPort: number, events: KernelEventColumns, opts: KernelJoinOptions = {}): KernelJoin {
  // The causes join the same run for each spell of outliers: join once (callers only read a join).
  if (opts.padNs !== undefined && opts.padNs !== KERNEL_JOIN_PAD_NS) return joinNow(c, serverPort, events, opts);
  const hit = joined.get(events);
  if (hit !== undefined && hit.c === c && hit.serverPort === serverPort) return hit.join;
  const join = joinNow(c, serverPort, events, opts);
  joined.set(events, { c, serverPort, join });
  return join;
}

const joined = new WeakMap<KernelEventColumns, { c: TxnColumns; serverPort: number; join: KernelJoin }>();
const chances = new WeakMap<KernelJoin, { counts: KernelEventCounts; chance: Float32Array }>();

function joinNow(c: TxnColumns, serverPort: number, events: KernelEventColumns, opts: KernelJoinOptions): KernelJoin {
  const pad = opts.padNs ?? KERNEL_JOIN_PAD_NS;
  const n = c.n;
  const e = events.n;

  // The client ports that have events: only their transactions can be joined
  // (a run whose resets were counted in the kernel has events on a few ports).
  const wanted = new Uint8Array(65536);
  for (let j = 0; j < e; j++) {
    const sp = events.sport[j];
    const dp = events.dport[j];
    if (dp === serverPort && sp !== serverPort) wanted[sp] = 1;
    else if (sp === serverPort && dp !== serverPort) wanted[dp] = 1;
  }
  let m0 = 0;
  for (let i = 0; i < n; i++) if (wanted[c.localPort[i]] === 1) m0++;
  // Their windows (indexed by position in `sel`), bucketed by port, by start.
  const sel = new Uint32Array(m0);
  const selPort = new Uint16Array(m0);
  const start = new Float64Array(m0);
  const end = new Float64Array(m0);
  for (let i = 0, k = 0; i < n; i++) {
    if (wanted[c.localPort[i]] !== 1) continue;
    const s = txnStartNs(c, i);
    const endUs = c.endUs[i];
    const connectUs = c.connectUs[i];
    const span = Number.isNaN(endUs) ? (Number.isNaN(connectUs) ? 0 : connectUs) : endUs;
    sel[k] = i;
    selPort[k] = c.localPort[i];
    start[k] = s;
    end[k++] = s + Math.max(0, span) * 1000;
  }
  const ix = portTimeIndex(selPort, start, m0);
  const { order, bucketStart, times } = ix;
  // Running maximum of window ends along each bucket: bounds the backward scan.
  const maxEnd = new Float64Array(m0);
  for (let p = 1; p < 65536; p++) {
    let m = -Infinity;
    for (let k = bucketStart[p]; k < bucketStart[p + 1]; k++) {
      const en = end[order[k]];
      if (en > m) m = en;
      maxEnd[k] = m;
    }
  }

  // Events in time order, so each transaction's list comes out in time order.
  const tNs = new Float64Array(e);
  for (let j = 0; j < e; j++) tNs[j] = Number.isFinite(events.tNs[j]) ? events.tNs[j] : Infinity;
  const evOrder = sortedIndex(tNs);

  const eventTxn = new Int32Array(e).fill(-1);
  const synRetransmits = new Uint32Array(n);
  const retransmits = new Uint32Array(n);
  const spuriousRetransmits = new Uint32Array(n);
  // per transaction and direction (x2, +1 from the server): retransmits not yet paired with an OLD_DATA drop
  const unpaired = new Uint32Array(2 * n);
  const oldData = reasonCode(events, 'drop', 'TCP_OLD_DATA');
  const synackRetransmits = new Uint32Array(n);
  const drops = new Uint32Array(n);
  const states = new Uint32Array(n);
  // Resets by who sent them, as seen by the sender (send) and the receiver (receive).
  const clientRstSend = new Uint32Array(n);
  const clientRstRecv = new Uint32Array(n);
  const serverRstSend = new Uint32Array(n);
  const serverRstRecv = new Uint32Array(n);
  const perTxn = new Uint32Array(n + 1);
  let matched = 0;

  for (let q = 0; q < e; q++) {
    const j = evOrder[q];
    const sport = events.sport[j];
    const dport = events.dport[j];
    const t = tNs[j];
    if (!Number.isFinite(t)) continue;
    let clientPort: number;
    let serverSide: boolean;
    if (dport === serverPort && sport !== serverPort) {
      clientPort = sport;
      serverSide = false;
    } else if (sport === serverPort && dport !== serverPort) {
      clientPort = dport;
      serverSide = true;
    } else continue;
    if (!(clientPort > 0 && clientPort < 65536)) continue;
    const a = bucketStart[clientPort];
    const b = bucketStart[clientPort + 1];
    if (a === b) continue;
    // Last transaction starting at or before t + pad, then backwards.
    let k = lowerBound(ix, a, b, t + pad);
    while (k < b && times[order[k]] === t + pad) k++;
    let best = -1;
    let bestDist = Infinity;
    for (let m = k - 1; m >= a; m--) {
      if (maxEnd[m] + pad < t) break;
      const r = order[m];
      const dist = t < start[r] ? start[r] - t : t > end[r] ? t - end[r] : 0;
      if (dist <= pad && dist < bestDist) {
        bestDist = dist;
        best = sel[r];
        if (dist === 0) break;
      }
    }
    if (best < 0) continue;
    eventTxn[j] = best;
    matched++;
    perTxn[best + 1]++;
    switch (events.kind[j]) {
      case K_RETRANSMIT:
        if (!serverSide && events.a[j] === SYN_SENT) synRetransmits[best]++;
        else {
          retransmits[best]++;
          unpaired[2 * best + (serverSide ? 1 : 0)]++;
        }
        break;
      case K_SYNACK:
        synackRetransmits[best]++;
        break;
      case K_SEND_RESET:
        if (serverSide) serverRstSend[best]++;
        else clientRstSend[best]++;
        break;
      case K_RECEIVE_RESET:
        // the receiving socket's port is sport: the other side sent it
        if (serverSide) clientRstRecv[best]++;
        else serverRstRecv[best]++;
        break;
      case K_DROP:
        drops[best]++;
        // the dropped segment's ports are its sender's: the same direction as the retransmit
        if (events.reason[j] === oldData && unpaired[2 * best + (serverSide ? 1 : 0)] > 0) {
          unpaired[2 * best + (serverSide ? 1 : 0)]--;
          retransmits[best]--;
          spuriousRetransmits[best]++;
        }
        break;
      case K_STATE:
        states[best]++;
        break;
    }
  }

  const resetsSent = clientRstSend;
  const resetsReceived = serverRstSend;
  let transactionsWithEvents = 0;
  for (let i = 0; i < n; i++) {
    if (clientRstRecv[i] > resetsSent[i]) resetsSent[i] = clientRstRecv[i];
    if (serverRstRecv[i] > resetsReceived[i]) resetsReceived[i] = serverRstRecv[i];
    if (perTxn[i + 1] > 0) transactionsWithEvents++;
  }

  // Sparse per-transaction lists: offsets (CSR) over the matched events in time order.
  for (let i = 0; i < n; i++) perTxn[i + 1] += perTxn[i];
  const fill = perTxn.slice(0, n);
  const list = new Uint32Array(matched);
  for (let q = 0; q < e; q++) {
    const j = evOrder[q];
    const i = eventTxn[j];
    if (i >= 0) list[fill[i]++] = j;
  }
  const eventsFor = (i: number): KernelEvent[] => {
    if (!(i >= 0 && i < n)) return [];
    const out: KernelEvent[] = [];
    for (let k = perTxn[i]; k < perTxn[i + 1]; k++) out.push(eventAt(events, list[k]));
    return out;
  };

  return {
    synRetransmits,
    retransmits,
    spuriousRetransmits,
    synackRetransmits,
    resetsSent,
    resetsReceived,
    drops,
    states,
    eventTxn,
    matched,
    unmatched: e - matched,
    transactionsWithEvents,
    eventsFor,
  };
}

/**
 * Where resets were only counted in the kernel (more than the budget of one
 * key in a 100 ms bucket: a run that resets every connection), which
 * transactions had one cannot be told event by event. Per transaction, the
 * chance that it had a reset that was counted but not recorded, from the
 * bucket its window ends in (a close's reset comes at the end): the resets
 * counted but not recorded there (each reset counted once per direction: the
 * larger of its send and receive counts) over the transactions ending there
 * without a recorded reset, at most 1. 0 where every reset was recorded (and
 * for runs of format version 1, which recorded every event).
 */
export function countedResetChance(c: TxnColumns, serverPort: number, j: KernelJoin, events: KernelEventColumns, counts: KernelEventCounts): Float32Array {
  const hit = chances.get(j);
  if (hit !== undefined && hit.counts === counts) return hit.chance;
  const chance = chanceNow(c, serverPort, j, events, counts);
  chances.set(j, { counts, chance });
  return chance;
}

function chanceNow(c: TxnColumns, serverPort: number, j: KernelJoin, events: KernelEventColumns, counts: KernelEventCounts): Float32Array {
  const n = c.n;
  const chance = new Float32Array(n);
  const w = counts.bucketNs;
  if (counts.n === 0 || !(w > 0)) return chance;
  // bucket starts are multiples of w on the absolute clock: their offset from t0
  const off = ((counts.tNs[0] % w) + w) % w;
  const bucketOf = (t: number): number => Math.floor((t - off) / w);
  let lo = Infinity;
  let hi = -Infinity;
  for (let k = 0; k < counts.n; k++) {
    if (counts.kind[k] !== K_SEND_RESET && counts.kind[k] !== K_RECEIVE_RESET) continue;
    const b = bucketOf(counts.tNs[k] + w / 2);
    if (b < lo) lo = b;
    if (b > hi) hi = b;
  }
  if (!(hi >= lo)) return chance;
  const m = hi - lo + 1;
  // per bucket: [client sent, server received, server sent, client received], counted and recorded
  const counted = new Float64Array(4 * m);
  const recorded = new Float64Array(4 * m);
  const slot = (kind: number, serverSide: boolean): number => (kind === K_SEND_RESET ? (serverSide ? 2 : 0) : serverSide ? 1 : 3);
  for (let k = 0; k < counts.n; k++) {
    const kind = counts.kind[k];
    if (kind !== K_SEND_RESET && kind !== K_RECEIVE_RESET) continue;
    counted[4 * (bucketOf(counts.tNs[k] + w / 2) - lo) + slot(kind, counts.serverSide[k] === 1)] += counts.count[k];
  }
  for (let e = 0; e < events.n; e++) {
    const kind = events.kind[e];
    if (kind !== K_SEND_RESET && kind !== K_RECEIVE_RESET) continue;
    const b = bucketOf(events.tNs[e]) - lo;
    if (b >= 0 && b < m) recorded[4 * b + slot(kind, events.sport[e] === serverPort)]++;
  }
  const unrecorded = new Float64Array(m);
  let any = false;
  for (let b = 0; b < m; b++) {
    const d = Math.max(counted[4 * b], counted[4 * b + 1]) + Math.max(counted[4 * b + 2], counted[4 * b + 3]);
    const r = Math.max(recorded[4 * b], recorded[4 * b + 1]) + Math.max(recorded[4 * b + 2], recorded[4 * b + 3]);
    unrecorded[b] = Math.max(0, d - r);
    if (unrecorded[b] > 0) any = true;
  }
  if (!any) return chance;
  const endBucket = new Int32Array(n);
  const without = new Float64Array(m);
  for (let i = 0; i < n; i++) {
    const endUs = c.endUs[i];
    const t = txnStartNs(c, i) + (Number.isNaN(endUs) ? 0 : Math.max(0, endUs)) * 1000;
    const b = bucketOf(t) - lo;
    endBucket[i] = b >= 0 && b < m ? b : -1;
    if (endBucket[i] >= 0 && j.resetsSent[i] + j.resetsReceived[i] === 0) without[endBucket[i]]++;
  }
  for (let i = 0; i < n; i++) {
    const b = endBucket[i];
    if (b < 0 || unrecorded[b] === 0 || j.resetsSent[i] + j.resetsReceived[i] > 0) continue;
    chance[i] = Math.min(1, unrecorded[b] / Math.max(1, without[b]));
  }
  return chance;
}
