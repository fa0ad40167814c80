import type { Cause, CauseInput, CauseModule } from './types.ts';
import { counterNear, isExchange, modeShare, outlierSpan, phaseShare, score, clamp01, kernelOutliers, runCommand } from './evidence.ts';
import { formatNumber, formatShare } from '../../lib/format.ts';

// Data (or FIN) segments lost and resent after a retransmission timeout:
// the exchange or close waits for the RTO (200 ms minimum, doubling).
//
// Scoring (see score()):
//   0.25  an RTO mode (strength: its share of the outliers / 0.5, at most 1)
//   0.20  excess in an exchange or close (strength: their share)
//   0.20  Tcp.RetransSegs / TcpExt.TCPTimeouts moved around the outliers (1: >= 2x elsewhere, 0.5: nonzero)
//   0.20  TCP_INFO total_retrans > 0 on outlier transactions (strength: share of
//         outliers with it, minus the share of normal ones, x 2); left out when TCP_INFO was not read
//   0.15  kernel events: non-SYN retransmits on the outlier connections (share); left out without events
//   The counter and TCP_INFO items also count SYN retransmissions, so their
//   strength is multiplied by the exchange-or-close share of the outliers.
//   Where kernel events cover the outliers, the counter item is left out:
//   the counters hold every retransmission over spans of ~100 ms, spurious
//   ones included (a FIN sent again because the peer was slow to ACK it:
//   the outlier's consequence), where the events say per connection which
//   retransmissions the peer needed (analysis/joins/kernel.ts).
// Required: at least 30% of the outliers' excess in an exchange or close, and
// an RTO mode or retransmits near them (counters, TCP_INFO or events).

export const dataRetransmit: CauseModule = {
  id: 'data-retransmit',
  title: 'Data segments retransmitted after a timeout (RTO)',
  needs: [
    'outlier modes',
    'outlier phases',
    'Tcp.RetransSegs / TcpExt.TCPTimeouts',
    'TCP_INFO total_retrans per transaction',
    'kernel retransmit events (optional)',
  ],
  match(input: CauseInput): Cause | null {
    const n = input.outliers.count;
    if (n === 0) return null;
    const rto = modeShare(input, 'rto');
    const phase = phaseShare(input, (p) => isExchange(p) || p === 'close');
    const counter = counterNear(input, ['Tcp.RetransSegs', 'TcpExt.TCPTimeouts']);
    const ti = input.txn.tcpInfo;
    const tiShare = ti && ti.outliers > 0 ? ti.outliersRetrans / ti.outliers : 0;
    const tiNormal = ti && ti.normal > 0 ? ti.normalRetrans / ti.normal : 0;
    const k = input.txn.kernel;
    const kShare = k && k.outliers > 0 ? k.outliersWithRetrans / k.outliers : 0;
    const eventsCover = k !== null && k.outliers > 0;
    const counterStrength = eventsCover ? null : counter.strength;
    // an RTO resends data: the wait is in an exchange or the close, never in connect (that is a SYN's timer)
    if (phase.share < 0.3) return null;
    if (rto.count === 0 && !((counterStrength ?? 0) > 0 || tiShare > tiNormal || kShare > 0)) return null;
    const { confidence, evidence } = score([
      { weight: 0.25, strength: clamp01(rto.share / 0.5), text: `${formatShare(rto.share)} of the outliers sit at ${rto.labels.join(', ')}` },
      {
        weight: 0.2,
        strength: phase.share,
        text: `${formatShare(phase.share)} of the outliers spent their extra time in an exchange or close (mostly ${phase.phase})`,
      },
      { weight: 0.2, strength: counterStrength === null ? null : counterStrength * phase.share, text: counter.text },
      {
        weight: 0.2,
        strength: ti === null || ti.outliers === 0 ? null : clamp01((tiShare - tiNormal) * 2) * phase.share,
        text: `TCP_INFO: ${formatNumber(ti?.outliersRetrans ?? 0)} of ${formatNumber(ti?.outliers ?? 0)} outlier connections had retransmitted (total_retrans > 0), against ${formatShare(tiNormal)} of normal ones`,
      },
      {
        weight: 0.15,
        strength: k === null || k.outliers === 0 ? null : kShare,
        text:
          `kernel events: ${formatNumber(k?.outliersWithRetrans ?? 0)} of ${kernelOutliers(input)} had a data/FIN retransmit` +
          ((k?.outliersWithSpuriousRetrans ?? 0) > 0
            ? ` (${formatNumber(k?.outliersWithSpuriousRetrans ?? 0)} more had only spurious ones, which the peer dropped as data it already had: nothing waited for them)`
            : ''),
      },
    ]);
    return {
      id: this.id,
      confidence,
      summary:
        `${outlierSpan(input)} waited for lost segments to be resent after a retransmission timeout` +
        (rto.count > 0 ? ` (${formatShare(rto.share)} at ${rto.labels[0]})` : '') +
        '.',
      evidence,
      tryNext: [
        'Find where segments are lost: `nstat -az | grep -i -e retrans -e drop`, `tc -s qdisc`, NIC drops (`ethtool -S`), conntrack.',
        `Record which connections retransmitted (kernel events need root and bpftrace): ${runCommand(input, {})}`,
        'On a low-RTT path the 200 ms minimum RTO dominates: `ip route change ... rto_min 5ms` (or net.ipv4.tcp_rto_min_us) shortens the wait.',
      ],
    };
  },
};
