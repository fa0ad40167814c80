// The kernel-events file of a run directory: its binary form (version 2,
// events/kernel-events.bin, written by tracer.ts) and the one reader of it,
// which also reads the NDJSON form of older runs (version 1,
// events/kernel-events.ndjson). Layouts: docs/run-directory.md.
//
// Version 2, all little-endian:
//   0   8 bytes magic "SSPKKEV2"
//   8   u32 H: length of the header
//   12  H bytes of header: UTF-8 JSON, the fields of version 1's header line
//       (format, version, t0Ns, ports, netns, bpftrace, kernel, states, probes,
//       skipped, startupMs, attachedNs, notes) plus bucketNs (width of a count
//       record's bucket), budget (events recorded one by one per count key and
//       bucket) and reasons ({kind: {enum value: name}})
//   then 24-byte records:
//   0   f64 tNs      event: ns since t0; count record: start of its bucket (ns since t0)
//   8   u16 sport    event only (0 in a count record)
//   10  u16 dport    event only
//   12  u8  kind     1..6: KERNEL_EVENT_KINDS index + 1; 0: the end record
//   13  u8  flags    bit 0: count record; bit 1: IPv6; bit 2: server side (sport is a server port)
//   14  u8  a        state (retransmit, send-reset) or old state (state); 0: none
//   15  u8  b        new state (state); 0: none
//   16  i32 reason   kernel enum value, named by header.reasons[kind]; -1: none
//   20  u32 count    event: 1; count record: events of that key in the bucket
//                    (those recorded one by one included); end record: events lost
// A count record's key is (kind, server side, a, b, reason, bucket). The same
// key can come in several records (bpftrace prints and clears its map every
// second): add them up. The end record is written at stop; a file without it
// was cut short (the probe process died), and a cut last record is ignored.
import { createWriteStream, existsSync, readFileSync, type WriteStream } from 'node:fs';
import { join } from 'node:path';
import { UserError } from '../../lib/errors.ts';
import { KERNEL_EVENT_KINDS, TCP_STATES, type KernelEventKind } from './script.ts';
import type { SkippedProbe } from '../../lib/types.ts';
import type { StateEvents } from './script.ts';

export const KERNEL_EVENTS_FILE = 'events/kernel-events.bin';
/** Version 1 (NDJSON), written by sockspike before the binary form; still read. */
export const KERNEL_EVENTS_FILE_V1 = 'events/kernel-events.ndjson';
export const KERNEL_EVENTS_FORMAT = 'sockspike-kernel-events';
export const KERNEL_EVENTS_VERSION = 2;
export const KERNEL_EVENTS_MAGIC = 'SSPKKEV2';
export const KEV_RECORD = 24;

export const FLAG_COUNT = 1;
export const FLAG_IPV6 = 2;
export const FLAG_SERVER_SIDE = 4;

export interface KernelEvent {
  /** ns since the run's t0 (CLOCK_MONOTONIC; negative if before t0). */
  tNs: number;
  kind: KernelEventKind;
  family: 4 | 6;
  sport: number;
  dport: number;
  /** Socket state at the event (retransmit, send-reset), where the kernel gives it. */
  state?: string;
  /** For kind 'state'. */
  oldState?: string;
  newState?: string;
  /** Drop reason (SKB_DROP_REASON_* without prefix) or reset reason (SK_RST_REASON_*). */
  reason?: string;
}

export type ReasonTables = Partial<Record<KernelEventKind, Record<number, string>>>;

export interface KernelEventsHeader {
  format: string;
  version: number;
  t0Ns: string;
  ports: number[];
  netns: string | null;
  bpftrace: string;
  kernel: string;
  states: StateEvents;
  probes: string[];
  skipped: SkippedProbe[];
  startupMs: number;
  /** ns since t0 when the probes were attached: nothing before it is recorded (absent in older files). */
  attachedNs?: number;
  notes: string[];
  /** Version 2: width of a count record's bucket, ns. */
  bucketNs?: number;
  /** Version 2: events recorded one by one per count key and bucket (kinds counted in the kernel); the rest only counted. */
  budget?: number;
  /** Version 2: the kinds whose events beyond the budget are only counted. */
  budgeted?: KernelEventKind[];
  /** Version 2: enum value -> name of the reason field, per kind. */
  reasons?: ReasonTables;
}

