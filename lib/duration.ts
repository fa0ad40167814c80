import { UserError } from './errors.ts';

// Durations accept units everywhere: ns, us, ms, s, m, h ("500us", "2s", "1m").
const UNIT_NS: Record<string, number> = { ns: 1, us: 1e3, µs: 1e3, ms: 1e6, s: 1e9, m: 60e9, h: 3600e9 };

/**
 * Parse a duration to nanoseconds. A bare number takes `bareUnit`
 * (seconds for --duration, milliseconds elsewhere unless stated).
 */
export function parseDurationNs(text: string, what: string, bareUnit: keyof typeof UNIT_NS = 'ms'): number {
  const m = /^\s*(\d+(?:\.\d+)?|\.\d+)\s*(ns|us|µs|ms|s|m|h)?\s*$/.exec(text);
  if (!m) throw new UserError(`${what}: "${text}" is not a duration (use e.g. 500us, 250ms, 2s, 1m)`);
  const ns = Number(m[1]) * UNIT_NS[m[2] ?? bareUnit];
  if (!Number.isFinite(ns)) throw new UserError(`${what}: "${text}" is out of range`);
  return Math.round(ns);
}
