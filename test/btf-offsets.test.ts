import test from 'ava';
import { existsSync, readFileSync } from 'node:fs';
import { VMLINUX_BTF, parseSkbOffsets, readSkbOffsets } from '../probes/kernel-events/btf-offsets.ts';
import { buildScript } from '../probes/kernel-events/script.ts';

// sk_buff's offsets from raw BTF (probes/kernel-events/btf-offsets.ts): a
// synthetic image laid out as recent kernels lay sk_buff out (the headers
// inside an anonymous union from struct_group), the running kernel's own
// file, and the drop probe built from the offsets.

interface Type {
  name?: string;
  kind: number;
  vlen?: number;
  kindFlag?: boolean;
  /** size or type id */
  sizeOrType?: number;
  /** u32s after the 12-byte header; a string is a name, turned into its offset */
  tail?: (number | string)[];
}

/** A raw BTF image of `types` (ids from 1). */
function btf(types: Type[], { bigEndian = false, magic = 0xeb9f } = {}): Buffer {
  const strs = ['']; // offset 0: the empty name
  const strOff = (s: string): number => {
    let o = 0;
    for (const x of strs) {
      if (x === s) return o;
      o += Buffer.byteLength(x) + 1;
    }
    strs.push(s);
    return o;
  };
  const words: number[] = [];
  for (const ty of types) {
    words.push(ty.name ? strOff(ty.name) : 0, ((ty.kindFlag ? 1 : 0) << 31) | (ty.kind << 24) | (ty.vlen ?? 0), ty.sizeOrType ?? 0);
    for (const w of ty.tail ?? []) words.push(typeof w === 'string' ? strOff(w) : w);
  }
  const strBytes = Buffer.from(strs.map((s) => s + '\0').join(''), 'latin1');
  const out = Buffer.alloc(24 + words.length * 4 + strBytes.length);
  const u32 = (v: number, o: number): number => (bigEndian ? out.writeUInt32BE(v >>> 0, o) : out.writeUInt32LE(v >>> 0, o));
  if (bigEndian) out.writeUInt16BE(magic, 0);
  else out.writeUInt16LE(magic, 0);
  out[2] = 1; // version
  u32(24, 4); // hdr_len
  u32(0, 8); // type_off
  u32(words.length * 4, 12); // type_len
  u32(words.length * 4, 16); // str_off
  u32(strBytes.length, 20); // str_len
  words.forEach((w, i) => u32(w, 24 + i * 4));
  strBytes.copy(out, 24 + words.length * 4);
  return out;
}

const [INT, PTR, STRUCT, UNION, ENUM, FWD, TYPEDEF, CONST, FUNC_PROTO] = [1, 2, 4, 5, 6, 7, 8, 10, 13];

/** sk_buff as on 6.x: a bitfield, headers in an anonymous union of an anonymous struct and `headers`, `head` through a const. */
function skbTypes(headType = 2): Type[] {
  return [
    /* 1 */ { name: 'unsigned char', kind: INT, sizeOrType: 1, tail: [8] },
    /* 2 */ { kind: PTR, sizeOrType: 1 },
    /* 3 */ { name: 'short unsigned int', kind: INT, sizeOrType: 2, tail: [16] },
    /* 4 */ { name: '__u16', kind: TYPEDEF, sizeOrType: 3 },
    /* 5 */ { name: 'sk_buff', kind: FWD }, // a forward declaration first: not the struct
    /* 6 */ { name: 'pkt_type', kind: ENUM, vlen: 2, sizeOrType: 4, tail: ['A', 0, 'B', 1] },
    /* 7 */ { kind: FUNC_PROTO, vlen: 1, sizeOrType: 0, tail: [0, 3] },
    /* 8 */ {
      kind: STRUCT,
      vlen: 3,
      sizeOrType: 6,
      tail: ['inner_network_header', 4, 0, 'transport_header', 4, 16, 'network_header', 4, 32],
    },
    /* 9 */ { kind: UNION, vlen: 2, sizeOrType: 6, tail: [0, 8, 0, 'headers', 8, 0] },
    /* 10 */ { kind: CONST, sizeOrType: headType },
    /* 11 */ {
      name: 'sk_buff',
      kind: STRUCT,
      kindFlag: true, // member offsets carry a bitfield size in their top 8 bits
      vlen: 4,
      sizeOrType: 40,
      tail: ['next', 2, 0, 'pkt_type', 1, (3 << 24) | 64, '', 9, 160, 'head', 10, 256],
    },
  ];
}

test('synthetic BTF: offsets through anonymous unions and structs, typedefs and qualifiers', (t) => {
  const want = { head: 32, transport: 22, network: 24 };
  t.deepEqual(parseSkbOffsets(btf(skbTypes())), want);
  t.deepEqual(parseSkbOffsets(btf(skbTypes(), { bigEndian: true })), want);
  // in a Buffer's slice (byteOffset != 0), as a pooled Buffer may be
  const b = btf(skbTypes());
  const framed = Buffer.concat([Buffer.alloc(3), b]).subarray(3);
  t.deepEqual(parseSkbOffsets(framed), want);
});

