import type { Cause, CauseInput, CauseModule } from './types.ts';
import { levelNear, outlierSpan, phaseShare, score, clamp01, runCommand } from './evidence.ts';
import { formatNumber, formatShare } from '../../lib/format.ts';

// Ephemeral ports used up (TIME_WAIT holds them): connect() fails with
// EADDRNOTAVAIL, or slows while the kernel searches the port range.
//
// Scoring (see score()):
//   0.55  EADDRNOTAVAIL errors (1 when any; this alone makes it likely)
//   0.25  TIME_WAIT sockets (sockstat.TCP.tw, largest sample) near the size of
//         net.ipv4.ip_local_port_range (strength: tw / range / 0.8, at most 1;
//         without the range, tw / 200 000); left out without probes
//   0.20  outliers' excess in connect (strength: connect's share); left out without outliers
// Required: EADDRNOTAVAIL errors, or connect outliers with TIME_WAIT at half the range or more.

export function portRange(sysctls: Record<string, string>): number | null {
  const m = /^\s*(\d+)\s+(\d+)\s*$/.exec(sysctls['net.ipv4.ip_local_port_range'] ?? '');
  if (!m) return null;
  return Number(m[2]) - Number(m[1]) + 1;
}

export const portExhaustion: CauseModule = {
  id: 'port-exhaustion',
  title: 'Ephemeral ports exhausted (TIME_WAIT)',
  needs: ['transaction errors (EADDRNOTAVAIL)', 'sockstat.TCP.tw', 'net.ipv4.ip_local_port_range', 'outlier phases'],
  match(input: CauseInput): Cause | null {
    const errs = input.transactions.errors.EADDRNOTAVAIL ?? 0;
    const tw = levelNear(input, 'sockstat.TCP.tw');
    const range = portRange(input.sysctls);
    const twMax = tw === null ? null : Math.max(tw.max, tw.nearMax);
    const twRatio = twMax === null ? null : range ? twMax / range : twMax / 250_000;
    const connect = phaseShare(input, (p) => p === 'connect');
    if (errs === 0 && !(input.outliers.count > 0 && connect.share >= 0.5 && twRatio !== null && twRatio >= 0.5)) return null;
    const { confidence, evidence } = score([
      { weight: 0.55, strength: errs > 0 ? 1 : 0, text: `${formatNumber(errs)} connects failed with EADDRNOTAVAIL (no free local port)` },
      {
        weight: 0.25,
        strength: twRatio === null ? null : clamp01(twRatio / 0.8),
        text:
          `up to ${formatNumber(twMax ?? 0)} sockets in TIME_WAIT` +
          (range ? ` against ${formatNumber(range)} local ports (net.ipv4.ip_local_port_range ${input.sysctls['net.ipv4.ip_local_port_range']})` : ''),
      },
      {
        weight: 0.2,
        strength: input.outliers.count > 0 ? connect.share : null,
        text: `${formatShare(connect.share)} of the outliers spent their extra time in connect`,
      },
    ]);
    return {
      id: this.id,
      confidence,
      summary:
        (errs > 0
          ? `${formatNumber(errs)} connects found no free local port (EADDRNOTAVAIL)`
          : `${outlierSpan(input)} slowed in connect while the kernel searched for a free local port`) +
        (twMax !== null ? `, with up to ${formatNumber(twMax)} connections in TIME_WAIT` : '') +
        '.',
      evidence,
      tryNext: [
        'Widen the port range: sysctl net.ipv4.ip_local_port_range="1024 65535"; let TIME_WAIT ports be reused: net.ipv4.tcp_tw_reuse=1.',
        `Reuse connections instead of one per transaction: ${runCommand(input, { '--close': 'keepalive' })}`,
        `Or let the server close first so TIME_WAIT lands there: ${runCommand(input, { '--close': 'server-fin' })}`,
      ],
    };
  },
};
