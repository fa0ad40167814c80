// One clock for every process of a run: CLOCK_MONOTONIC, read through
// process.hrtime.bigint(). Files store nanoseconds relative to the run's t0
// (itself an absolute CLOCK_MONOTONIC value kept in run.json), as plain
// numbers: a double holds integer nanoseconds exactly for 104 days.

export const monoNs = (): bigint => process.hrtime.bigint();

/** Nanoseconds since t0 as a number (exact below 2^53 ns). */
export const sinceNs = (t0: bigint): number => Number(process.hrtime.bigint() - t0);
