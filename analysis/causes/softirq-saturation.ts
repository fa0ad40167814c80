import { levelNear, outlierSpan, pctS, score, clamp01, type Cause, type CauseInput, type CauseModule } from './types.ts';

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
    const si = levelNear(input, 'cpu.softirq');
    if (si === null || si.nearRows === 0 || si.near < 0.05 || si.near < 1.5 * si.otherwise) return null;
    const ratio = si.otherwise > 0 ? si.near / si.otherwise : Infinity;
    const { confidence, evidence } = score([
      { weight: 0.6, strength: clamp01(si.near / 0.2), text: `softirq time ${pctS(si.near)} of the CPUs in the ${si.nearRows} samples around the outliers (up to ${pctS(si.nearMax)})` },
      { weight: 0.4, strength: ratio === Infinity ? 1 : clamp01(ratio - 1), text: `against ${pctS(si.otherwise)} in the other ${si.otherRows} samples` },
    ]);
    return {
      id: this.id,
      confidence,
      summary: `Packet processing (softirq) took ${pctS(si.near)} of the CPUs around the outliers: ${outlierSpan(input)} most likely waited in the network stack's backlog.`,
      evidence,
      tryNext: [
        'See which CPU handles the softirqs: `mpstat -P ALL 1`, /proc/softirqs (NET_RX); spread them with RSS/RPS or irqbalance.',
        'Check net.core.netdev_budget and the NIC ring sizes (`ethtool -g`), and `/proc/net/softnet_stat` for squeezed and dropped packets.',
      ],
    };
  },
};
