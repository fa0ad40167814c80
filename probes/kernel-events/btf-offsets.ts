// Where `head`, `network_header` and `transport_header` sit in the running
// kernel's struct sk_buff, read from its BTF (/sys/kernel/btf/vmlinux, raw
// BTF: the kernel's Documentation/bpf/btf.rst). With them the drop probe reads
// a dropped packet's ports at fixed offsets instead of through struct casts,
// which make bpftrace 0.17 run clang over BTF-generated headers (~0.9 s more
// before it attaches).
//
// Runs once per run, on the way to its first transaction: one pass over the
// type section records where each type starts, then only sk_buff and the
// types its members lead to are decoded. Never throws: null when the file is
// missing, unreadable, malformed, or the members are not there as expected.
import { readFileSync } from 'node:fs';

export const VMLINUX_BTF = '/sys/kernel/btf/vmlinux';

/** Byte offsets within struct sk_buff. */
export interface SkbOffsets {
  /** `unsigned char *head` (8 bytes). */
  head: number;
  /** `__u16 transport_header`. */
  transport: number;
  /** `__u16 network_header`. */
  network: number;
}

const MAGIC = 0xeb9f;
const TYPE_HEADER = 12;

// BTF_KIND_*
const INT = 1;
const PTR = 2;
const ARRAY = 3;
const STRUCT = 4;
const UNION = 5;
const ENUM = 6;
const TYPEDEF = 8;
const VOLATILE = 9;
const CONST = 10;
const RESTRICT = 11;
const FUNC_PROTO = 13;
const VAR = 14;
const DATASEC = 15;
const DECL_TAG = 17;
const TYPE_TAG = 18;
const ENUM64 = 19;
const LAST_KIND = ENUM64;

/** Bytes that follow the 12-byte header of a type of this kind, or -1 for a kind not known here. */
function trailer(kind: number, vlen: number): number {
  switch (kind) {
    case INT:
    case VAR:
    case DECL_TAG:
      return 4;
    case ARRAY:
      return 12;
    case STRUCT:
    case UNION:
    case DATASEC:
    case ENUM64:
      return 12 * vlen;
    case ENUM:
    case FUNC_PROTO:
      return 8 * vlen;
    default:
      // PTR, FWD, TYPEDEF, VOLATILE, CONST, RESTRICT, FUNC, FLOAT, TYPE_TAG: none
      return kind >= 1 && kind <= LAST_KIND ? 0 : -1;
  }
}

/** The sk_buff offsets in a raw BTF image, or null. */
export function parseSkbOffsets(buf: Uint8Array): SkbOffsets | null {
  try {
    return parse(buf);
  } catch {
    return null; // a truncated or inconsistent file reads out of bounds: RangeError
  }
}

/**
 * The sk_buff offsets of the running kernel (or of the BTF file given), or
 * null. Read synchronously: sysfs returns 4 KB per read(), ~1350 of them for
 * 5.5 MB, ~7 ms in a row but 35-110 ms as fs/promises' thread-pool round trips.
 */
export function readSkbOffsets(file = VMLINUX_BTF): SkbOffsets | null {
  let buf: Buffer;
  try {
    buf = readFileSync(file);
  } catch {
    return null;
  }
  return parseSkbOffsets(buf);
}

function parse(buf: Uint8Array): SkbOffsets | null {
  if (buf.length < 24) return null;
  const dv = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  const le = dv.getUint16(0, true) === MAGIC;
  if ((!le && dv.getUint16(0, false) !== MAGIC) || buf[2] !== 1) return null;
  const u32 = (o: number): number => dv.getUint32(o, le);
  const hdrLen = u32(4);
  if (hdrLen < 24) return null;
  const typeStart = hdrLen + u32(8);
  const typeEnd = typeStart + u32(12);
  const strStart = hdrLen + u32(16);
  const strEnd = strStart + u32(20);
  if (typeEnd > buf.length || strEnd > buf.length) return null;

  /** True when the string at name_off is `name` (ASCII), without decoding it. */
  const named = (nameOff: number, name: string): boolean => {
    const at = strStart + nameOff;
    if (at + name.length >= strEnd) return false;
    for (let i = 0; i < name.length; i++) if (buf[at + i] !== name.charCodeAt(i)) return false;
    return buf[at + name.length] === 0;
  };

  // Type ids count from 1 (0 is void); starts[id] is where type id begins.
  let starts = new Uint32Array(1 << 17);
  let n = 1;
  let skb = -1;
  for (let o = typeStart; o < typeEnd;) {
    const info = u32(o + 4);
    const kind = (info >>> 24) & 0x1f;
    const more = trailer(kind, info & 0xffff);
    if (more < 0) return null;
    if (n === starts.length) {
      const grown = new Uint32Array(starts.length * 2);
      grown.set(starts);
      starts = grown;
    }
    if (skb < 0 && kind === STRUCT && named(u32(o), 'sk_buff')) skb = n;
    starts[n++] = o;
    o += TYPE_HEADER + more;
    if (o > typeEnd) return null;
  }
  if (skb < 0) return null;

  const kindOf = (id: number): number => (u32(starts[id] + 4) >>> 24) & 0x1f;
  /** Through typedefs and qualifiers to the type itself. */
  const resolve = (id: number): number => {
    for (let hops = 0; id > 0 && id < n && hops < 32; hops++) {
      const k = kindOf(id);
      if (k !== TYPEDEF && k !== VOLATILE && k !== CONST && k !== RESTRICT && k !== TYPE_TAG) return id;
      id = u32(starts[id] + 8);
    }
    return -1;
  };
  /** Size in bytes of a member's type: ints and pointers only (BTF gives pointers no size: 64-bit kernels assumed). */
  const sizeOf = (id: number): number => {
    const r = resolve(id);
    if (r < 0) return -1;
    const k = kindOf(r);
    return k === PTR ? 8 : k === INT ? u32(starts[r] + 8) : -1;
  };

  const found = new Map<string, { offset: number; size: number }>();
  const wanted = ['head', 'transport_header', 'network_header'];
  /** Members of struct/union `id` at byte `base`, descending into anonymous struct/union members. */
  const walk = (id: number, base: number, depth: number): void => {
    const o = starts[id];
    const info = u32(o + 4);
    const bitfields = info >>> 31 === 1;
    for (let i = 0, m = o + TYPE_HEADER; i < (info & 0xffff); i++, m += 12) {
      const nameOff = u32(m);
      const type = u32(m + 4);
      const raw = u32(m + 8);
      // with kind_flag set, the top 8 bits are a bitfield's size
      const bits = bitfields ? raw & 0xffffff : raw;
      if (bitfields && raw >>> 24 !== 0) continue;
      if (bits % 8 !== 0) continue;
      if (nameOff === 0) {
        const r = resolve(type);
        if (r > 0 && depth < 8 && (kindOf(r) === STRUCT || kindOf(r) === UNION)) walk(r, base + bits / 8, depth + 1);
        continue;
      }
      for (const w of wanted) {
        if (!found.has(w) && named(nameOff, w)) found.set(w, { offset: base + bits / 8, size: sizeOf(type) });
      }
    }
  };
  walk(skb, 0, 0);

  const head = found.get('head');
  const transport = found.get('transport_header');
  const network = found.get('network_header');
  if (head?.size !== 8 || transport?.size !== 2 || network?.size !== 2) return null;
  return { head: head.offset, transport: transport.offset, network: network.offset };
}