/** Events recorded one by one, as columns (file order; bpftrace emits per CPU, so sort by tNs if order matters). */
export interface KernelEventColumns {
  n: number;
  tNs: Float64Array;
  /** KERNEL_EVENT_KINDS index + 1. */
  kind: Uint8Array;
  family: Uint8Array;
  sport: Uint16Array;
  dport: Uint16Array;
  /** State (retransmit, send-reset) or old state (state), TCP_STATES index; 0 none. */
  a: Uint8Array;
  /** New state (state); 0 none. */
  b: Uint8Array;
  /** Enum value, named by `reasons`; -1 none. */
  reason: Int32Array;
  reasons: ReasonTables;
}

/** Events counted in the kernel, per key and bucket (empty for version 1 files, which recorded every event). */
export interface KernelEventCounts {
  n: number;
  bucketNs: number;
  /** Bucket start, ns since t0. */
  tNs: Float64Array;
  kind: Uint8Array;
  serverSide: Uint8Array;
  a: Uint8Array;
  b: Uint8Array;
  reason: Int32Array;
  count: Uint32Array;
}

/** A run's kernel events as read back. */
export interface KernelEventsRead {
  /** The file read (path). */
  file: string;
  /** null: a version 1 file whose header line is damaged. */
  header: KernelEventsHeader | null;
  events: KernelEventColumns;
  counts: KernelEventCounts;
  /** ns since t0 from which events were recorded (the header's attachedNs; 0 in older files or without one). */
  fromNs: number;
  /** Events per kind: counted in the kernel where it counted them, else recorded. */
  byKind: Record<string, number>;
  /** Events seen in all (recorded one by one or counted). */
  total: number;
  /** Events the perf buffer lost; null when the file has no end record. */
  lost: number | null;
}

export const kindName = (code: number): KernelEventKind | undefined => KERNEL_EVENT_KINDS[code - 1];
export const kindCodeOf = (k: KernelEventKind): number => KERNEL_EVENT_KINDS.indexOf(k) + 1;
const stateName = (n: number): string | undefined => (n > 0 ? (TCP_STATES[n] ?? `STATE_${n}`) : undefined);
const stateCode = (s: string | undefined): number => {
  if (s === undefined) return 0;
  const i = (TCP_STATES as readonly string[]).indexOf(s);
  if (i >= 0) return i;
  const m = /^STATE_(\d+)$/.exec(s);
  return m ? Number(m[1]) & 0xff : 0;
};

/** Event i as an object (for display and tests; the analysis reads the columns). */
export function eventAt(c: KernelEventColumns, i: number): KernelEvent {
  const kind = kindName(c.kind[i]) ?? 'retransmit';
  const ev: KernelEvent = { tNs: c.tNs[i], kind, family: c.family[i] === 6 ? 6 : 4, sport: c.sport[i], dport: c.dport[i] };
  if (kind === 'state') {
    ev.oldState = stateName(c.a[i]);
    ev.newState = stateName(c.b[i]);
  } else if (kind === 'retransmit' || kind === 'send-reset') {
    const s = stateName(c.a[i]);
    if (s) ev.state = s;
  }
  const r = c.reason[i];
  if ((kind === 'send-reset' || kind === 'drop') && r >= 0) ev.reason = c.reasons[kind]?.[r] ?? `REASON_${r}`;
  return ev;
}

export function eventList(c: KernelEventColumns): KernelEvent[] {
  const out: KernelEvent[] = new Array<KernelEvent>(c.n);
  for (let i = 0; i < c.n; i++) out[i] = eventAt(c, i);
  return out;
}

function allocEvents(n: number, reasons: ReasonTables): KernelEventColumns {
  return {
    n,
    tNs: new Float64Array(n),
    kind: new Uint8Array(n),
    family: new Uint8Array(n),
    sport: new Uint16Array(n),
    dport: new Uint16Array(n),
    a: new Uint8Array(n),
    b: new Uint8Array(n),
    reason: new Int32Array(n),
    reasons,
  };
}

function allocCounts(n: number, bucketNs: number): KernelEventCounts {
  return {
    n,
    bucketNs,
    tNs: new Float64Array(n),
    kind: new Uint8Array(n),
    serverSide: new Uint8Array(n),
    a: new Uint8Array(n),
    b: new Uint8Array(n),
    reason: new Int32Array(n),
    count: new Uint32Array(n),
  };
}

