import type { Cause, CauseInput, CauseModule } from './types.ts';
import { counterNear, modeShare, outlierSpan, overflowResets, phaseShare, runCommand, score, clamp01, kernelOutliers } from './evidence.ts';
import { formatNumber, formatShare } from '../../lib/format.ts';

// The listen (accept) queue overflowed: the kernel dropped the client's
// handshake ACK or SYN, and the connect waited for a SYN retransmission.
//
// Scoring (confidence = sum of weight x strength over the available items,
// divided by their weights; see score()):
//   0.20  the outliers' excess sits in connect (strength: connect's share of the outliers)
//   0.25  a SYN-retransmission mode (strength: its share of the outliers / 0.5, at most 1)
//   0.35  TcpExt.ListenOverflows / ListenDrops moved in the samples around the
//         outliers (1: at least twice the rate elsewhere, 0.5: nonzero there)
//   0.20  kernel events: SYN retransmits joined to the outlier transactions
//         (strength: share of the outliers with one); left out without events
// Required: the listen counters moved during the load (otherwise it is syn-loss). With
// tcp_abort_on_overflow=1 the queue's resets (ECONNRESET) are said to be this cause's, not an abortive close.

export const acceptQueueOverflow: CauseModule = {
  id: 'accept-queue-overflow',
  title: 'Listen (accept) queue overflow, connect waits for a SYN retransmission',
  needs: ['outlier modes', 'outlier phases', 'TcpExt.ListenOverflows / ListenDrops probe samples', 'kernel SYN retransmits (optional)'],
  match(input: CauseInput): Cause | null {
    if (input.outliers.count === 0) return null;
    const listen = counterNear(input, ['TcpExt.ListenOverflows', 'TcpExt.ListenDrops']);
    if (listen.strength === null || listen.near + listen.otherwise === 0) return null;
    const connect = phaseShare(input, (p) => p === 'connect');
    const syn = modeShare(input, 'syn-retransmit');
    const k = input.txn.kernel;
    const kShare = k && k.outliers > 0 ? k.outliersWithSynRetrans / k.outliers : 0;
    const { confidence, evidence } = score([
      { weight: 0.2, strength: connect.share, text: `${formatShare(connect.share)} of the outliers spent their extra time in connect` },
      { weight: 0.25, strength: clamp01(syn.share / 0.5), text: `${formatShare(syn.share)} of the outliers sit at ${syn.labels.join(', ')}` },
      { weight: 0.35, strength: listen.strength, text: listen.text },
      {
        weight: 0.2,
        strength: k === null || k.outliers === 0 ? null : kShare,
        text: `kernel events: ${formatNumber(k?.outliersWithSynRetrans ?? 0)} of ${kernelOutliers(input)} retransmitted their SYN`,
      },
    ]);
    if (overflowResets(input))
      evidence.push("tcp_abort_on_overflow=1 and TcpExt.ListenOverflows moved: the ECONNRESET failures are the full queue's resets, not an abortive close");
    const resets = overflowResets(input) ? (input.transactions.errors.ECONNRESET ?? 0) : 0;
    const backlog = input.config.backlog;
    const somax = input.sysctls['net.core.somaxconn'];
    return {
      id: this.id,
      confidence,
      summary:
        `The server's accept queue (${input.config.external ? externalBacklog(input) : `backlog ${backlog}`}${somax ? `, somaxconn ${somax}` : ''}) overflowed: the kernel dropped handshakes ` +
        `(${formatNumber(listen.near)} listen overflows/drops around the outliers), and ${outlierSpan(input)} waited for the client to resend its SYN` +
        (syn.count > 0 ? ` (${formatShare(syn.share)} at ${syn.labels[0]})` : '') +
        '.' +
        (resets > 0
          ? ` With tcp_abort_on_overflow=1 the kernel also answered handshakes it could not queue with a reset: ${formatNumber(resets)} transactions failed with ECONNRESET.`
          : ''),
      evidence,
      tryNext: [
        input.config.external
          ? `Give your server's listener a bigger backlog (its listen(2) backlog, e.g. nginx \`listen ... backlog=N\`; and net.core.somaxconn at least as big), then run again: ${runCommand(input, {})}`
          : `Give the listener a bigger backlog (and net.core.somaxconn at least as big): ${runCommand(input, { '--backlog': Math.max(128, backlog * 64) })}`,
        'Accept faster on the server (more accept loops, no work before accept()); watch `ss -ltn` Recv-Q against Send-Q under load.',
        'Or make overflow visible instead of slow: sysctl net.ipv4.tcp_abort_on_overflow=1 (the client gets a reset at once, not a 1 s SYN retransmission).',
      ],
    };
  },
};

/** An external server's backlog: as the listen-queue probe saw it (the kernel's limit), when it ran. */
function externalBacklog(input: CauseInput): string {
  const limit = input.metrics['listen.limit'];
  return limit !== undefined && limit.max > 0 ? `backlog ${formatNumber(limit.max)}, as the listen-queue probe read it` : "the server's own backlog";
}
