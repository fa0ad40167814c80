import { closeSync, openSync, writeSync } from 'node:fs';
import { HEADER_BYTES, writeHeader } from './records.ts';

// Fixed-size binary records into one preallocated page, written out when
// full. A page of 4096 records is ~230 KB: one write(2) into the page cache
// (~0.1 ms) per 4096 transactions, ~25 ns each, and no allocation at all.
// Synchronous on purpose: a record is on its way to disk the moment the page
// is full, and close() can run on any exit path.

const PAGE_RECORDS = 4096;

export class RecordFile {
  readonly recordSize: number;
  private readonly fd: number;
  private readonly page: Buffer;
  readonly view: DataView;
  private used = 0;
  private closed = false;
  /** Records committed so far. */
  count = 0;

  constructor(path: string, magic: string, recordSize: number, exchanges: number) {
    this.recordSize = recordSize;
    this.fd = openSync(path, 'w');
    const header = Buffer.alloc(HEADER_BYTES);
    writeHeader(new DataView(header.buffer, header.byteOffset, HEADER_BYTES), magic, recordSize, exchanges);
    writeSync(this.fd, header);
    this.page = Buffer.alloc(PAGE_RECORDS * recordSize);
    this.view = new DataView(this.page.buffer, this.page.byteOffset, this.page.length);
  }

  /**
   * Byte offset in `view` of the next record, zeroed unless `zero` is false
   * (for a writer that sets every byte: zeroing is ~30 ns of a ~110 ns
   * record); call commit() once filled.
   */
  next(zero = true): number {
    const at = this.used * this.recordSize;
    if (zero) this.page.fill(0, at, at + this.recordSize);
    return at;
  }

  commit(): void {
    this.used++;
    this.count++;
    if (this.used === PAGE_RECORDS) this.flush();
  }

  flush(): void {
    if (this.used === 0 || this.closed) return;
    writeSync(this.fd, this.page, 0, this.used * this.recordSize);
    this.used = 0;
  }

  close(): void {
    if (this.closed) return;
    this.flush();
    this.closed = true;
    closeSync(this.fd);
  }
}