/** Events (objects) as columns: for tests and for version 1 files. Reason names get codes of their own. */
export function eventColumns(events: KernelEvent[]): KernelEventColumns {
  const reasons: ReasonTables = {};
  const codes = new Map<string, number>();
  const c = allocEvents(events.length, reasons);
  for (let i = 0; i < events.length; i++) setEvent(c, i, events[i], reasons, codes);
  return c;
}

function setEvent(c: KernelEventColumns, i: number, ev: KernelEvent, reasons: ReasonTables, codes: Map<string, number>): void {
  c.tNs[i] = ev.tNs;
  c.kind[i] = kindCodeOf(ev.kind);
  c.family[i] = ev.family === 6 ? 6 : 4;
  c.sport[i] = ev.sport;
  c.dport[i] = ev.dport;
  c.a[i] = stateCode(ev.kind === 'state' ? ev.oldState : ev.state);
  c.b[i] = ev.kind === 'state' ? stateCode(ev.newState) : 0;
  let r = -1;
  if (ev.reason !== undefined) {
    const key = `${ev.kind} ${ev.reason}`;
    r = codes.get(key) ?? -1;
    if (r < 0) {
      const table = (reasons[ev.kind] ??= {});
      r = Object.keys(table).length;
      table[r] = ev.reason;
      codes.set(key, r);
    }
  }
  c.reason[i] = r;
}

const emptyCounts = (bucketNs = 0): KernelEventCounts => allocCounts(0, bucketNs);

/**
 * The one reader of a run's kernel-events file: events/kernel-events.bin
 * (version 2) or, in older runs, events/kernel-events.ndjson (version 1).
 * null when the probe did not run (neither file). A damaged binary file (bad
 * magic or header, a record of no known kind, a newer version) is a UserError
 * naming the file; a cut last record is ignored. In a version 1 file, cut or
 * corrupt lines are skipped and a damaged header only loses what it said.
 */
export function readKernelEventsFile(runDir: string): KernelEventsRead | null {
  const bin = join(runDir, KERNEL_EVENTS_FILE);
  if (existsSync(bin)) return readBinary(bin);
  const v1 = join(runDir, KERNEL_EVENTS_FILE_V1);
  if (existsSync(v1)) return readNdjson(v1);
  return null;
}

const fromNsOf = (h: KernelEventsHeader | null): number => {
  const at = h?.attachedNs;
  return typeof at === 'number' && Number.isFinite(at) && at > 0 ? at : 0;
};