test('synthetic BTF: null, never a throw, for what is not as expected', (t) => {
  const good = btf(skbTypes());
  t.is(parseSkbOffsets(Buffer.alloc(0)), null);
  t.is(parseSkbOffsets(btf(skbTypes(), { magic: 0x1234 })), null);
  t.is(parseSkbOffsets(good.subarray(0, good.length - 40)), null, 'truncated');
  t.is(parseSkbOffsets(btf(skbTypes(3))), null, 'head a 2-byte int, not a pointer');
  t.is(parseSkbOffsets(btf([...skbTypes(), { kind: 31 }])), null, 'a kind not known');
  t.is(parseSkbOffsets(btf(skbTypes().map((ty) => (ty.name === 'sk_buff' ? { ...ty, name: 'sk_buf' } : ty)))), null, 'no sk_buff');
  const noNetwork = skbTypes();
  noNetwork[7] = { ...noNetwork[7], vlen: 2, tail: noNetwork[7].tail?.slice(0, 6) };
  t.is(parseSkbOffsets(btf(noNetwork)), null, 'no network_header');
  const badTypeLen = Buffer.from(good);
  badTypeLen.writeUInt32LE(good.readUInt32LE(12) + 1000, 12);
  t.is(parseSkbOffsets(badTypeLen), null, 'type section past the end');
  t.is(readSkbOffsets('/nonexistent/vmlinux'), null);
});

test("the running kernel's BTF gives plausible offsets, quickly", (t) => {
  if (!existsSync(VMLINUX_BTF)) return t.pass(`skipped: no ${VMLINUX_BTF} on this kernel`);
  let t0 = performance.now();
  const o = readSkbOffsets();
  const ms = performance.now() - t0;
  t0 = performance.now();
  parseSkbOffsets(readFileSync(VMLINUX_BTF));
  t.log(`sk_buff offsets ${JSON.stringify(o)}: read and parsed in ${ms.toFixed(1)} ms (again: ${(performance.now() - t0).toFixed(1)} ms)`);
  if (o === null) return t.fail('no offsets from the running kernel');
  t.is(o.head % 8, 0);
  t.is(o.transport % 2, 0);
  t.is(o.network % 2, 0);
  t.not(o.transport, o.network);
  for (const v of Object.values(o)) t.true(v > 0 && v < 512, `${v} within sk_buff`);
  t.true(ms < 500, `${ms} ms`);
});

const KFREE =
  'format:\n\tfield:void * skbaddr;\toffset:8;\tsize:8;\tsigned:0;\n\tfield:unsigned short protocol;\toffset:32;\tsize:2;\tsigned:0;\n' +
  '\tfield:enum skb_drop_reason reason;\toffset:36;\tsize:4;\tsigned:0;\n\nprint fmt: "reason: %s", __print_symbolic(REC->reason, { 2, "NOT_SPECIFIED" }, { 3, "NO_SOCKET" })\n';

test('drop probe: raw reads at the offsets when known, struct casts when not, skipped without BTF', (t) => {
  const formats = new Map([['skb:kfree_skb', KFREE]]);
  const req = { ports: [8080], states: 'off' as const, drops: true, btf: true };
  const raw = buildScript(formats, { ...req, skbOffsets: { head: 192, transport: 178, network: 180 } }).text;
  t.notRegex(raw, /struct /);
  t.regex(raw, /\$th = \*\(uint16 \*\)\(\$skb \+ 178\); \$nh = \*\(uint16 \*\)\(\$skb \+ 180\); if \(\$th != 0xffff && \$nh != 0xffff\)/);
  t.regex(raw, /\$head = \*\(uint64 \*\)\(\$skb \+ 192\)/);
  t.regex(raw, /\$v4 \? \*\(uint8 \*\)\(\$head \+ \$nh \+ 9\) : \*\(uint8 \*\)\(\$head \+ \$nh \+ 6\)/);
  t.regex(raw, /\$sp = \*\(uint16 \*\)\(\$head \+ \$th\); \$dp = \*\(uint16 \*\)\(\$head \+ \$th \+ 2\)/);
  t.regex(raw, /\$s = \(\(\$sp & 0xff\) << 8\) \| \(\$sp >> 8\)/);

  const cast = buildScript(formats, { ...req, skbOffsets: null });
  t.regex(cast.text, /\$skb = \(struct sk_buff \*\)args->skbaddr/);
  t.regex(cast.text, /\$s = \(\(\$th->source & 0xff\) << 8\) \| \(\$th->source >> 8\)/);

  // the same filters and the same event line either way
  const common = (s: string): string[] => [
    /\/args->reason != 2 && \(args->protocol == 0x0800 \|\| args->protocol == 0x86DD\)\//.exec(s)?.[0] ?? 'no guard',
    /if \(\(\$s == 8080 \|\| \$d == 8080\)\) \{.*\} \} \} \}/.exec(s)?.[0] ?? 'no filter and event',
  ];
  t.deepEqual(common(raw), common(cast.text));

  const none = buildScript(formats, { ...req, btf: false, skbOffsets: null });
  t.deepEqual(none.probes, []);
  t.regex(none.skipped.find((s) => s.probe === 'skb:kfree_skb')?.reason ?? '', /BTF/);
});
