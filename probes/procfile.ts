import fs from 'node:fs';
import { errnoCode } from '../lib/errors.ts';

// One /proc file, opened once and re-read from offset 0 with pread into a
// buffer that is reused. /proc seq files regenerate their content on a read
// at offset 0 (checked for every file we read, in test/probes-sample.test.ts),
// so keeping the fd saves an open/close per sample. For /proc/PID/* the open
// fd also pins the process: after it exits, reads fail with ESRCH rather than
// silently reading a new process that reused the pid.

const MAX_BYTES = 16 << 20;

export class ProcFile {
  readonly path: string;
  buf: Buffer;
  private fd: number;

  /** Opens the file; throws the open error (ENOENT, EACCES, ...). */
  constructor(path: string, initialBytes = 4096) {
    this.path = path;
    this.fd = fs.openSync(path, 'r');
    this.buf = Buffer.allocUnsafe(initialBytes);
  }

  /**
   * One pread at offset 0. Returns the byte count; grows the buffer (and
   * reads again) while a read fills it. Throws the read error (ESRCH once a
   * process is gone).
   */
  read(): number {
    for (;;) {
      const n = fs.readSync(this.fd, this.buf, 0, this.buf.length, 0);
      if (n < this.buf.length) return n;
      if (this.buf.length >= MAX_BYTES) throw new Error(`${this.path} is larger than ${MAX_BYTES} bytes`);
      this.buf = Buffer.allocUnsafe(this.buf.length * 2);
    }
  }

  /**
   * Read to end of file with as many reads as it takes: for the slow path,
   * in case a kernel hands a large file out in pieces.
   */
  readFully(): number {
    let n = this.read();
    for (let i = 0; i < 64; i++) {
      if (n === this.buf.length) {
        const bigger = Buffer.allocUnsafe(this.buf.length * 2);
        this.buf.copy(bigger, 0, 0, n);
        this.buf = bigger;
      }
      const m = fs.readSync(this.fd, this.buf, n, this.buf.length - n, n);
      if (m === 0) return n;
      n += m;
    }
    return n;
  }

  close(): void {
    if (this.fd < 0) return;
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
