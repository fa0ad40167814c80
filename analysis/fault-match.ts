import { EXPECTED_CAUSE, type FaultRecord, type Summary } from '../lib/types.ts';
import type { TxnColumns } from './read-run.ts';
import { txnStartNs } from './summarize.ts';

// Injected faults against the diagnosis: each fault should show as one
// catalogue cause (EXPECTED_CAUSE). Saying whether it did is how a user
// learns to trust the diagnosis on the cases they did not inject.

export type FaultCheck = NonNullable<Summary['faults']>[number];

export function checkFaults(faults: FaultRecord[], summary: Summary, c: TxnColumns, outliers: Uint32Array): FaultCheck[] {
  const causes = summary.causes ?? [];
  return faults.map((f) => {
    const expected = EXPECTED_CAUSE[f.kind];
    const idx = causes.findIndex((x) => x.id === expected);
    const rank = idx < 0 ? null : idx + 1;
    let inside = 0;
    if (f.startNs !== null) {
      const from = f.startNs;
      const to = f.stopNs ?? Infinity;
      for (const i of outliers) {
        const start = txnStartNs(c, i);
        if (start >= from && start <= to) inside++;
      }
    }
    const on = f.startNs === null ? null : ([f.startNs / 1e9, (f.stopNs ?? f.startNs) / 1e9] as [number, number]);
    return {
      text: f.text,
      kind: f.kind,
      expectedCause: expected,
      onS: on,
      outliersWhileOn: inside,
      outliers: outliers.length,
      rank,
      matched: rank === 1,
      verdict: verdictOf(f, expected, rank, causes[0]?.id ?? null, inside, outliers.length),
    };
  });
}

function verdictOf(f: FaultRecord, expected: string, rank: number | null, first: string | null, inside: number, total: number): string {
  if (f.startNs === null) return `The fault \`${f.text}\` never switched on (${f.detail.join('; ') || 'the run ended before its window'}).`;
  const where = total > 0 ? ` ${inside} of ${total} outliers started while it was on.` : ' No transaction became an outlier.';
  if (rank === 1) return `The diagnosis matches the injected fault \`${f.text}\`: it should show as ${expected}, and ${expected} ranks first.${where}`;
  if (rank !== null) return `The diagnosis only partly matches the injected fault \`${f.text}\`: ${expected} ranks #${rank}, after ${first}.${where}`;
  return `The diagnosis does not match the injected fault \`${f.text}\`: it should show as ${expected}, which the evidence did not support${first === null ? '' : ` (first: ${first})`}.${where}`;
}