function readBinary(file: string): KernelEventsRead {
  const buf = readFileSync(file);
  const damaged = (what: string): UserError => new UserError(`${file}: damaged kernel-events file (${what})`);
  if (buf.length < 12 || buf.toString('latin1', 0, 8) !== KERNEL_EVENTS_MAGIC) {
    if (buf.length >= 8 && buf.toString('latin1', 0, 7) === KERNEL_EVENTS_MAGIC.slice(0, 7) && buf[7] >= 0x30 && buf[7] <= 0x39)
      throw new UserError(`${file}: format version ${buf.toString('latin1', 7, 8)} is not one this sockspike reads (${KERNEL_EVENTS_VERSION})`);
    throw damaged(buf.length < 12 ? 'shorter than its header' : `not a sockspike kernel-events file: magic ${JSON.stringify(buf.toString('latin1', 0, 8))}`);
  }
  const hLen = buf.readUInt32LE(8);
  if (12 + hLen > buf.length) throw damaged(`header of ${hLen} bytes in a file of ${buf.length}`);
  let header: KernelEventsHeader;
  try {
    header = JSON.parse(buf.toString('utf8', 12, 12 + hLen)) as KernelEventsHeader;
  } catch {
    throw damaged('header is not JSON');
  }
  if (header === null || typeof header !== 'object' || header.format !== KERNEL_EVENTS_FORMAT) throw damaged('header is not a sockspike kernel-events header');
  if (typeof header.version === 'number' && header.version > KERNEL_EVENTS_VERSION)
    throw new UserError(`${file}: format version ${header.version} is newer than this sockspike reads (${KERNEL_EVENTS_VERSION})`);
  const reasons: ReasonTables = header.reasons !== null && typeof header.reasons === 'object' ? header.reasons : {};
  const bucketNs = typeof header.bucketNs === 'number' && header.bucketNs > 0 ? header.bucketNs : 0;

  const at0 = 12 + hLen;
  const records = Math.floor((buf.length - at0) / KEV_RECORD);
  // Two passes: count, then fill typed arrays of the right sizes.
  let nEv = 0;
  let nCount = 0;
  let lost: number | null = null;
  for (let r = 0, o = at0; r < records; r++, o += KEV_RECORD) {
    const kind = buf[o + 12];
    const flags = buf[o + 13];
    if (kind === 0) {
      lost = (lost ?? 0) + buf.readUInt32LE(o + 20);
      continue;
    }
    if (kind > KERNEL_EVENT_KINDS.length || flags > 7) throw damaged(`record ${r + 1}: kind ${kind}, flags ${flags}`);
    const t = buf.readDoubleLE(o);
    if (!Number.isFinite(t)) throw damaged(`record ${r + 1}: time ${t}`);
    if (flags & FLAG_COUNT) nCount++;
    else nEv++;
  }
  const ev = allocEvents(nEv, reasons);
  const cn = allocCounts(nCount, bucketNs);
  const byKind: Record<string, number> = {};
  const recordedByKind = new Float64Array(KERNEL_EVENT_KINDS.length + 1);
  const countedByKind = new Float64Array(KERNEL_EVENT_KINDS.length + 1);
  let e = 0;
  let k = 0;
  for (let r = 0, o = at0; r < records; r++, o += KEV_RECORD) {
    const kind = buf[o + 12];
    if (kind === 0) continue;
    const flags = buf[o + 13];
    if (flags & FLAG_COUNT) {
      cn.tNs[k] = buf.readDoubleLE(o);
      cn.kind[k] = kind;
      cn.serverSide[k] = flags & FLAG_SERVER_SIDE ? 1 : 0;
      cn.a[k] = buf[o + 14];
      cn.b[k] = buf[o + 15];
      cn.reason[k] = buf.readInt32LE(o + 16);
      const count = buf.readUInt32LE(o + 20);
      cn.count[k++] = count;
      countedByKind[kind] += count;
    } else {
      ev.tNs[e] = buf.readDoubleLE(o);
      ev.sport[e] = buf.readUInt16LE(o + 8);
      ev.dport[e] = buf.readUInt16LE(o + 10);
      ev.kind[e] = kind;
      ev.family[e] = flags & FLAG_IPV6 ? 6 : 4;
      ev.a[e] = buf[o + 14];
      ev.b[e] = buf[o + 15];
      ev.reason[e++] = buf.readInt32LE(o + 16);
      recordedByKind[kind]++;
    }
  }
  let total = 0;
  for (let code = 1; code <= KERNEL_EVENT_KINDS.length; code++) {
    // counts can miss the few events between bpftrace's print of its map and the clear that follows
    const v = Math.max(countedByKind[code], recordedByKind[code]);
    if (v > 0) byKind[KERNEL_EVENT_KINDS[code - 1]] = v;
    total += v;
  }
  return { file, header, events: ev, counts: cn, fromNs: fromNsOf(header), byKind, total, lost };
}

/** Parse one NDJSON line of a version 1 file: an event, or null (header, trailer, junk). */
export function parseEventRecord(line: string): KernelEvent | null {
  if (!line.startsWith('{"tNs"')) return null;
  try {
    const v = JSON.parse(line) as Partial<KernelEvent>;
    if (typeof v.tNs !== 'number' || typeof v.kind !== 'string' || !KERNEL_EVENT_KINDS.includes(v.kind)) return null;
    if (typeof v.sport !== 'number' || typeof v.dport !== 'number') return null;
    return v as KernelEvent;
  } catch {
    return null; // a line cut short by a crash
  }
}

