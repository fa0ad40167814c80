// Open-loop schedules: the intended start of every transaction, decided in
// advance of (and regardless of) completions, as wrk2 does.

/** mulberry32: small, fast, seedable; enough for inter-arrival times. */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Returns the gap in ns before the next intended start. */
export function arrivals(kind: 'uniform' | 'poisson', rate: number, seed: number): () => number {
  const mean = 1e9 / rate;
  if (kind === 'uniform') return () => mean;
  const rand = prng(seed);
  return () => -Math.log(1 - rand()) * mean;
}
