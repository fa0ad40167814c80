import { formatCount } from '../lib/format.ts';
import { suggestedRun } from '../lib/run-args.ts';
import type { RunManifest } from '../lib/run-files.ts';
import type { Summary } from '../lib/types.ts';
import type { ProbeData } from '../probes/read.ts';

// A run that shares the host's network namespace (no --netns, or --target)
// reads the host's TCP counters: every other program's connections count
// too. Say so, and flag the counters that moved far beyond what the run's
// own traffic explains during the load (resets from a close mode that makes
// none, more resets or opens than the run had connections).

/** Slack for other traffic a quiet host has anyway (ssh, DNS, an agent). */
const SLACK = 50;

export interface HostCounterFlag {
  counter: string;
  /** Its total during the load. */
  total: number;
  /** What the run's own traffic explains, in words. */
  expected: string;
}

export interface HostCounters {
  /** The TCP counters were the host's. */
  hostWide: boolean;
  flags: HostCounterFlag[];
}

/** Close modes whose every connection ends with a reset. */
const resetsByDesign = (c: RunManifest['config']): boolean =>
  c.close === 'client-rst' || c.close === 'server-rst' || (c.close === 'linger' && (c.lingerSeconds ?? 0) === 0);

/** The counters' totals over the load ((originNs, end of the load]) against what the run's own connections explain. */
export function hostCounters(d: ProbeData, m: RunManifest, s: Summary, originNs: number): HostCounters {
  const hostWide = !d.meta.netns && (m.kernel?.netns ?? null) === null;
  if (!hostWide) return { hostWide, flags: [] };
  const end = (m.workload?.lastEndNs ?? m.endNs ?? Infinity) + d.meta.intervalNs;
  const total = (name: string): number | null => {
    const v = d.get(name);
    if (v === null) return null;
    let sum = 0;
    for (let r = 0; r < d.rows; r++) if (d.t[r] > originNs && d.t[r] <= end && v[r] === v[r]) sum += v[r];
    return sum;
  };
  const cfg = m.config;
  const t = s.transactions;
  const connections = cfg.close === 'keepalive' ? Math.ceil(t.attempted / Math.max(1, cfg.perConnection)) : t.attempted;
  const failures = t.failed + t.timedOut;
  const flags: HostCounterFlag[] = [];
  const opens = 2 * connections + SLACK;
  for (const name of ['Tcp.ActiveOpens', ...(cfg.external?.kind === 'target' ? [] : ['Tcp.PassiveOpens'])]) {
    const x = total(name);
    if (x !== null && x > opens) flags.push({ counter: name, total: x, expected: `the run opened ${formatCount(connections)} connections` });
  }
  const byDesign = resetsByDesign(cfg);
  const resets = byDesign ? 2 * connections + SLACK : 2 * failures + SLACK;
  for (const name of ['Tcp.OutRsts', 'Tcp.EstabResets']) {
    const x = total(name);
    if (x === null || x <= resets) continue;
    flags.push({
      counter: name,
      total: x,
      expected: byDesign
        ? `more than the run's ${formatCount(connections)} connections could reset`
        : `a ${cfg.close} run makes no resets` + (failures > 0 ? ` beyond its ${formatCount(failures)} failed transactions` : ''),
    });
  }
  return { hostWide, flags };
}

/** The verdict's line when counters moved far beyond the run's own traffic (null: none did, or they were the run's own). */
export function hostCountersLine(h: HostCounters, m: RunManifest): string | null {
  if (!h.hostWide || h.flags.length === 0) return null;
  const moved = h.flags.map((f) => `\`${f.counter}\` moved ${formatCount(f.total)} during the load (${f.expected})`).join('; ');
  const netns =
    m.config.external?.kind === 'target'
      ? ''
      : ` Run in a namespace of its own (root) to count only the run's traffic: \`${suggestedRun(m.config, { '--netns': true })}\`.`;
  return `**TCP counters are host-wide:** the run shared the host's network namespace, so other programs' traffic counts too: ${moved}. Read those counters, and the causes that use them, with care.${netns}`;
}
