import type { Cause, CauseInput, CauseModule } from './types.ts';
import { outlierSpan, risingShare } from './evidence.ts';
import { formatShare } from '../../lib/format.ts';

// Packet processing in softirq context took the CPUs (or the one CPU the
// NIC queue interrupts): packets wait in the backlog.
//
// Scoring (see score()):
//   0.60  cpu.softirq near the outliers (strength: softirq / 0.2, at most 1)
//   0.40  more softirq near the outliers than otherwise (strength: near / otherwise - 1, at most 1; 1 when otherwise 0)
// Required: softirq >= 0.05 near the outliers and at least 1.5 x otherwise (a
// level the whole load shares says nothing about the outliers).

export const softirqSaturation: CauseModule = {
  id: 'softirq-saturation',
  title: 'Softirq saturation (packet processing)',
  needs: ['cpu.softirq probe samples'],
  match(input: CauseInput): Cause | null {
    if (input.outliers.count === 0) return null;
    const r = risingShare(input, 'cpu.softirq', 0.05, 0.2, 'softirq time');
    if (r === null) return null;
    const { confidence, evidence } = r;
    return {
      id: this.id,
      confidence,
      summary: `Packet processing (softirq) took ${formatShare(r.level.near)} of the CPUs around the outliers: ${outlierSpan(input)} most likely waited in the network stack's backlog.`,
      evidence,
      tryNext: [
        'See which CPU handles the softirqs: `mpstat -P ALL 1`, /proc/softirqs (NET_RX); spread them with RSS/RPS or irqbalance.',
        'Check net.core.netdev_budget and the NIC ring sizes (`ethtool -g`), and `/proc/net/softnet_stat` for squeezed and dropped packets.',
      ],
    };
  },
};
