// Open-loop schedules: the intended start of every transaction, decided in
// advance of (and regardless of) completions, as wrk2 does.
import { prng } from '../../lib/prng.ts';

/** Returns the gap in ns before the next intended start. */
export function arrivals(kind: 'uniform' | 'poisson', rate: number, seed: number): () => number {
  const mean = 1e9 / rate;
  if (kind === 'uniform') return () => mean;
  const rand = prng(seed);
  return () => -Math.log(1 - rand()) * mean;
}
