// Decoding of bpftrace's output lines: events ("@E ...") into KernelEvent
// objects or binary records, and count lines ("@C3[1, 7, 12, 17]: 45") into
// count records, as events-file.ts writes them.
import { COUNT_PREFIX, BUCKET_NS, EVENT_PREFIX, KERNEL_EVENT_KINDS, TCP_STATES } from './script.ts';
import { FLAG_COUNT, FLAG_IPV6, FLAG_SERVER_SIDE, type KernelEvent, type KevRecord, type ReasonTables } from './events-file.ts';

export type { KernelEvent } from './events-file.ts';

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
export function decodeEventLine(line: string, t0: bigint, reasons: ReasonTables): KernelEvent | null {
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

/**
 * One bpftrace line as a record for events/kernel-events.bin: an event
 * ("@E kind nsecs family sport dport a b") or a count ("@C<kind>[side, a, b,
 * bucket]: N"); null for anything else. `ports`: the server ports (an
 * event's side).
 */
export function decodeRecordLine(line: string, t0: bigint, ports: number[]): KevRecord | null {
  if (line.startsWith(EVENT_PREFIX)) {
    const f = line.slice(EVENT_PREFIX.length).trimEnd().split(' ');
    if (f.length !== 7) return null;
    const kind = Number(f[0]);
    const t = f[1];
    const fam = Number(f[2]);
    const sport = Number(f[3]);
    const dport = Number(f[4]);
    const a = Number(f[5]);
    const b = Number(f[6]);
    if (!f.every((x) => /^-?\d+$/.test(x)) || !(kind >= 1 && kind <= KERNEL_EVENT_KINDS.length) || t.startsWith('-')) return null;
    const flags = (fam === 10 ? FLAG_IPV6 : 0) | (ports.includes(sport) ? FLAG_SERVER_SIDE : 0);
    return { tNs: Number(BigInt(t) - t0), sport, dport, kind, flags, ...fields(kind, a, b), count: 1 };
  }
  if (line.startsWith(COUNT_PREFIX)) {
    const m = /^@C(\d)\[(\d+), (-?\d+), (-?\d+), (\d+)\]: (\d+)$/.exec(line.trimEnd());
    if (!m) return null;
    const kind = Number(m[1]);
    if (!(kind >= 1 && kind <= KERNEL_EVENT_KINDS.length)) return null;
    const flags = FLAG_COUNT | (m[2] !== '0' ? FLAG_SERVER_SIDE : 0);
    const tNs = Number(BigInt(m[5]) * BigInt(BUCKET_NS) - t0);
    return { tNs, sport: 0, dport: 0, kind, flags, ...fields(kind, Number(m[3]), Number(m[4])), count: Number(m[6]) };
  }
  return null;
}

/** The printed a, b of a kind as the record's state fields and reason. */
function fields(kind: number, a: number, b: number): { a: number; b: number; reason: number } {
  const k = KERNEL_EVENT_KINDS[kind - 1];
  if (k === 'state') return { a: a & 0xff, b: b & 0xff, reason: -1 };
  if (k === 'send-reset') return { a: a > 0 ? a & 0xff : 0, b: 0, reason: b >= 0 ? b : -1 };
  if (k === 'drop') return { a: 0, b: 0, reason: b >= 0 ? b : -1 };
  if (k === 'retransmit') return { a: a > 0 ? a & 0xff : 0, b: 0, reason: -1 };
  return { a: 0, b: 0, reason: -1 };
}
