import type { Cause, CauseInput, CauseModule } from './types.ts';
import { counterNear, isExchange, modeShare, outlierSpan, phaseShare, score, clamp01, runCommand } from './evidence.ts';
import { formatNumber, formatShare } from '../../lib/format.ts';

// Nagle's algorithm holds the second write of a request until the first is
// ACKed, and the peer delays that ACK (40 ms): each exchange of a split
// request waits ~40 ms.
//
// Scoring (see score()):
//   0.35  a delayed-ACK (~40 ms) mode (strength: its share / 0.5, at most 1)
//   0.20  excess in an exchange (strength: the exchanges' share)
//   0.30  the configuration sets the trap: requests in several writes with
//         TCP_NODELAY off (1), one write (0)
//   0.15  TcpExt.DelayedACKs moved around the outliers (1: >= 2x elsewhere, 0.5: nonzero); left out without probes
// Required: a delayed-ACK mode, and either the configuration sets the trap or
// TcpExt.DelayedACKs rose around the outliers (>= 2x elsewhere): one write
// per request gives Nagle nothing to hold, and a ~40 ms wait alone is as
// likely a scheduler delay on a busy machine.

export const nagleDelayedAck: CauseModule = {
  id: 'nagle-delayed-ack',
  title: "Nagle's algorithm meets delayed ACK (~40 ms per exchange)",
  needs: ['outlier modes', 'outlier phases', 'configuration (split writes, TCP_NODELAY)', 'TcpExt.DelayedACKs'],
  match(input: CauseInput): Cause | null {
    if (input.outliers.count === 0) return null;
    const mode = modeShare(input, 'delayed-ack');
    if (mode.count === 0) return null;
    const phase = phaseShare(input, isExchange);
    // a chain ("2 x delayed ACK"): one wait in each of several exchanges
    const waits = Math.max(1, ...mode.labels.map((l) => Number(/^(\d+) x delayed ACK/.exec(l)?.[1] ?? 1)));
    const c = input.config;
    const trap = c.splitWrites > 1 && !c.nodelay;
    const dack = counterNear(input, ['TcpExt.DelayedACKs']);
    if (!trap && !(dack.strength !== null && dack.strength >= 1)) return null;
    const { confidence, evidence } = score([
      {
        weight: 0.35,
        strength: clamp01(mode.share / 0.5),
        text: `${formatShare(mode.share)} of the outliers (${formatNumber(mode.count)}) sit at ${mode.labels.join(', ')}`,
      },
      { weight: 0.2, strength: phase.share, text: `${formatShare(phase.share)} of the outliers spent their extra time in an exchange (mostly ${phase.phase})` },
      { weight: 0.3, strength: trap ? 1 : 0, text: `requests are sent in ${c.splitWrites} writes with TCP_NODELAY off` },
      { weight: 0.15, strength: dack.strength, text: dack.text },
    ]);
    return {
      id: this.id,
      confidence,
      summary:
        `${outlierSpan(input)}: ${formatShare(mode.share)} waited about 40 ms in ${waits > 1 ? `each of ${waits} exchanges` : 'an exchange'}, the peer's delayed ACK holding back a request Nagle's algorithm had split` +
        (trap ? ` (${c.splitWrites} writes per request, TCP_NODELAY off)` : '') +
        '.',
      evidence,
      tryNext: [
        `Set TCP_NODELAY: ${runCommand(input, { '--nodelay': 'on' })}`,
        `Or write each request in one write (writev / cork and uncork): ${runCommand(input, { '--split-writes': null })}`,
        'On the receiver, TCP_QUICKACK turns the delayed ACK off for the next ACKs.',
      ],
    };
  },
};
