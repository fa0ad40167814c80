import { formatRate, formatUs } from '../lib/format.ts';
import type { ProgressMessage } from './messages.ts';

// One status line on a terminal (stderr), rewritten in place; nothing at
// all when stderr is not a terminal (CI, pipes).
export class Progress {
  private readonly on: boolean;
  private last = 0;
  private lastTime = Date.now();
  private shown = false;

  constructor(wanted: boolean) {
    this.on = wanted && process.stderr.isTTY === true;
  }

  update(m: ProgressMessage): void {
    if (!this.on) return;
    const now = Date.now();
    const rate = ((m.attempted - this.last) * 1000) / Math.max(1, now - this.lastTime);
    this.last = m.attempted;
    this.lastTime = now;
    const errors = m.failed + m.timedOut;
    const text =
      `${m.attempted} transactions  ${formatRate(rate)}  ok ${m.ok}  errors ${errors}` +
      (m.timedOut > 0 ? ` (timeouts ${m.timedOut})` : '') +
      `  in flight ${m.inflight}  p99 ${m.p99Us > 0 ? formatUs(m.p99Us) : '-'}`;
    process.stderr.write(`\r\x1b[K${text}`);
    this.shown = true;
  }

  line(text: string): void {
    if (this.shown) process.stderr.write('\r\x1b[K');
    process.stderr.write(text + '\n');
    this.shown = false;
  }

  end(): void {
    if (this.on && this.shown) process.stderr.write('\n');
    this.shown = false;
  }
}
