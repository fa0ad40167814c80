import { build, type Histogram } from 'hdr-histogram-js';
import type { PhaseStats } from '../lib/types.ts';

// Latency distributions in integer microseconds, through HdrHistogram
// (3 significant digits, 1 us .. 1 h), so percentiles match what other
// HdrHistogram tools would print from the same encoding.

export const newHistogram = (): Histogram =>
  build({ lowestDiscernibleValue: 1, highestTrackableValue: 3_600_000_000, numberOfSignificantValueDigits: 3, useWebAssembly: false });

export function record(h: Histogram, us: number): void {
  if (!(us >= 0)) return; // NaN: phase not reached
  h.recordValue(Math.min(3_600_000_000, Math.max(1, Math.round(us))));
}

export function phaseStats(h: Histogram): PhaseStats {
  if (h.totalCount === 0) return { count: 0, p50: 0, p90: 0, p99: 0, p999: 0, max: 0, mean: 0 };
  // HdrHistogram reports the top of a value's bucket: never above the max seen
  const at = (p: number): number => Math.min(h.getValueAtPercentile(p), h.maxValue);
  return {
    count: h.totalCount,
    p50: at(50),
    p90: at(90),
    p99: at(99),
    p999: at(99.9),
    max: h.maxValue,
    mean: Math.round(h.mean),
  };
}