function readNdjson(file: string): KernelEventsRead {
  // Bytes, not a string: a 2-million-event file is 200 MB, and its lines are
  // read by the byte parser below (JSON.parse for any line it does not take).
  const buf = readFileSync(file);
  const nl0 = buf.indexOf(NL);
  let header: KernelEventsHeader | null = null;
  try {
    const h = JSON.parse(buf.toString('utf8', 0, nl0 < 0 ? buf.length : nl0)) as KernelEventsHeader;
    if (h !== null && typeof h === 'object' && h.format === KERNEL_EVENTS_FORMAT) header = h;
  } catch {
    // damaged: the events still count
  }
  if (header !== null && typeof header.version === 'number' && header.version > 1)
    throw new UserError(`${file}: format version ${header.version} in an NDJSON kernel-events file (only version 1 is NDJSON)`);
  // Lines counted first, so the columns are allocated once.
  let lines = 0;
  for (let p = 0; p < buf.length;) {
    if (startsAt(buf, p, EVENT_LINE)) lines++;
    const e = buf.indexOf(NL, p);
    p = e < 0 ? buf.length : e + 1;
  }
  const reasons: ReasonTables = {};
  const codes = new Map<string, number>();
  const c = allocEvents(lines, reasons);
  const byKind: Record<string, number> = {};
  const kindCounts = new Float64Array(KERNEL_EVENT_KINDS.length + 1);
  const names = new ValueNames();
  const scratch: FastEvent = { tNs: 0, kind: 0, family: 4, sport: -1, dport: -1, a: 0, b: 0, reason: -1 };
  let n = 0;
  let lost: number | null = null;
  let start = 0;
  while (start < buf.length && n <= lines) {
    let end = buf.indexOf(NL, start);
    if (end < 0) end = buf.length;
    if (startsAt(buf, start, EVENT_LINE) && n < lines) {
      if (fastEvent(buf, start, end, scratch, names)) {
        c.tNs[n] = scratch.tNs;
        c.kind[n] = scratch.kind;
        c.family[n] = scratch.family;
        c.sport[n] = scratch.sport;
        c.dport[n] = scratch.dport;
        c.a[n] = scratch.a;
        c.b[n] = scratch.b;
        let r = -1;
        if (scratch.reason >= 0) {
          const kind = KERNEL_EVENT_KINDS[scratch.kind - 1];
          const key = `${kind} ${names.name(scratch.reason)}`;
          r = codes.get(key) ?? -1;
          if (r < 0) {
            const table = (reasons[kind] ??= {});
            r = Object.keys(table).length;
            table[r] = names.name(scratch.reason);
            codes.set(key, r);
          }
        }
        c.reason[n] = r;
        kindCounts[scratch.kind]++;
        n++;
      } else {
        const ev = parseEventRecord(buf.toString('utf8', start, end));
        if (ev !== null) {
          setEvent(c, n++, ev, reasons, codes);
          kindCounts[kindCodeOf(ev.kind)]++;
        }
      }
    } else if (startsAt(buf, start, END_LINE)) {
      try {
        const t = JSON.parse(buf.toString('utf8', start, end)) as { lost?: unknown };
        lost = typeof t.lost === 'number' ? t.lost : 0;
      } catch {
        // a cut trailer
      }
    }
    start = end + 1;
  }
  for (let k = 1; k <= KERNEL_EVENT_KINDS.length; k++) if (kindCounts[k] > 0) byKind[KERNEL_EVENT_KINDS[k - 1]] = kindCounts[k];
  const events = n === lines ? c : sliceEvents(c, n);
  return { file, header, events, counts: emptyCounts(), fromNs: fromNsOf(header), byKind, total: n, lost };
}

const NL = 0x0a;

function startsAt(buf: Buffer, p: number, prefix: Buffer): boolean {
  if (p + prefix.length > buf.length) return false;
  for (let k = 0; k < prefix.length; k++) if (buf[p + k] !== prefix[k]) return false;
  return true;
}
const QUOTE = 0x22;
const EVENT_LINE = Buffer.from('{"tNs":');
const END_LINE = Buffer.from('{"end"');

interface FastEvent {
  tNs: number;
  kind: number;
  family: number;
  sport: number;
  dport: number;
  a: number;
  b: number;
  /** Index into ValueNames, -1: none. */
  reason: number;
}

