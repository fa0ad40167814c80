import type { Cause, CauseInput, CauseModule } from './types.ts';
import { outlierSpan, risingShare } from './evidence.ts';
import { formatShare } from '../../lib/format.ts';

// The hypervisor ran other guests on our virtual CPUs (steal time).
//
// Scoring (see score()):
//   0.60  cpu.steal near the outliers (strength: steal / 0.15, at most 1)
//   0.40  more steal near the outliers than otherwise (strength: near / otherwise - 1, at most 1; 1 when otherwise 0)
// Required: steal >= 0.03 near the outliers and at least 1.5 x otherwise.

export const cpuSteal: CauseModule = {
  id: 'cpu-steal',
  title: 'CPU steal time (the hypervisor ran someone else)',
  needs: ['cpu.steal probe samples'],
  match(input: CauseInput): Cause | null {
    if (input.outliers.count === 0) return null;
    const r = risingShare(input, 'cpu.steal', 0.03, 0.15, 'steal time');
    if (r === null) return null;
    const { confidence, evidence } = r;
    return {
      id: this.id,
      confidence,
      summary: `The hypervisor took the CPUs away (steal ${formatShare(r.level.near)} around the outliers): ${outlierSpan(input)} waited while other guests ran.`,
      evidence,
      tryNext: [
        'Run on dedicated or bigger instances (no CPU credits / overcommit), or ask the provider about noisy neighbours.',
        'Compare with a run on bare metal or another instance type.',
      ],
    };
  },
};
