// One clock for every process of a run: CLOCK_MONOTONIC, read through
// process.hrtime.bigint(). Files store nanoseconds relative to the run's t0
// (itself an absolute CLOCK_MONOTONIC value kept in run.json), as plain
// numbers: a double holds integer nanoseconds exactly for 104 days.

export const monoNs = (): bigint => process.hrtime.bigint();

/** Nanoseconds since t0 as a number (exact below 2^53 ns). */
export const sinceNs = (t0: bigint): number => Number(process.hrtime.bigint() - t0);

/**
 * A clock for hot paths: ns since t0 as a plain double, with no BigInt
 * allocated per reading. performance.now() reads the same CLOCK_MONOTONIC
 * source as hrtime (uv_hrtime, minus the process's time origin), so one
 * offset, calibrated here against hrtime.bigint(), maps it onto t0.
 */
export function runClock(t0: bigint): () => number {
  let offset = 0;
  let best = Infinity;
  for (let i = 0; i < 16; i++) {
    const a = process.hrtime.bigint();
    const p = performance.now();
    const b = process.hrtime.bigint();
    const width = Number(b - a);
    if (width < best) {
      best = width;
      offset = Number(a - t0) + width / 2 - p * 1e6;
    }
  }
  return () => performance.now() * 1e6 + offset;
}
