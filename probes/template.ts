// A /proc file's layout as a template: its bytes with every number cut out.
// The slow path tokenizes a file once (strings, allocations) and names its
// numbers; the fast path walks the bytes of each fresh read against the
// template, checks that every non-number byte is where it was, and parses
// the numbers straight into column arrays. Any difference (a kernel that
// prints a new counter, a CPU going offline) makes match() return false and
// the caller re-tokenizes: nothing is silently read into the wrong column.

import { DIGITS, readDigits, TWO32 } from './delta.ts';

export const OP_LIT = 1; // compare arg literal bytes
export const OP_WS = 2; // one or more spaces/tabs (padding varies with number width)
export const OP_NUM = 3; // a number into column arg (-1: parse and drop)
export const OP_SKIPLINE = 4; // numbers nobody records, up to the end of the line (bound templates only)

export interface Template {
  /** (op, arg) pairs. */
  ops: Int32Array;
  /** All literal bytes, in order. */
  lit: Buffer;
  /** How many numbers the file holds (slot count). */
  slots: number;
}

export interface Token {
  kind: 'word' | 'num';
  text: string;
  /** Index of the number among all numbers of the file (kind num only). */
  slot: number;
}

export interface Tokenized {
  template: Template;
  /** The file's tokens, line by line, whitespace dropped. */
  lines: Token[][];
}

const LONG_LIT = 48;

const isDigit = (b: number): boolean => b >= 48 && b <= 57;
const isWs = (b: number): boolean => b === 32 || b === 9;
// Letters, digits, '_': a digit run glued to these is part of a name (cpu0, avg10, Icmp6).
const isWordByte = (b: number): boolean => (b >= 48 && b <= 57) || (b >= 65 && b <= 90) || (b >= 97 && b <= 122) || b === 95;

/** End of a number starting at p (sign, digits, optional fraction), or -1 if none starts there. */
function numberEnd(buf: Uint8Array, p: number, len: number): number {
  if (p > 0 && isWordByte(buf[p - 1])) return -1;
  let q = p;
  if (buf[q] === 45 /* - */) q++;
  if (q >= len || !isDigit(buf[q])) return -1;
  while (q < len && isDigit(buf[q])) q++;
  if (q + 1 < len && buf[q] === 46 /* . */ && isDigit(buf[q + 1])) {
    q++;
    while (q < len && isDigit(buf[q])) q++;
  }
  // "3rd", "2x": not a number but part of a word
  if (q < len && isWordByte(buf[q])) return -1;
  return q;
}

/** Slow path: tokenize a file and build its template (all numbers in slots, unbound: arg = slot). */
export function tokenize(buf: Uint8Array, len: number): Tokenized {
  const ops: number[] = [];
  const lit: number[] = [];
  const lines: Token[][] = [[]];
  let slots = 0;
  let litRun = 0;
  let word = '';
  const endLit = (): void => {
    if (litRun > 0) ops.push(OP_LIT, litRun);
    litRun = 0;
  };
  const endWord = (): void => {
    if (word) lines[lines.length - 1].push({ kind: 'word', text: word, slot: -1 });
    word = '';
  };
  let afterNum = false;
  let p = 0;
  while (p < len) {
    const b = buf[p];
    if (isWs(b)) {
      endWord();
      let q = p;
      while (q < len && isWs(buf[q])) q++;
      if (!afterNum && q < len && numberEnd(buf, q, len) < 0) {
        // between two words (header names, fixed-width padding): part of the literal
        litRun += q - p;
        for (; p < q; p++) lit.push(buf[p]);
        continue;
      }
      endLit();
      p = q;
      ops.push(OP_WS, 0);
      continue;
    }
    const e = numberEnd(buf, p, len);
    if (e > 0) {
      endWord();
      endLit();
      let text = '';
      for (let i = p; i < e; i++) text += String.fromCharCode(buf[i]);
      lines[lines.length - 1].push({ kind: 'num', text, slot: slots });
      ops.push(OP_NUM, slots++);
      p = e;
      afterNum = true;
      continue;
    }
    afterNum = false;
    lit.push(b);
    litRun++;
    if (b === 10) {
      endWord();
      lines.push([]);
    } else {
      word += String.fromCharCode(b);
    }
    p++;
  }
  endWord();
  endLit();
  if (lines[lines.length - 1].length === 0) lines.pop();
  return { template: { ops: Int32Array.from(ops), lit: Buffer.from(lit), slots }, lines };
}

