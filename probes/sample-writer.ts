import fs from 'node:fs';
import { BLOCK_HEADER_BYTES, BLOCK_MAGIC, ENTRY_BYTES, FILE_HEADER_BYTES, ROW_HEADER_BYTES, SAMPLES_MAGIC, SAMPLES_VERSION } from './probe-files.ts';

// samples.bin writer: rows are sparse (a value of 0, the common case for a
// counter's delta, is not stored), gathered in a reused buffer and appended
// a block at a time, so a 10-minute run at 50 samples/s of ~500 columns
// stays in the tens of MB and costs one write a second.

export class SampleWriter {
  readonly path: string;
  rows = 0;
  bytes = 0;
  private fd: number;
  private buf: Buffer;
  private view: DataView;
  private pos = BLOCK_HEADER_BYTES;
  private blockRows = 0;
  private rowStart = 0;
  private rowEntries = 0;

  constructor(file: string) {
    this.path = file;
    this.fd = fs.openSync(file, 'w');
    this.buf = Buffer.alloc(1 << 16);
    this.view = new DataView(this.buf.buffer, this.buf.byteOffset, this.buf.byteLength);
    const head = Buffer.alloc(FILE_HEADER_BYTES);
    head.write(SAMPLES_MAGIC, 0, 'latin1');
    head.writeUInt32LE(SAMPLES_VERSION, 8);
    fs.writeSync(this.fd, head);
    this.bytes = FILE_HEADER_BYTES;
  }

  /** Start a row that can hold up to maxEntries values. */
  beginRow(tNs: number, dtNs: number, maxEntries: number): void {
    const need = this.pos + ROW_HEADER_BYTES + maxEntries * ENTRY_BYTES;
    if (need > this.buf.length) this.growTo(need);
    const v = this.view;
    this.rowStart = this.pos;
    v.setFloat64(this.pos, tNs, true);
    v.setFloat64(this.pos + 8, dtNs, true);
    this.pos += ROW_HEADER_BYTES;
    this.rowEntries = 0;
  }

  /** A value of the current row (callers skip zeros). */
  entry(col: number, value: number): void {
    const v = this.view;
    v.setUint16(this.pos, col, true);
    v.setFloat64(this.pos + 2, value, true);
    this.pos += ENTRY_BYTES;
    this.rowEntries++;
  }

  endRow(): void {
    this.view.setUint16(this.rowStart + 16, this.rowEntries, true);
    this.blockRows++;
    this.rows++;
  }

  /** Append the rows gathered so far as one block. */
  flush(): void {
    if (this.blockRows === 0 || this.fd < 0) return;
    const v = this.view;
    v.setUint32(0, BLOCK_MAGIC, true);
    v.setUint32(4, this.blockRows, true);
    v.setUint32(8, this.pos - BLOCK_HEADER_BYTES, true);
    let off = 0;
    while (off < this.pos) off += fs.writeSync(this.fd, this.buf, off, this.pos - off);
    this.bytes += this.pos;
    this.pos = BLOCK_HEADER_BYTES;
    this.blockRows = 0;
  }

  close(): void {
    this.flush();
    if (this.fd >= 0) fs.closeSync(this.fd);
    this.fd = -1;
  }

  private growTo(need: number): void {
    let size = this.buf.length;
    while (size < need) size *= 2;
    const bigger = Buffer.alloc(size);
    this.buf.copy(bigger, 0, 0, this.pos);
    this.buf = bigger;
    this.view = new DataView(bigger.buffer, bigger.byteOffset, bigger.byteLength);
  }
}
