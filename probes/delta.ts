// Counter deltas with wrap-around. Raw values are kept as two doubles,
// hi * 2^32 + lo, so a 64-bit counter past 2^53 (IpExt.InOctets on a busy
// host) still gives an exact delta.

export const TWO32 = 4294967296;
const TOP_HALF = 2147483648; // hi >= this: the previous value was >= 2^63

/**
 * Delta of an unsigned 64-bit counter from (phi, plo) to (hi, lo). Going
 * backwards is a wrap only if the previous value was in the top half of the
 * range; otherwise the counter was reset (a new namespace, a restarted
 * process) and the delta is unknown: NaN, never a made-up number.
 */
export function delta64(hi: number, lo: number, phi: number, plo: number): number {
  let dh = hi - phi;
  let dl = lo - plo;
  if (dl < 0) {
    dl += TWO32;
    dh -= 1;
  }
  if (dh < 0) {
    if (phi < TOP_HALF) return NaN;
    dh += TWO32;
  }
  return dh * TWO32 + dl;
}

/**
 * Delta of an unsigned 32-bit counter (per-CPU softirq counts are unsigned
 * int): going backwards is always taken as one wrap.
 */
export function delta32(lo: number, plo: number): number {
  const d = lo - plo;
  return d >= 0 ? d : d + TWO32;
}

/** Delta of a counter of the given width, from split raw values. */
export function counterDelta(width: number, hi: number, lo: number, phi: number, plo: number): number {
  if (width === 32 && hi === 0 && phi === 0) return delta32(lo, plo);
  return delta64(hi, lo, phi, plo);
}

/** Split a non-negative integer (exact below 2^53) into [hi, lo]. */
export function split64(v: number | bigint): [number, number] {
  if (typeof v === 'bigint') return [Number(v >> 32n), Number(v & 0xffffffffn)];
  const hi = Math.floor(v / TWO32);
  return [hi, v - hi * TWO32];
}

/**
 * The unsigned decimal at p, exactly, as DIGITS.hi * 2^32 + DIGITS.lo
 * (a double alone loses 64-bit counters past 2^53). Returns the index
 * after the last digit. A module-level result: parsing allocates nothing.
 */
export const DIGITS = { hi: 0, lo: 0 };
export function readDigits(buf: Uint8Array, p: number, len: number): number {
  // Up to 15 digits a double holds exactly: one split at the end. Longer
  // numbers (64-bit counters past 10^15) take the digit-by-digit split.
  const start = p;
  let v = 0;
  while (p < len) {
    const d = buf[p] - 48;
    if (d < 0 || d > 9) break;
    v = v * 10 + d;
    p++;
  }
  if (p - start <= 15) {
    const h = v >= TWO32 ? Math.floor(v / TWO32) : 0;
    DIGITS.hi = h;
    DIGITS.lo = v - h * TWO32;
    return p;
  }
  let h = 0;
  let l = 0;
  for (let q = start; q < p; q++) {
    l = l * 10 + (buf[q] - 48);
    const carry = l >= TWO32 ? Math.floor(l / TWO32) : 0;
    h = h * 10 + carry;
    l -= carry * TWO32;
  }
  DIGITS.hi = h;
  DIGITS.lo = l;
  return p;
}
