// CLOCK_REALTIME minus CLOCK_MONOTONIC, in ns, so a log stamped with Unix
// epoch times (someone else's client) can be put on the run's monotonic
// clock. Date.now() has 1 ms resolution but ticks over at exact milliseconds:
// catching the tick with process.hrtime.bigint() on both sides gives the
// offset to within the width of one loop turn (a few microseconds).

export interface EpochOffset {
  /** Unix epoch ns minus CLOCK_MONOTONIC ns (decimal string: exceeds 2^53). */
  realtimeMinusMonotonicNs: string;
  /** Half the width of the window the tick was caught in, ns. */
  uncertaintyNs: number;
}

/** Measure the offset (costs up to ~3 ms: three millisecond ticks). */
export function measureEpochOffset(tries = 3): EpochOffset {
  let best: { offset: bigint; width: bigint } | null = null;
  for (let k = 0; k < tries; k++) {
    const first = Date.now();
    let before = process.hrtime.bigint();
    let ms = Date.now();
    // spin to the next millisecond edge; bounded by 5 ms in case of a clock step
    const give = before + 5_000_000n;
    while (ms === first) {
      before = process.hrtime.bigint();
      ms = Date.now();
      if (before > give) break;
    }
    const after = process.hrtime.bigint();
    if (ms === first) continue;
    const width = after - before;
    const mono = before + width / 2n;
    const offset = BigInt(ms) * 1_000_000n - mono;
    if (best === null || width < best.width) best = { offset, width };
  }
  if (best === null) {
    // no tick caught: fall back to a plain reading (1 ms uncertainty)
    const mono = process.hrtime.bigint();
    return { realtimeMinusMonotonicNs: (BigInt(Date.now()) * 1_000_000n - mono).toString(), uncertaintyNs: 1e6 };
  }
  return { realtimeMinusMonotonicNs: best.offset.toString(), uncertaintyNs: Number(best.width) / 2 };
}
