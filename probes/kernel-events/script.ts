// Builds the bpftrace program for the kernel-events probe from the
// tracepoint format files of the running kernel. Field layouts change
// between kernels (tcp_send_reset lost sport/dport for two sockaddrs in
// 6.10; enum numbering of drop reasons changes every release), so nothing
// is assumed: each probe checks the fields it needs and is skipped with a
// reason otherwise, and enum names come from the format's print fmt.
//
// What reaches user space (bpftrace's own CPU is almost all in printing an
// event to user space, ~10-80 us each, so nothing that fires per transaction
// is printed per transaction):
// - every event is counted in the kernel per key (side, state or old state,
//   new state or reason) and 100 ms bucket, in one count() map per kind
//   (@C1..@C6), printed and cleared every second ("@C3[1, 7, 12, 17]: 45");
// - retransmits, SYN-ACK retransmits and drops are also printed one by one:
//   they are rare in a healthy run and the analysis joins each to its
//   transaction (SYN retransmits for accept-queue-overflow and syn-loss, data
//   retransmits for data-retransmit);
// - resets and state changes, which a client-rst or server-rst run (resets)
//   or --kernel-states (state changes) make once or more per transaction,
//   are printed one by one only while their key has had at most `budget`
//   (default 2) in the bucket: all of them when they are rare (a reset now
//   and then is joined to its transaction exactly), a sample plus counts when
//   they come with every transaction. The analysis then estimates the
//   outliers with a reset from the counts (analysis/joins/kernel.ts).
import { TCP_STATES } from '../../lib/tcp-states.ts';
import type { SkippedProbe } from '../../lib/types.ts';
import type { SkbOffsets } from './btf-offsets.ts';

export const KERNEL_EVENT_KINDS = ['retransmit', 'retransmit-synack', 'send-reset', 'receive-reset', 'state', 'drop'] as const;
export type KernelEventKind = (typeof KERNEL_EVENT_KINDS)[number];

/** Code printed by bpftrace for each kind: index + 1. */
export const kindCode = (k: KernelEventKind): number => KERNEL_EVENT_KINDS.indexOf(k) + 1;

export { TCP_STATES };

export interface TracepointField {
  type: string;
  name: string;
  /** Array length for `__u8 saddr[28]`, else null. */
  arrayLen: number | null;
  size: number;
}

export interface TracepointFormat {
  fields: Map<string, TracepointField>;
  printFmt: string;
}

/** Parse a tracefs `format` file. */
export function parseTracepointFormat(text: string): TracepointFormat {
  const fields = new Map<string, TracepointField>();
  for (const m of text.matchAll(/^\s*field:([^;]*?)\s+([A-Za-z_]\w*)(?:\[(\d+)\])?;\s*offset:\d+;\s*size:(\d+);/gm)) {
    const name = m[2];
    if (name.startsWith('common_')) continue;
    fields.set(name, { type: m[1].trim(), name, arrayLen: m[3] === undefined ? null : Number(m[3]), size: Number(m[4]) });
  }
  const pf = /^print fmt:(.*)$/m.exec(text);
  return { fields, printFmt: pf ? pf[1] : '' };
}

/**
 * Numeric → name table of `__print_symbolic(REC->field, { 2, "NAME" }, ...)`
 * in a print fmt. Entries whose value is a macro name are not resolvable
 * here and are left out.
 */
