// The built-in protocol. A request is Q bytes: a 4-byte transaction number
// and a 2-byte exchange number (so a misrouted or stale answer is caught),
// then a fixed pattern. The answer is R bytes: the request's first
// min(6, Q, R) bytes, then the same pattern; with R = Q it is an exact echo.

export const HEADER = 6;

export const patternByte = (i: number): number => (i * 7 + 13) & 0xff;

export function patternBuffer(n: number): Buffer {
  const b = Buffer.allocUnsafe(n);
  for (let i = 0; i < n; i++) b[i] = patternByte(i);
  return b;
}

/**
 * Stamp transaction and exchange numbers into the first `limit` bytes
 * (at most HEADER) of a request or of an expected answer.
 */
export function stamp(buf: Buffer, seq: number, exchange: number, limit: number): void {
  const n = Math.min(HEADER, limit, buf.length);
  for (let i = 0; i < n; i++) buf[i] = i < 4 ? (seq >>> (8 * i)) & 0xff : (exchange >>> (8 * (i - 4))) & 0xff;
}
