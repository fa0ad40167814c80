import type { Cause, CauseInput, CauseModule } from './types.ts';
import { acceptQueueOverflow } from './accept-queue-overflow.ts';
import { synLoss } from './syn-loss.ts';
import { dataRetransmit } from './data-retransmit.ts';
import { nagleDelayedAck } from './nagle-delayed-ack.ts';
import { portExhaustion } from './port-exhaustion.ts';
import { abortiveCloseReset } from './abortive-close-reset.ts';
import { cpuSaturation } from './cpu-saturation.ts';
import { cpuSteal } from './cpu-steal.ts';
import { softirqSaturation } from './softirq-saturation.ts';
import { memoryReclaim } from './memory-reclaim.ts';
import { harnessStall } from './harness-stall.ts';
import { harnessCpu } from './harness-cpu.ts';
import { serverProcessing } from './server-processing.ts';

export type { Cause, CauseInput, CauseModule, MetricNear, HarnessCheck, TxnEvidence } from './types.ts';

// The catalogue of known causes of latency outliers. Each module states the
// evidence it needs and how it scores; findCauses runs them all and keeps
// those that reach MIN_CONFIDENCE, best first.

export const CATALOGUE: CauseModule[] = [
  acceptQueueOverflow,
  synLoss,
  dataRetransmit,
  nagleDelayedAck,
  portExhaustion,
  abortiveCloseReset,
  cpuSaturation,
  cpuSteal,
  softirqSaturation,
  memoryReclaim,
  harnessStall,
  harnessCpu,
  serverProcessing,
];

/** Below this a cause is not reported. */
export const MIN_CONFIDENCE = 0.3;

/** Every cause that fits, best first (ties in catalogue order); [] for a clean run (no outliers, no failures). */
export function findCauses(input: CauseInput): Cause[] {
  if (input.outliers.total === 0 && input.transactions.failed === 0) return [];
  const out: Cause[] = [];
  for (const mod of CATALOGUE) {
    const c = mod.match(input);
    if (c !== null && c.confidence >= MIN_CONFIDENCE) out.push(c);
  }
  return out.sort((a, b) => b.confidence - a.confidence);
}
