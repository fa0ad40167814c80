import type { Environment } from '../probes/environment.ts';
import { formatUs } from '../lib/format.ts';

// The kernel timer constants an outlier's excess latency can match, derived
// from the run's own sysctls (environment.json) rather than folklore.
//
// SYN retransmission (active open), Linux >= 6.5 with tcp_syn_linear_timeouts
// = L (Documentation/networking/ip-sysctl.rst, patch "tcp: make the first N
// SYN RTO backoffs linear", net-next 2023-05): "With an initial RTO of 1 and
// tcp_syn_linear_timeouts = 4 we would expect SYN RTOs to be: 1, 1, 1, 1, 1,
// 2, 4, ...". That is L + 1 timeouts of the initial 1 s, then doubling: the
// retransmissions go out at 1, 2, 3, 4, 5, 7, 11, 19, 35, 67 s after the
// first SYN. tcp_write_timeout() allows tcp_syn_retries + L retransmissions
// in SYN_SENT (the same doc: tcp_syn_retries = 6 "corresponds to 67seconds
// (with tcp_syn_linear_timeouts = 4) till the last retransmission"). Older
// kernels have no such key: L = 0, 1, 3, 7, 15, 31, 63 s.
//
// SYN-ACK retransmission (passive side): tcp_synack_retries, 1 s doubling,
// not affected by the linear timeouts.
// Data retransmission: RTO starts at the minimum RTO (200 ms, or
// tcp_rto_min_us where the kernel has it) on a low-RTT path and doubles.
// Delayed ACK: TCP_DELACK_MIN = HZ/25 = 40 ms.

export type TimerFamily = 'syn-retransmit' | 'synack-retransmit' | 'rto' | 'delayed-ack';

export interface TimerConstant {
  /** Stable id, e.g. "syn-retransmit-1". */
  id: string;
  /** For people, e.g. "SYN retransmission #1 (1 s)". */
  label: string;
  /** Expected extra latency, us (cumulative for retransmission schedules). */
  us: number;
  family: TimerFamily;
}

/** The initial RTO of a SYN / SYN-ACK (TCP_TIMEOUT_INIT), us. */
export const TCP_TIMEOUT_INIT_US = 1_000_000;
/** TCP_RTO_MIN, us. */
export const TCP_RTO_MIN_US = 200_000;
/** TCP_RTO_MAX, us. */
export const TCP_RTO_MAX_US = 120_000_000;
/** TCP_DELACK_MIN, us. */
export const TCP_DELACK_MIN_US = 40_000;
/** Kernel defaults when a key is absent from the environment. */
export const DEFAULT_SYN_RETRIES = 6;
export const DEFAULT_SYNACK_RETRIES = 5;
/** Data retransmissions listed (the schedule goes on to tcp_retries2, minutes). */
export const RTO_STEPS = 6;

type Sysctls = Record<string, string>;

const readInt = (s: Sysctls, key: string): number | null => {
  const v = s[`net.ipv4.${key}`] ?? s[key];
  if (v === undefined) return null;
  const n = Number.parseInt(String(v).trim(), 10);
  return Number.isFinite(n) && n >= 0 ? n : null;
};

const sysctlsOf = (e: Environment | Sysctls): Sysctls =>
  typeof (e as Environment).sysctls === 'object' && (e as Environment).sysctls !== null ? (e as Environment).sysctls : (e as Sysctls);

/** Cumulative times (us, from the first SYN) at which SYN retransmission k = 1.. goes out. */
export function synRetransmitSchedule(synRetries: number, linearTimeouts: number): number[] {
  const out: number[] = [];
  let rto = TCP_TIMEOUT_INIT_US;
  let t = 0;
  const total = synRetries + linearTimeouts;
  for (let k = 1; k <= total; k++) {
    t += rto;
    out.push(t);
    // tcp_retransmit_timer: in SYN_SENT the RTO doubles only once more than
    // L retransmissions have gone out.
    if (k > linearTimeouts) rto = Math.min(rto * 2, TCP_RTO_MAX_US);
  }
  return out;
}

/** Cumulative times (us) of exponential retransmissions from a first timeout. */
export function doublingSchedule(firstUs: number, steps: number): number[] {
  const out: number[] = [];
  let rto = firstUs;
  let t = 0;
  for (let k = 0; k < steps; k++) {
    t += rto;
    out.push(t);
    rto = Math.min(rto * 2, TCP_RTO_MAX_US);
  }
  return out;
}

export interface TimerSettings {
  synRetries: number;
  synLinearTimeouts: number;
  synackRetries: number;
  rtoMinUs: number;
}

export function timerSettings(env: Environment | Sysctls): TimerSettings {
  const s = sysctlsOf(env);
  return {
    synRetries: readInt(s, 'tcp_syn_retries') ?? DEFAULT_SYN_RETRIES,
    synLinearTimeouts: readInt(s, 'tcp_syn_linear_timeouts') ?? 0,
    synackRetries: readInt(s, 'tcp_synack_retries') ?? DEFAULT_SYNACK_RETRIES,
    rtoMinUs: readInt(s, 'tcp_rto_min_us') || TCP_RTO_MIN_US,
  };
}

/**
 * The timer constants of this run's kernel settings, ordered by preference
 * when two coincide (a SYN retransmission before a SYN-ACK one or an RTO).
 */
export function timerConstants(env: Environment | Sysctls): TimerConstant[] {
  const t = timerSettings(env);
  const out: TimerConstant[] = [];
  synRetransmitSchedule(t.synRetries, t.synLinearTimeouts).forEach((us, i) =>
    out.push({ id: `syn-retransmit-${i + 1}`, label: `SYN retransmission #${i + 1} (${formatUs(us)})`, us, family: 'syn-retransmit' }),
  );
  doublingSchedule(TCP_TIMEOUT_INIT_US, t.synackRetries).forEach((us, i) =>
    out.push({ id: `synack-retransmit-${i + 1}`, label: `SYN-ACK retransmission #${i + 1} (${formatUs(us)})`, us, family: 'synack-retransmit' }),
  );
  doublingSchedule(t.rtoMinUs, RTO_STEPS).forEach((us, i) =>
    out.push({ id: `rto-${i + 1}`, label: `data retransmission timeout #${i + 1} (${formatUs(us)})`, us, family: 'rto' }),
  );
  out.push({ id: 'delayed-ack', label: `delayed ACK (${formatUs(TCP_DELACK_MIN_US)})`, us: TCP_DELACK_MIN_US, family: 'delayed-ack' });
  return out;
}
