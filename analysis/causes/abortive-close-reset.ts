import type { Cause, CauseInput, CauseModule } from './types.ts';
import { counterNear, outlierSpan, overflowResets, score, kernelOutliers, runCommand } from './evidence.ts';
import { formatNumber } from '../../lib/format.ts';

// Connections ended by a reset (SO_LINGER {1,0}, a full queue with
// tcp_abort_on_overflow, a peer that closed with unread data): the other side
// sees ECONNRESET.
//
// Scoring (see score()):
//   0.45  ECONNRESET / EPIPE errors (1 when any)
//   0.20  the configuration closes abortively (close client-rst / server-rst: 1)
//   0.20  kernel events: resets on the outlier or failed connections (strength: share of outliers with one); left out without events.
//         Where resets were only counted in the kernel (more than its budget per 100 ms: a run that resets every
//         connection), the outliers there count by the share of connections that had one (analysis/joins/kernel.ts)
//   0.15  Tcp.OutRsts / Tcp.EstabResets moved around the outliers (1: >= 2x elsewhere, 0.5: nonzero); left out without probes or outliers
// Required: ECONNRESET or EPIPE errors (resets alone are what an rst close does by design), and
// not the resets of a full accept queue (tcp_abort_on_overflow=1 with TcpExt.ListenOverflows moving
// and no rst close: accept-queue-overflow's).

export const abortiveCloseReset: CauseModule = {
  id: 'abortive-close-reset',
  title: 'Connections reset (abortive close)',
  needs: ['transaction errors (ECONNRESET, EPIPE)', 'configuration (close)', 'kernel reset events (optional)', 'Tcp.OutRsts / EstabResets'],
  match(input: CauseInput): Cause | null {
    const e = input.transactions.errors;
    const errs = (e.ECONNRESET ?? 0) + (e.EPIPE ?? 0);
    if (errs === 0) return null;
    const rstClose = input.config.close === 'client-rst' || input.config.close === 'server-rst';
    // with tcp_abort_on_overflow=1 a full accept queue answers handshakes with a reset: those are
    // accept-queue-overflow's, told apart by TcpExt.ListenOverflows moving (an abortive close moves only Tcp.OutRsts)
    const overflow = overflowResets(input);
    if (overflow && !rstClose) return null;
    const k = input.txn.kernel;
    const n = input.outliers.count;
    const rst = counterNear(input, ['Tcp.OutRsts', 'Tcp.EstabResets']);
    const { confidence, evidence } = score([
      {
        weight: 0.45,
        strength: 1,
        text: `${formatNumber(e.ECONNRESET ?? 0)} transactions failed with ECONNRESET and ${formatNumber(e.EPIPE ?? 0)} with EPIPE`,
      },
      { weight: 0.2, strength: rstClose ? 1 : 0, text: `the run closes with a reset (close ${input.config.close})` },
      {
        weight: 0.2,
        strength: k === null || k.outliers === 0 ? null : k.outliersWithReset / k.outliers,
        text:
          `kernel events: ${formatNumber(k?.outliersWithReset ?? 0)} of ${kernelOutliers(input)} saw a reset` +
          (k?.outliersWithResetEstimated
            ? ` (${formatNumber(k.outliersWithResetEstimated.withReset)} of them estimated: for ${formatNumber(k.outliersWithResetEstimated.outliers)}, resets came with every connection and were counted in the kernel, not recorded one by one)`
            : ''),
      },
      { weight: 0.15, strength: n === 0 ? null : rst.strength, text: rst.text },
    ]);
    if (overflow)
      evidence.push(
        'tcp_abort_on_overflow=1 and TcpExt.ListenOverflows moved: some of these resets may be the full accept queue answering handshakes (accept-queue-overflow)',
      );
    return {
      id: this.id,
      confidence,
      summary:
        `${formatNumber(errs)} transactions were cut off by a reset` +
        (rstClose ? ` (this run closes connections with ${input.config.close}: the peer can still be writing or reading when the reset arrives)` : '') +
        (n > 0 ? `; ${outlierSpan(input)}` : '') +
        '.',
      evidence,
      tryNext: [
        `Close gracefully and compare: ${runCommand(input, { '--close': input.config.close === 'server-rst' ? 'server-fin' : 'client-fin' })}`,
        'Only reset a connection after the peer has read everything (shutdown(SHUT_WR), read to EOF, then close).',
        'Check net.ipv4.tcp_abort_on_overflow: with 1, a full accept queue answers with resets.',
      ],
    };
  },
};