export function symbolicTable(printFmt: string, field: string): Record<number, string> {
  const start = printFmt.indexOf(`__print_symbolic(REC->${field},`);
  if (start < 0) return {};
  const next = printFmt.indexOf('__print_symbolic(', start + 1);
  const part = printFmt.slice(start, next < 0 ? undefined : next);
  const table: Record<number, string> = {};
  for (const m of part.matchAll(/\{\s*(\d+)\s*,\s*"([^"]*)"\s*\}/g)) table[Number(m[1])] = m[2];
  return table;
}

/**
 * Which inet_sock_set_state transitions to record: all (~10 per
 * connection), the end of each handshake (leaving SYN_SENT or SYN_RECV:
 * 2 per connection, success or failure), or none.
 */
export type StateEvents = 'all' | 'handshake' | 'off';

/** Width of a count bucket, ns. */
export const BUCKET_NS = 100_000_000;
/** Events of a budgeted kind printed one by one per key and bucket; the rest are only counted. */
export const DEFAULT_BUDGET = 2;
/** The kinds that can fire with every transaction: printed one by one only within the budget. */
export const BUDGETED: readonly KernelEventKind[] = ['send-reset', 'receive-reset', 'state'];
/** Prefix of a count line: "@C<kind code>[side, a, b, bucket]: N". */
export const COUNT_PREFIX = '@C';

export interface ProbeRequest {
  ports: number[];
  /** Events of a budgeted kind printed per key and bucket (default DEFAULT_BUDGET). */
  budget?: number;
  states: StateEvents;
  drops: boolean;
  /** Kernel BTF present (needed to read ports out of a dropped skb). */
  btf: boolean;
  /**
   * Offsets of sk_buff's head, transport_header and network_header (from BTF,
   * btf-offsets.ts): the drop probe then reads at them instead of casting to
   * struct sk_buff, which costs bpftrace 0.17 ~0.9 s of clang before it attaches.
   */
  skbOffsets?: SkbOffsets | null;
}

export interface BuiltScript {
  text: string;
  /** "category:name" of each attached tracepoint. */
  probes: string[];
  skipped: SkippedProbe[];
  /** Enum names per kind, for decoding the `reason` column. */
  reasons: Partial<Record<KernelEventKind, Record<number, string>>>;
}

export const READY_MARKER = '@READY';
/** Prefix of every event line: "@E kind nsecs family sport dport a b". */
export const EVENT_PREFIX = '@E ';

interface ProbeDef {
  kind: KernelEventKind;
  tp: string;
  /** Returns the probe body or a skip reason. */
  build(fmt: TracepointFormat, req: ProbeRequest, filter: (s: string, d: string) => string): string | { skip: string };
}

const need = (fmt: TracepointFormat, ...names: string[]): string | null => {
  const missing = names.filter((n) => !fmt.fields.has(n));
  return missing.length ? `format has no ${missing.join(', ')} field` : null;
};

/**
 * The body that records one event. Every event is counted per key
 * (side, a, b) and 100 ms bucket in a map of its kind, @C<code>, printed and
 * cleared every second; an event of a budgeted kind is also printed one by one
 * only while its key has had at most `budget` in the bucket (@B<code>, the
 * same key), an event of any other kind always. `side` is 1 when the event's
 * source port is a server port.
 */
const emit = (kind: KernelEventKind, req: ProbeRequest, fam: string, s: string, d: string, a: string, b: string): string => {
  const code = kindCode(kind);
  const side = '(' + req.ports.map((p) => `${s} == ${p}`).join(' || ') + ')';
  const key = `$side, ${a}, ${b}, $k`;
  const print = `printf("${EVENT_PREFIX}${code} %llu %u %u %u %d %d\\n", $t, ${fam}, ${s}, ${d}, ${a}, ${b});`;
  const once = BUDGETED.includes(kind) ? `@B${code}[${key}]++; if (@B${code}[${key}] <= ${req.budget ?? DEFAULT_BUDGET}) { ${print} }` : print;
  return `$t = nsecs; $k = $t / ${BUCKET_NS}; $side = ${side}; @C${code}[${key}] = count(); ${once}`;
};

// sockaddr_in / sockaddr_in6 as raw bytes: family is a host-order u16 at
// 0, the port a network-order u16 at 2 (same offsets in both).
const SA_FAM = (f: string): string => `(args->${f}[0] | (args->${f}[1] << 8))`;
const SA_PORT = (f: string): string => `((args->${f}[2] << 8) | args->${f}[3])`;

const PROBES: ProbeDef[] = [
  {
    kind: 'retransmit',
    tp: 'tcp:tcp_retransmit_skb',
    build(fmt, req, filter) {
      const miss = need(fmt, 'sport', 'dport', 'family');
      if (miss) return { skip: miss };
      const state = fmt.fields.has('state') ? 'args->state' : '0';
      return `/${filter('args->sport', 'args->dport')}/ { ${emit('retransmit', req, 'args->family', 'args->sport', 'args->dport', state, '0')} }`;
    },
  },
  {
    kind: 'retransmit-synack',
    tp: 'tcp:tcp_retransmit_synack',
    build(fmt, req, filter) {
      const miss = need(fmt, 'sport', 'dport', 'family');
      if (miss) return { skip: miss };
      return `/${filter('args->sport', 'args->dport')}/ { ${emit('retransmit-synack', req, 'args->family', 'args->sport', 'args->dport', '0', '0')} }`;
    },
  },
  {
    kind: 'send-reset',
    tp: 'tcp:tcp_send_reset',
    build(fmt, req, filter) {
      const state = fmt.fields.has('state') ? 'args->state' : '0';
      const reason = fmt.fields.has('reason') ? 'args->reason' : '-1';
      if (!need(fmt, 'sport', 'dport', 'family')) {
        return `/${filter('args->sport', 'args->dport')}/ { ${emit('send-reset', req, 'args->family', 'args->sport', 'args->dport', state, reason)} }`;
      }
      // 6.10+: addresses as sockaddr bytes (28 = sizeof sockaddr_in6)
      const sa = fmt.fields.get('saddr');
      if (!sa || sa.arrayLen !== 28 || fmt.fields.get('daddr')?.arrayLen !== 28) return { skip: 'format has neither sport/dport nor sockaddr saddr/daddr' };
      return `{ $s = ${SA_PORT('saddr')}; $d = ${SA_PORT('daddr')}; if (${filter('$s', '$d')}) { ${emit('send-reset', req, SA_FAM('saddr'), '$s', '$d', state, reason)} } }`;
    },
  },
  {
    kind: 'receive-reset',
    tp: 'tcp:tcp_receive_reset',
    build(fmt, req, filter) {
      const miss = need(fmt, 'sport', 'dport', 'family');
      if (miss) return { skip: miss };
      return `/${filter('args->sport', 'args->dport')}/ { ${emit('receive-reset', req, 'args->family', 'args->sport', 'args->dport', '0', '0')} }`;
    },
  },
  {
    kind: 'state',
    tp: 'sock:inet_sock_set_state',
    build(fmt, req, filter) {
      if (req.states === 'off') return { skip: 'state changes not requested' };
      const miss = need(fmt, 'sport', 'dport', 'family', 'oldstate', 'newstate', 'protocol');
      if (miss) return { skip: miss };
      // protocol 6: TCP only (the tracepoint also fires for SCTP and MPTCP)
      const which =
        req.states === 'handshake' ? `(args->oldstate == ${TCP_STATES.indexOf('SYN_SENT')} || args->oldstate == ${TCP_STATES.indexOf('SYN_RECV')}) && ` : '';
      return `/args->protocol == 6 && ${which}${filter('args->sport', 'args->dport')}/ { ${emit('state', req, 'args->family', 'args->sport', 'args->dport', 'args->oldstate', 'args->newstate')} }`;
    },
  },
  {
    kind: 'drop',
    tp: 'skb:kfree_skb',
    build(fmt, req, filter) {
      if (!req.drops) return { skip: 'drops not requested' };
      const miss = need(fmt, 'skbaddr', 'protocol', 'reason');
      if (miss) return { skip: miss };
      const o = req.skbOffsets;
      if (!o && !req.btf) return { skip: 'no kernel BTF (/sys/kernel/btf/vmlinux): cannot read the ports of a dropped packet' };
      // Ordinary teardown, not loss: NOT_SPECIFIED is TCP's discard path
      // (e.g. the last ACK reaching a socket in LAST_ACK), QUEUE_PURGE the
      // queues emptied when a socket closes. Both fire once per connection.
      const table = symbolicTable(fmt.printFmt, 'reason');
      const noise = Object.entries(table)
        .filter(([, n]) => n === 'NOT_SPECIFIED' || n === 'QUEUE_PURGE')
        .map(([k]) => `args->reason != ${k} && `);
      const notNoise = noise.join('');
      // The tracepoint has no ports: read them from the TCP header, at the
      // sk_buff offsets found in BTF or, failing that, through BTF struct
      // casts. 0xffff marks an unset header offset. kfree_skb fires for every
      // drop in the system, so bail out early on anything not IP.
      // The ports, big-endian u16s at 0 and 2 of the TCP header, byte-swapped.
      const swap = (v: string): string => `((${v} & 0xff) << 8) | (${v} >> 8)`;
      const ports = (sp: string, dp: string): string =>
        ` $s = ${swap(sp)}; $d = ${swap(dp)};` +
        ` if (${filter('$s', '$d')}) { ${emit('drop', req, '($v4 ? 2 : 10)', '$s', '$d', '0', 'args->reason')} } } } }`;
      const guard = `/${notNoise}(args->protocol == 0x0800 || args->protocol == 0x86DD)/ {`;
      if (o) {
        // IPv4 protocol at byte 9 of the IP header, IPv6 nexthdr at byte 6 (two
        // reads: `+ ($v4 ? 9 : 6)` mixes signs and bpftrace warns)
        return (
          guard +
          ` $skb = (uint64)args->skbaddr; $th = *(uint16 *)($skb + ${o.transport}); $nh = *(uint16 *)($skb + ${o.network});` +
          ` if ($th != 0xffff && $nh != 0xffff) {` +
          ` $v4 = args->protocol == 0x0800; $head = *(uint64 *)($skb + ${o.head});` +
          ` $l4 = $v4 ? *(uint8 *)($head + $nh + 9) : *(uint8 *)($head + $nh + 6);` +
          ` if ($l4 == 6) {` +
          ` $sp = *(uint16 *)($head + $th); $dp = *(uint16 *)($head + $th + 2);` +
          ports('$sp', '$dp')
        );
      }
      return (
        guard +
        ` $skb = (struct sk_buff *)args->skbaddr;` +
        ` if ($skb->transport_header != 0xffff && $skb->network_header != 0xffff) {` +
        ` $v4 = args->protocol == 0x0800;` +
        ` $l4 = $v4 ? ((struct iphdr *)($skb->head + $skb->network_header))->protocol : ((struct ipv6hdr *)($skb->head + $skb->network_header))->nexthdr;` +
        ` if ($l4 == 6) {` +
        ` $th = (struct tcphdr *)($skb->head + $skb->transport_header);` +
        ports('$th->source', '$th->dest')
      );
    },
  },
];

const budgetMaps = (codes: number[]): string[] => codes.filter((c) => BUDGETED.includes(KERNEL_EVENT_KINDS[c - 1])).map((c) => `@B${c}`);

/** Every tracepoint the probe can use, "category:name". */
export const ALL_TRACEPOINTS = PROBES.map((p) => p.tp);

/**
 * Build the program. `formats` maps "category:name" to its format text,
 * or null when the tracepoint does not exist on this kernel.
 */
export function buildScript(formats: Map<string, string | null>, req: ProbeRequest): BuiltScript {
  const filter = (s: string, d: string): string => '(' + req.ports.map((p) => `${s} == ${p} || ${d} == ${p}`).join(' || ') + ')';
  const out: BuiltScript = { text: '', probes: [], skipped: [], reasons: {} };
  const bodies: string[] = [];
  for (const p of PROBES) {
    const text = formats.get(p.tp);
    if (text == null) {
      out.skipped.push({ probe: p.tp, reason: 'tracepoint not present on this kernel' });
      continue;
    }
    const fmt = parseTracepointFormat(text);
    const body = p.build(fmt, req, filter);
    if (typeof body !== 'string') {
      out.skipped.push({ probe: p.tp, reason: body.skip });
      continue;
    }
    if (fmt.fields.has('reason')) out.reasons[p.kind] = symbolicTable(fmt.printFmt, 'reason');
    out.probes.push(p.tp);
    bodies.push(`tracepoint:${p.tp} ${body}`);
  }
  // The counts every second; at exit bpftrace prints what is left in @C (the budgets are cleared first).
  const codes = out.probes.map((tp) => kindCode(PROBES.find((p) => p.tp === tp)!.kind));
  if (codes.length > 0) {
    const b = budgetMaps(codes);
    bodies.push(`interval:s:1 { ${[...codes.map((c) => `print(@C${c}); clear(@C${c});`), ...b.map((m) => `clear(${m});`)].join(' ')} }`);
    if (b.length > 0) bodies.push(`END { ${b.map((m) => `clear(${m});`).join(' ')} }`);
  }
  // BEGIN runs once every probe is attached: the ready marker means "attached".
  bodies.push(`BEGIN { printf("${READY_MARKER}\\n"); }`);
  out.text = bodies.join('\n') + '\n';
  return out;
}