/** The short string values of the NDJSON lines (kinds, states, reasons), by their bytes: a string is made once per distinct value. */
class ValueNames {
  private readonly byHash = new Map<number, number>();
  private readonly list: string[] = [];
  /** Index of the value buf[a..b). */
  index(buf: Buffer, a: number, b: number): number {
    let h = 0x811c9dc5 ^ (b - a);
    for (let i = a; i < b; i++) h = Math.imul(h ^ buf[i], 0x01000193);
    const hit = this.byHash.get(h);
    if (hit !== undefined && this.list[hit].length === b - a) return hit;
    this.list.push(buf.toString('latin1', a, b));
    this.byHash.set(h, this.list.length - 1);
    return this.list.length - 1;
  }
  name(i: number): string {
    return this.list[i];
  }
}

const STATE_CODE = new Map<string, number>(TCP_STATES.map((s, i) => [s, i]));
const KIND_CODE = new Map<string, number>(KERNEL_EVENT_KINDS.map((k, i) => [k, i + 1]));
const KIND_STATE = KERNEL_EVENT_KINDS.indexOf('state') + 1;

/**
 * One event line of a version 1 file, {"tNs":N,"kind":"K",...} as the tracer
 * wrote it (flat; numbers and plain strings), into `out`; false for anything
 * else (an escape, an unknown key or kind, a state not named as the kernel
 * names it, a cut line), which is then given to JSON.parse.
 */
function fastEvent(buf: Buffer, s: number, e: number, out: FastEvent, names: ValueNames): boolean {
  out.kind = 0;
  out.family = 4;
  out.sport = -1;
  out.dport = -1;
  out.a = 0;
  out.b = 0;
  out.reason = -1;
  let hasT = false;
  let state = 0;
  let oldState = 0;
  let newState = 0;
  let p = s + 1;
  while (p < e) {
    if (buf[p] !== QUOTE) return false;
    const k0 = p + 1;
    const k1 = buf.indexOf(QUOTE, k0);
    if (k1 < 0 || k1 >= e || buf[k1 + 1] !== 0x3a) return false;
    p = k1 + 2;
    let num = NaN;
    let str = -1;
    if (buf[p] === QUOTE) {
      const v1 = buf.indexOf(QUOTE, p + 1);
      if (v1 < 0 || v1 >= e) return false;
      for (let i = p + 1; i < v1; i++) if (buf[i] === 0x5c) return false;
      str = names.index(buf, p + 1, v1);
      p = v1 + 1;
    } else {
      let q = p;
      let neg = false;
      if (buf[q] === 0x2d) {
        neg = true;
        q++;
      }
      let v = 0;
      const d0 = q;
      while (q < e && buf[q] >= 0x30 && buf[q] <= 0x39) v = v * 10 + (buf[q++] - 0x30);
      if (q === d0) return false;
      if (buf[q] === 0x2e || buf[q] === 0x65 || buf[q] === 0x45) {
        while (q < e && buf[q] !== 0x2c && buf[q] !== 0x7d) q++;
        v = Number(buf.toString('latin1', p, q));
        neg = false;
        if (!Number.isFinite(v)) return false;
      }
      num = neg ? -v : v;
      p = q;
    }
    const klen = k1 - k0;
    const c0 = buf[k0];
    if (klen === 3 && c0 === 0x74) {
      if (Number.isNaN(num)) return false;
      out.tNs = num;
      hasT = true;
    } else if (klen === 4 && c0 === 0x6b) {
      if (str < 0) return false;
      const code = KIND_CODE.get(names.name(str));
      if (code === undefined) return false;
      out.kind = code;
    } else if (klen === 6 && c0 === 0x66) out.family = num === 6 ? 6 : 4;
    else if (klen === 5 && c0 === 0x73 && buf[k0 + 1] === 0x70) out.sport = num;
    else if (klen === 5 && c0 === 0x64) out.dport = num;
    else if ((klen === 5 && c0 === 0x73) || (klen === 8 && (c0 === 0x6f || c0 === 0x6e))) {
      if (str < 0) return false;
      const code = STATE_CODE.get(names.name(str));
      if (code === undefined) return false;
      if (c0 === 0x6e) newState = code;
      else if (c0 === 0x6f) oldState = code;
      else state = code;
    } else if (klen === 6 && c0 === 0x72) {
      if (str < 0) return false;
      out.reason = str;
    } else return false;
    if (buf[p] === 0x2c) p++;
    else if (buf[p] === 0x7d) {
      p++;
      break;
    } else return false;
  }
  if (p !== e && !(p === e - 1 && buf[p] === 0x0d)) return false;
  // as setEvent: a state change keeps its old and new state, any other kind its state
  if (out.kind === KIND_STATE) {
    out.a = oldState;
    out.b = newState;
  } else out.a = state;
  return hasT && out.kind > 0 && out.sport >= 0 && out.sport < 65536 && out.dport >= 0 && out.dport < 65536 && Number.isFinite(out.tNs);
}

