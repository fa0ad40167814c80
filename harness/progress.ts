import { formatNs, formatRate, formatUs } from '../lib/format.ts';
import type { ProgressMessage } from './messages.ts';

// What a person at a terminal sees while a run goes (stderr): a line per
// start-up stage, then one status line rewritten in place (elapsed and
// remaining time, the average rate over the load so far, as the summary
// will count it), then "analysing ..." and "rendering ...". Nothing at all
// when stderr is not a terminal (CI, pipes), in CI (CI=... set), or with
// --no-progress.

/** Whether feedback goes to this terminal: wanted, stderr a TTY, not in CI. */
export const feedbackWanted = (wanted: boolean): boolean => wanted && process.stderr.isTTY === true && !process.env.CI;

/** The run's limits, for the remaining time (set once by `sockspike run` before the run starts). */
let plan: { durationNs: number | null; transactions: number | null } = { durationNs: null, transactions: null };
let stagesOn = false;

/** `sockspike run` says what the run will do and whether to speak at all. */
export function planProgress(wanted: boolean, limits: { durationNs: number | null; transactions: number | null }): void {
  stagesOn = feedbackWanted(wanted);
  plan = limits;
}

/** One line for a stage of start-up or wrap-up ("starting the probes ..."), on a terminal only. */
export function stage(text: string): void {
  if (stagesOn) process.stderr.write(`\r\x1b[K${text}\n`);
}

/** The status line's text: count, average rate since the load began, elapsed and remaining. Pure, for tests. */
export function progressText(m: ProgressMessage, elapsedMs: number, limits = plan): string {
  const rate = elapsedMs > 0 ? (m.attempted * 1000) / elapsedMs : 0;
  const left: number[] = [];
  if (limits.durationNs !== null) left.push(Math.max(0, limits.durationNs / 1e6 - elapsedMs));
  if (limits.transactions !== null && rate > 0) left.push((Math.max(0, limits.transactions - m.attempted) / rate) * 1000);
  const errors = m.failed + m.timedOut;
  return (
    `${formatNs(elapsedMs * 1e6)} elapsed` +
    (left.length > 0 ? `, ~${formatNs(Math.min(...left) * 1e6)} left` : '') +
    `  ${m.attempted} transactions  ${formatRate(rate)}  ok ${m.ok}  errors ${errors}` +
    (m.timedOut > 0 ? ` (timeouts ${m.timedOut})` : '') +
    `  in flight ${m.inflight}  p99 ${m.p99Us > 0 ? formatUs(m.p99Us) : '-'}`
  );
}

/** How often the clients report progress (harness/workload/client.ts, native/engine/client.c). */
const PROGRESS_EVERY_MS = 500;

export class Progress {
  private readonly on: boolean;
  /** When the first update came: the load's start, near enough (updates come every few hundred ms). */
  private startMs: number | null = null;
  private shown = false;

  constructor(wanted: boolean) {
    this.on = feedbackWanted(wanted);
  }

  update(m: ProgressMessage): void {
    if (!this.on) return;
    const now = Date.now();
    if (this.startMs === null) {
      // the clients report every PROGRESS_EVERY_MS from the load's start: the first report comes that long after it
      this.startMs = now - PROGRESS_EVERY_MS;
      process.stderr.write(`\r\x1b[Kload running\n`);
    }
    process.stderr.write(`\r\x1b[K${progressText(m, now - this.startMs)}`);
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
