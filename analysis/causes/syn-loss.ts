import type { Cause, CauseInput, CauseModule } from './types.ts';
import { counterNear, modeShare, outlierSpan, phaseShare, score, clamp01, kernelOutliers, runCommand } from './evidence.ts';
import { formatNumber, formatShare } from '../../lib/format.ts';

// SYNs (or SYN-ACKs) lost without the listen queue overflowing: a firewall,
// a SYN flood protection, packet loss on the path, a full SYN queue.
//
// Scoring (see score()):
//   0.25  excess in connect (strength: connect's share)
//   0.35  a SYN-retransmission mode (strength: share / 0.5, at most 1)
//   0.20  TcpExt.TCPSynRetrans moved around the outliers (1: >= 2x elsewhere, 0.5: nonzero)
//   0.20  kernel events: SYN retransmits on the outlier connections (share); left out without events
// Required: some SYN-retransmission evidence (mode, counter or events), and
// the listen counters did not move (that is accept-queue-overflow).

export const synLoss: CauseModule = {
  id: 'syn-loss',
  title: 'SYN retransmissions without listen-queue overflow',
  needs: [
    'outlier modes',
    'outlier phases',
    'TcpExt.TCPSynRetrans',
    'TcpExt.ListenOverflows / ListenDrops (must not move)',
    'kernel SYN retransmits (optional)',
  ],
  match(input: CauseInput): Cause | null {
    if (input.outliers.count === 0) return null;
    const listen = counterNear(input, ['TcpExt.ListenOverflows', 'TcpExt.ListenDrops']);
    if (listen.near + listen.otherwise > 0) return null;
    const syn = modeShare(input, 'syn-retransmit');
    const counter = counterNear(input, ['TcpExt.TCPSynRetrans']);
    const k = input.txn.kernel;
    const kShare = k && k.outliers > 0 ? k.outliersWithSynRetrans / k.outliers : 0;
    if (syn.count === 0 && !(counter.strength !== null && counter.strength > 0) && !(kShare > 0)) return null;
    const connect = phaseShare(input, (p) => p === 'connect');
    const { confidence, evidence } = score([
      { weight: 0.25, strength: connect.share, text: `${formatShare(connect.share)} of the outliers spent their extra time in connect` },
      { weight: 0.35, strength: clamp01(syn.share / 0.5), text: `${formatShare(syn.share)} of the outliers sit at ${syn.labels.join(', ')}` },
      { weight: 0.2, strength: counter.strength, text: counter.text },
      {
        weight: 0.2,
        strength: k === null || k.outliers === 0 ? null : kShare,
        text: `kernel events: ${formatNumber(k?.outliersWithSynRetrans ?? 0)} of ${kernelOutliers(input)} retransmitted their SYN`,
      },
    ]);
    return {
      id: this.id,
      confidence,
      summary: `${outlierSpan(input)} waited for SYN retransmissions although the listen queue never overflowed: SYNs or SYN-ACKs were lost on the way (filter, conntrack, SYN queue, packet loss).`,
      evidence: [...evidence, 'TcpExt.ListenOverflows and ListenDrops did not move during the load'],
      tryNext: [
        'Look for drops on the path: `nstat -az | grep -i -e drop -e syn`, conntrack (`conntrack -S`), firewall counters, `tc -s qdisc`.',
        `Record which packets the kernel dropped and why (kernel events need root and bpftrace): ${runCommand(input, { '--kernel-states': 'handshake' })}`,
        'Check net.ipv4.tcp_max_syn_backlog and tcp_syncookies on the server.',
      ],
    };
  },
};