function sliceEvents(c: KernelEventColumns, n: number): KernelEventColumns {
  return {
    n,
    tNs: c.tNs.subarray(0, n),
    kind: c.kind.subarray(0, n),
    family: c.family.subarray(0, n),
    sport: c.sport.subarray(0, n),
    dport: c.dport.subarray(0, n),
    a: c.a.subarray(0, n),
    b: c.b.subarray(0, n),
    reason: c.reason.subarray(0, n),
    reasons: c.reasons,
  };
}

/** One record to write: an event (count 1) or a count record (flags has FLAG_COUNT). */
export interface KevRecord {
  tNs: number;
  sport: number;
  dport: number;
  kind: number;
  flags: number;
  a: number;
  b: number;
  reason: number;
  count: number;
}

function headerBytes(header: KernelEventsHeader): Buffer {
  const json = Buffer.from(JSON.stringify(header), 'utf8');
  const head = Buffer.alloc(12);
  head.write(KERNEL_EVENTS_MAGIC, 0, 'latin1');
  head.writeUInt32LE(json.length, 8);
  return Buffer.concat([head, json]);
}

function putRecord(b: Buffer, o: number, r: KevRecord): void {
  b.writeDoubleLE(r.tNs, o);
  b.writeUInt16LE(r.sport & 0xffff, o + 8);
  b.writeUInt16LE(r.dport & 0xffff, o + 10);
  b[o + 12] = r.kind;
  b[o + 13] = r.flags;
  b[o + 14] = r.a & 0xff;
  b[o + 15] = r.b & 0xff;
  b.writeInt32LE(Math.max(-1, Math.min(0x7fffffff, r.reason)), o + 16);
  b.writeUInt32LE(Math.max(0, Math.min(0xffffffff, r.count)), o + 20);
}

/** A whole events file in memory (generated runs: the bench, fixtures), the end record included. */
export function kernelEventsBytes(header: KernelEventsHeader, records: KevRecord[], endNs: number, lost = 0): Buffer {
  const head = headerBytes(header);
  const out = Buffer.alloc(head.length + (records.length + 1) * KEV_RECORD);
  head.copy(out, 0);
  let o = head.length;
  for (const r of records) {
    putRecord(out, o, r);
    o += KEV_RECORD;
  }
  putRecord(out, o, { tNs: endNs, sport: 0, dport: 0, kind: 0, flags: 0, a: 0, b: 0, reason: -1, count: lost });
  return out;
}

/** Writes events/kernel-events.bin: the header at once, records as they come, the end record at close. */
export class KernelEventsWriter {
  private readonly out: WriteStream;
  private page: Buffer;
  private used = 0;

  constructor(
    readonly path: string,
    header: KernelEventsHeader,
  ) {
    this.out = createWriteStream(path);
    this.out.write(headerBytes(header));
    this.page = Buffer.alloc(256 * KEV_RECORD);
  }

  add(r: KevRecord): void {
    if (this.used + KEV_RECORD > this.page.length) this.flush();
    putRecord(this.page, this.used, r);
    this.used += KEV_RECORD;
  }

  /** Hand what is buffered to the stream (a new page: the stream keeps the old one until written). */
  flush(): void {
    if (this.used === 0) return;
    this.out.write(this.page.subarray(0, this.used));
    this.page = Buffer.allocUnsafe(this.page.length);
    this.used = 0;
  }

  /** The end record (events lost), then close. */
  close(endNs: number, lost: number): Promise<void> {
    this.add({ tNs: endNs, sport: 0, dport: 0, kind: 0, flags: 0, a: 0, b: 0, reason: -1, count: lost });
    this.flush();
    return new Promise<void>((resolve, reject) => {
      this.out.once('error', reject);
      this.out.end(() => resolve());
    });
  }
}
