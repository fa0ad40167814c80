import type { Cause, CauseInput, CauseModule } from './types.ts';
import { counterNear, outlierSpan, pressureFraction, score, clamp01 } from './evidence.ts';
import { formatNumber, formatShare } from '../../lib/format.ts';

// Allocations stalled in direct reclaim (or compaction): a process that
// needs memory frees it itself, synchronously.
//
// Scoring (see score()):
//   0.50  vmstat.allocstall_* / pgscan_direct moved around the outliers (1: >= 2x elsewhere, 0.5: nonzero)
//   0.50  pressure.memory.some near the outliers (strength: share / 0.1, at most 1); left out where PSI is missing
//         (strength 0 unless higher near the outliers than otherwise)
// Required: direct reclaim near the outliers, or memory pressure >= 0.02 there and above otherwise.

/** The /proc/vmstat counters of direct reclaim (also among the metrics the causes read, input.ts). */
export const RECLAIM = [
  'vmstat.allocstall_dma',
  'vmstat.allocstall_dma32',
  'vmstat.allocstall_normal',
  'vmstat.allocstall_movable',
  'vmstat.allocstall_device',
  'vmstat.pgscan_direct',
];

export const memoryReclaim: CauseModule = {
  id: 'memory-reclaim',
  title: 'Memory reclaim stalls',
  needs: ['vmstat allocstall_* / pgscan_direct', 'pressure.memory.some'],
  match(input: CauseInput): Cause | null {
    if (input.outliers.count === 0) return null;
    const r = counterNear(input, RECLAIM);
    const psi = pressureFraction(input, 'pressure.memory.some');
    if (!(r.near > 0) && !(psi !== null && psi.near >= 0.02 && psi.near > psi.otherwise)) return null;
    const { confidence, evidence } = score([
      { weight: 0.5, strength: r.strength, text: `direct reclaim (${r.text})` },
      {
        weight: 0.5,
        strength: psi === null ? null : psi.near > psi.otherwise ? clamp01(psi.near / 0.1) : 0,
        text: `some task waited for memory ${formatShare(psi?.near ?? 0)} of the time around the outliers (pressure.memory.some), ${formatShare(psi?.otherwise ?? 0)} otherwise`,
      },
    ]);
    return {
      id: this.id,
      confidence,
      summary: `Memory ran short around the outliers (${formatNumber(r.near)} direct-reclaim events nearby): ${outlierSpan(input)} likely stalled while the kernel freed memory.`,
      evidence,
      tryNext: [
        'Check free memory and who holds it (`free -m`, `smem`, cgroup memory.current / memory.max).',
        'Raise vm.min_free_kbytes or the cgroup limit; look for page-cache heavy neighbours.',
      ],
    };
  },
};
