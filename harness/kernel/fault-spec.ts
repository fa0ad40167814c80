import { parseDurationNs } from '../../lib/duration.ts';
import { UserError } from '../../lib/errors.ts';
import { FAULT_KINDS, type FaultKind, type FaultSpec } from '../../lib/types.ts';

// --fault KIND:AMOUNT[@FROM-TO]: syn-drop:5%, data-drop:2%@2s-6s,
// cpu-hog:4@1s, accept-delay:20ms@2s-4s. Windows are times after the
// workload's start; a bare number is seconds; no end means "until the end".

const USAGE = 'syn-drop:P%, data-drop:P%, cpu-hog:N or accept-delay:D, optionally @FROM-TO (e.g. syn-drop:5%@2s-6s)';

export function parseFault(text: string): FaultSpec {
  const m = /^([a-z-]+):([^@]+)(?:@([^-]+)(?:-(.*))?)?$/.exec(text.trim());
  if (m === null) throw new UserError(`--fault: "${text}" is not a fault (${USAGE})`);
  const kind = m[1] as FaultKind;
  if (!(FAULT_KINDS as readonly string[]).includes(kind)) throw new UserError(`--fault: unknown kind "${m[1]}" (${USAGE})`);
  const fromNs = m[3] === undefined ? 0 : parseDurationNs(m[3], `--fault ${text} window start`, 's');
  const toNs = m[4] === undefined || m[4] === '' ? null : parseDurationNs(m[4], `--fault ${text} window end`, 's');
  if (toNs !== null && toNs <= fromNs) throw new UserError(`--fault ${text}: the window ends before it starts`);
  return { text: text.trim(), kind, amount: amountOf(kind, m[2], text), fromNs, toNs };
}

function amountOf(kind: FaultKind, v: string, text: string): number {
  if (kind === 'syn-drop' || kind === 'data-drop') {
    const p = /^(\d+(?:\.\d+)?)%$/.exec(v);
    const pct = p === null ? NaN : Number(p[1]);
    if (!(pct > 0 && pct <= 100)) throw new UserError(`--fault ${text}: ${kind} takes a percentage in (0, 100], e.g. ${kind}:5%`);
    return pct;
  }
  if (kind === 'cpu-hog') {
    if (!/^\d+$/.test(v) || Number(v) < 1 || Number(v) > 256) throw new UserError(`--fault ${text}: cpu-hog takes a number of processes (1..256)`);
    return Number(v);
  }
  const ns = parseDurationNs(v, `--fault ${text}`, 'ms');
  if (ns <= 0 || ns > 60e9) throw new UserError(`--fault ${text}: accept-delay takes a duration in (0, 60s]`);
  return ns;
}

/** Faults that act on packets live in the run's namespace (nftables). */
export const needsNetns = (f: FaultSpec): boolean => f.kind === 'syn-drop' || f.kind === 'data-drop';
