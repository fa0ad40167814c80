// Decoding of bpftrace's output lines into kernel events, and the on-disk
// NDJSON form of events/kernel-events.ndjson (format documented in
// kernel-events.ts).
import { EVENT_PREFIX, KERNEL_EVENT_KINDS, TCP_STATES, type KernelEventKind } from './kernel-events-script.ts';

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
