import fs from 'node:fs';
import { getSystemErrorName } from 'node:util';
import { errnoCode } from '../lib/errors.ts';

// One /proc file, opened once and re-read from offset 0 with pread into a
// buffer that is reused. /proc seq files regenerate their content on a read
// at offset 0 (checked for every file we read, in test/probes-sample.test.ts),
// so keeping the fd saves an open/close per sample. For /proc/PID/* the open
// fd also pins the process: after it exits, reads fail with ESRCH rather than
// silently reading a new process that reused the pid.
//
// Under a capture thread (capture.ts) the read was done by the thread at
// the sample's time: feed() hands its bytes over and read() returns them.

const MAX_BYTES = 16 << 20;

/** The file's capture entry, so that closing it stops the thread reading its fd first. */
export interface CapturedEntry {
  remove(): void;
}

export class ProcFile {
  readonly path: string;
  /** What the last read returned: this file's own buffer, or a capture slot's bytes. */
  buf: Buffer;
  /** The capture thread's read of this sample was made before this file was registered with it: not read (ProcessProbe skips the sample). */
  pending = false;
  captured: CapturedEntry | null = null;
  private own: Buffer;
  private fedLen = 0;
  private fed: Buffer | null = null;
  private fd: number;

  /** Opens the file; throws the open error (ENOENT, EACCES, ...). */
  constructor(path: string, initialBytes = 4096) {
    this.path = path;
    this.fd = fs.openSync(path, 'r');
    this.own = Buffer.allocUnsafe(initialBytes);
    this.buf = this.own;
  }

  get descriptor(): number {
    return this.fd;
  }

  /** The capture thread's read for the next read() (bytes, or -errno; null: not read by it, read() reads now). */
  feed(bytes: Buffer | null, len: number): void {
    this.fed = bytes;
    this.fedLen = len;
  }

  /**
   * One pread at offset 0. Returns the byte count; grows the buffer (and
   * reads again) while a read fills it. Throws the read error (ESRCH once a
   * process is gone).
   */
  read(): number {
    const fed = this.fed;
    if (fed !== null) {
      this.fed = null;
      const n = this.fedLen;
      // a read that filled the slot may have been cut short: read it now instead
      if (n >= 0 && n < fed.length) {
        this.buf = fed;
        return n;
      }
      if (n < 0) throw Object.assign(new Error(`${this.path}: ${getSystemErrorName(n)}`), { code: getSystemErrorName(n) });
    }
    this.buf = this.own;
    for (;;) {
      const n = fs.readSync(this.fd, this.buf, 0, this.buf.length, 0);
      if (n < this.buf.length) return n;
      if (this.buf.length >= MAX_BYTES) throw new Error(`${this.path} is larger than ${MAX_BYTES} bytes`);
      this.buf = this.own = Buffer.allocUnsafe(this.buf.length * 2);
    }
  }

  /**
   * Read to end of file with as many reads as it takes: for the slow path,
   * in case a kernel hands a large file out in pieces.
   */
  readFully(): number {
    this.fed = null;
    let n = this.read();
    for (let i = 0; i < 64; i++) {
      if (n === this.buf.length) {
        const bigger = Buffer.allocUnsafe(this.buf.length * 2);
        this.buf.copy(bigger, 0, 0, n);
        this.buf = this.own = bigger;
      }
      const m = fs.readSync(this.fd, this.buf, n, this.buf.length - n, n);
      if (m === 0) return n;
      n += m;
    }
    return n;
  }

  close(): void {
    if (this.fd < 0) return;
    this.captured?.remove();
    this.captured = null;
    try {
      fs.closeSync(this.fd);
    } catch {
      // already gone
    }
    this.fd = -1;
  }
}

/** One line saying why a /proc file cannot be read. */
export function procFailure(path: string, err: unknown): string {
  const code = errnoCode(err);
  if (code === 'ENOENT') return `${path} does not exist`;
  if (code === 'EACCES' || code === 'EPERM') return `no permission to read ${path}`;
  if (code === 'EOPNOTSUPP') return `${path} is not supported by this kernel (${code})`;
  if (code === 'ESRCH') return `${path}: the process is gone`;
  return `${path}: ${code ?? (err instanceof Error ? err.message.split('\n')[0] : String(err))}`;
}
