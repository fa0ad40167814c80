// Decoding of bpftrace's output lines into kernel events, and the on-disk
// NDJSON form of events/kernel-events.ndjson (format documented in
// kernel-events.ts).
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { UserError } from '../../lib/errors.ts';
import { EVENT_PREFIX, KERNEL_EVENT_KINDS, TCP_STATES, type KernelEventKind } from './script.ts';

export const KERNEL_EVENTS_FILE = 'events/kernel-events.ndjson';
export const KERNEL_EVENTS_FORMAT = 'sockspike-kernel-events';
export const KERNEL_EVENTS_VERSION = 1;

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

/** Splits a byte stream into whole lines; keeps the tail until its newline comes. */
export class LineSplitter {
  private rest = '';
  push(chunk: string): string[] {
    const text = this.rest + chunk;
    const lines = text.split('\n');
    this.rest = lines.pop() ?? '';
    return lines;
  }
  /** The unterminated tail, if any (the stream ended mid-line). */
  end(): string | null {
    const r = this.rest;
    this.rest = '';
    return r === '' ? null : r;
  }
}

const stateName = (n: number): string | undefined => (n > 0 ? (TCP_STATES[n] ?? `STATE_${n}`) : undefined);

/**
 * Decode one bpftrace line "@E kind nsecs family sport dport a b".
 * Returns null for anything else (other bpftrace output, a cut line).
 */
export function decodeEventLine(line: string, t0: bigint, reasons: Partial<Record<KernelEventKind, Record<number, string>>>): KernelEvent | null {
  if (!line.startsWith(EVENT_PREFIX)) return null;
  const f = line.slice(EVENT_PREFIX.length).trimEnd().split(' ');
  if (f.length !== 7 || !f.every((x) => /^-?\d+$/.test(x))) return null;
  const kind = KERNEL_EVENT_KINDS[Number(f[0]) - 1];
  if (kind === undefined) return null;
  const fam = Number(f[2]);
  const ev: KernelEvent = {
    tNs: Number(BigInt(f[1]) - t0),
    kind,
    family: fam === 10 ? 6 : 4,
    sport: Number(f[3]),
    dport: Number(f[4]),
  };
  const a = Number(f[5]);
  const b = Number(f[6]);
  if (kind === 'state') {
    ev.oldState = stateName(a);
    ev.newState = stateName(b);
  } else if (kind === 'retransmit' || kind === 'send-reset') {
    const s = stateName(a);
    if (s) ev.state = s;
  }
  if ((kind === 'send-reset' || kind === 'drop') && b >= 0) ev.reason = reasons[kind]?.[b] ?? `REASON_${b}`;
  return ev;
}

/** Parse one NDJSON line of the events file: an event, or null (header, trailer, junk). */
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

/** A run's kernel events as read back: the header (null: missing or damaged), the events, and from when they were recorded. */
export interface KernelEventsRead {
  header: { format: string; version: number; t0Ns: string; attachedNs?: number } & Record<string, unknown>;
  events: KernelEvent[];
  /** ns since t0 from which events were recorded (the header's attachedNs; 0 in older files or without a header). */
  fromNs: number;
}

/**
 * The one reader of events/kernel-events.ndjson: null when the probe did not
 * run (no file). Cut or corrupt lines are skipped, and a damaged header only
 * loses what it said; a file of a newer format version is a UserError.
 * Events are in file order (bpftrace emits per CPU, so times can be slightly
 * out of order; sort by tNs if order matters).
 */
export function readKernelEventsFile(runDir: string): (Omit<KernelEventsRead, 'header'> & { header: KernelEventsRead['header'] | null }) | null {
  const file = join(runDir, KERNEL_EVENTS_FILE);
  if (!existsSync(file)) return null;
  const lines = readFileSync(file, 'utf8').split('\n');
  let header: KernelEventsRead['header'] | null = null;
  try {
    const h = JSON.parse(lines[0] ?? '') as KernelEventsRead['header'];
    if (h !== null && typeof h === 'object' && h.format === KERNEL_EVENTS_FORMAT) header = h;
  } catch {
    // damaged: the events still count
  }
  if (header !== null && typeof header.version === 'number' && header.version > KERNEL_EVENTS_VERSION)
    throw new UserError(`${file}: format version ${header.version} is newer than this sockspike reads (${KERNEL_EVENTS_VERSION})`);
  const events: KernelEvent[] = [];
  for (const line of lines) {
    const ev = parseEventRecord(line);
    if (ev) events.push(ev);
  }
  const at = header?.attachedNs;
  return { header, events, fromNs: typeof at === 'number' && Number.isFinite(at) && at > 0 ? at : 0 };
}
