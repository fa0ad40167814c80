import type { Cause, CauseInput, CauseModule } from './types.ts';
import { score } from './evidence.ts';
import { formatNumber, formatShare } from '../../lib/format.ts';

// The harness's own processes stalled (event loop blocked, GC pause) while
// the outliers were in flight: the latency is ours, not the system's. The
// outliers are found by self-check.ts and taken out of every other cause's
// evidence.
//
// Scoring: confidence = the share of all outliers that coincide with a stall
// (one item, weight 1). Required: at least one such outlier.

export const harnessStall: CauseModule = {
  id: 'harness-stall',
  title: "The harness's own stalls (event loop, GC)",
  needs: ['stall-monitor files (event-loop delay, GC pauses of the client and server processes)'],
  match(input: CauseInput): Cause | null {
    const h = input.harness;
    if (h === null || h.stalled === 0 || h.outliers === 0) return null;
    const share = h.stalled / h.outliers;
    const { confidence, evidence } = score([
      {
        weight: 1,
        strength: share,
        text: `${formatNumber(h.stalled)} of ${formatNumber(h.outliers)} outliers coincide with a stall of sockspike's own processes (${formatNumber(h.byLoopDelay)} event-loop delays, ${formatNumber(h.byGc)} GC pauses; the longest ${h.worstMs} ms)`,
      },
    ]);
    return {
      id: this.id,
      confidence,
      summary: `${formatNumber(h.stalled)} of ${formatNumber(h.outliers)} outliers (${formatShare(share)}) were sockspike's own doing: its event loop or garbage collector stalled while they were in flight, so they say nothing about the system.`,
      evidence: [...evidence, ...h.examples],
      tryNext: [
        'Give the harness room: fewer concurrent transactions per process, an idle core, or a shorter probe interval that the machine can keep up with.',
        'Compare the outlier rate with the self-check: if the harness stalls, the system under test is not to blame for those outliers.',
      ],
    };
  },
};