/**
 * A copy of the template whose NUM args are column indices (slotToCol[slot],
 * -1 to drop). A run of dropped numbers that ends its line (the values of a
 * table line nobody records at this rate, the intr line of /proc/stat,
 * vmstat lines not kept) becomes one SKIPLINE: match() jumps to the newline
 * instead of walking the digits. The line's header and the literals around
 * it are still compared, so a new layout is still caught.
 */
export function bindTemplate(t: Template, slotToCol: ArrayLike<number>): Template {
  const src = t.ops;
  const out: number[] = [];
  // literal offset of each LIT op, to see whether the literal after a run starts a new line
  let lp = 0;
  for (let i = 0; i < src.length;) {
    if (src[i] === OP_WS || (src[i] === OP_NUM && slotToCol[src[i + 1]] < 0)) {
      let j = i;
      let nums = 0;
      while (j < src.length && (src[j] === OP_WS || (src[j] === OP_NUM && slotToCol[src[j + 1]] < 0))) {
        if (src[j] === OP_NUM) nums++;
        j += 2;
      }
      const endsLine = j < src.length && src[j] === OP_LIT && t.lit[lp] === 10;
      if (nums > 0 && endsLine) {
        out.push(OP_SKIPLINE, 0);
        i = j;
        continue;
      }
      for (; i < j; i += 2) out.push(src[i], src[i] === OP_NUM ? -1 : src[i + 1]);
      continue;
    }
    if (src[i] === OP_LIT) {
      out.push(OP_LIT, src[i + 1]);
      lp += src[i + 1];
    } else out.push(OP_NUM, slotToCol[src[i + 1]]);
    i += 2;
  }
  return { ops: Int32Array.from(out), lit: t.lit, slots: t.slots };
}

/**
 * Fast path: walk buf[0, len) against a bound template, writing each number
 * as hi * 2^32 + lo (exact for unsigned 64-bit values) into its column and
 * setting ok[col] = 1. Negative and fractional numbers land in lo as a plain
 * double with hi = 0. Returns false on any layout difference (columns may then
 * hold partial values: the caller clears ok and re-tokenizes).
 */
export function match(t: Template, buf: Buffer, len: number, hi: Float64Array, lo: Float64Array, ok: Uint8Array): boolean {
  const ops = t.ops;
  const lit = t.lit;
  const nops = ops.length;
  let p = 0;
  let lp = 0;
  for (let i = 0; i < nops; i += 2) {
    const op = ops[i];
    if (op === OP_LIT) {
      const n = ops[i + 1];
      if (p + n > len) return false;
      if (n >= LONG_LIT) {
        // header lines of names: one memcmp beats a byte loop
        if (lit.compare(buf, p, p + n, lp, lp + n) !== 0) return false;
      } else {
        for (let k = 0; k < n; k++) if (buf[p + k] !== lit[lp + k]) return false;
      }
      p += n;
      lp += n;
    } else if (op === OP_SKIPLINE) {
      // dropped numbers to the end of the line (a LIT starting with '\n' follows)
      const q = buf.indexOf(10, p);
      if (q < 0 || q >= len) return false;
      p = q;
    } else if (op === OP_WS) {
      if (p >= len || !isWs(buf[p])) return false;
      p++;
      while (p < len && isWs(buf[p])) p++;
    } else if (ops[i + 1] < 0) {
      // a number nobody records (most of vmstat, the intr line): checked and skipped, not parsed
      if (p < len && buf[p] === 45) p++;
      if (p >= len || !isDigit(buf[p])) return false;
      while (p < len && isDigit(buf[p])) p++;
      if (p + 1 < len && buf[p] === 46 && isDigit(buf[p + 1])) {
        p++;
        while (p < len && isDigit(buf[p])) p++;
      }
    } else {
      let neg = false;
      if (p < len && buf[p] === 45) {
        neg = true;
        p++;
      }
      if (p >= len || !isDigit(buf[p])) return false;
      p = readDigits(buf, p, len);
      let h = DIGITS.hi;
      let l = DIGITS.lo;
      let frac = false;
      if (p + 1 < len && buf[p] === 46 && isDigit(buf[p + 1])) {
        // a fraction (pressure averages): precision beyond a double is moot
        frac = true;
        let v = h * TWO32 + l;
        let scale = 1;
        p++;
        while (p < len && isDigit(buf[p])) {
          scale /= 10;
          v += (buf[p] - 48) * scale;
          p++;
        }
        l = v;
        h = 0;
      }
      const col = ops[i + 1];
      if (col >= 0) {
        if (neg || frac) {
          lo[col] = neg ? -(h * TWO32 + l) : l;
          hi[col] = 0;
        } else {
          hi[col] = h;
          lo[col] = l;
        }
        ok[col] = 1;
      }
    }
  }
  return p === len;
}
