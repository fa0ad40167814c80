import type { ResponseUntil } from '../../lib/types.ts';

// When is a templated answer complete? Fed each chunk as it arrives, with no
// allocation per chunk: a byte count, or a streaming delimiter match (KMP,
// so a delimiter split across chunks is still found).

/** feed(): the answer needs more bytes. */
export const MORE = -1;
/** feed(): bytes came after the answer was complete (or beyond bytes:N). */
export const EXTRA = -2;
/** feed(): the answer is complete with this chunk (and nothing follows it). */
export const COMPLETE = 0;

export class ResponseRule {
  private got = 0;
  private matched = 0;
  private readonly delim: Buffer | null;
  private readonly fail: Int32Array;
  readonly atClose: boolean;
  private readonly bytes: number;

  constructor(until: ResponseUntil) {
    this.atClose = until.kind === 'close';
    this.bytes = until.kind === 'bytes' ? until.bytes : 0;
    this.delim = until.kind === 'delimiter' ? Buffer.from(until.delimiterBase64, 'base64') : null;
    this.fail = new Int32Array(this.delim?.length ?? 0);
    const d = this.delim;
    if (d !== null) {
      // KMP failure function: the longest proper prefix of d[0..i] that is also its suffix
      for (let i = 1, k = 0; i < d.length; i++) {
        while (k > 0 && d[i] !== d[k]) k = this.fail[k - 1];
        if (d[i] === d[k]) k++;
        this.fail[i] = k;
      }
    }
  }

  reset(): void {
    this.got = 0;
    this.matched = 0;
  }

  /** Bytes of the current answer so far. */
  get received(): number {
    return this.got;
  }

  feed(chunk: Buffer): number {
    const len = chunk.length;
    if (this.atClose) {
      this.got += len;
      return MORE;
    }
    if (this.delim === null) {
      this.got += len;
      if (this.got > this.bytes) return EXTRA;
      return this.got === this.bytes ? COMPLETE : MORE;
    }
    const d = this.delim;
    let k = this.matched;
    for (let i = 0; i < len; i++) {
      const b = chunk[i];
      while (k > 0 && b !== d[k]) k = this.fail[k - 1];
      if (b === d[k]) k++;
      if (k === d.length) {
        this.got += i + 1;
        this.matched = 0;
        return i + 1 === len ? COMPLETE : EXTRA;
      }
    }
    this.matched = k;
    this.got += len;
    return MORE;
  }
}
