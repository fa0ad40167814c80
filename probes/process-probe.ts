import path from 'node:path';
import type { Columns } from './columns.ts';
import { DIGITS, readDigits } from './delta.ts';
import type { Capture } from './capture.ts';
import { ProcFile, procFailure } from './procfile.ts';

// One process of the run (client, server, a user's command): CPU time from
// /proc/PID/stat (whole process, jiffies), context switches from
// /proc/PID/status and run-queue wait from /proc/PID/schedstat (both of the
// main thread: for Node, the event loop). Custom parsers here, since these
// files hold text that changes from sample to sample (state letters).
//
// Rates: stat (CPU, which the contention check reads per sample) every
// sample; status and schedstat (context switches, run-queue wait: the
// report's process table) at the slow rate; status is the costliest file of
// a process. sockspike's own processes (`own`: orchestrator, probes,
// bpftrace) are read for their CPU alone (stat), at the rate for own CPU.

/** Parse an unsigned decimal at p into column c (split hi/lo). Returns the end, or -1. */
export function parseInto(buf: Uint8Array, p: number, len: number, cols: Columns, c: number): number {
  while (p < len && (buf[p] === 32 || buf[p] === 9)) p++;
  if (p >= len || buf[p] < 48 || buf[p] > 57) return -1;
  p = readDigits(buf, p, len);
  cols.curHi[c] = DIGITS.hi;
  cols.curLo[c] = DIGITS.lo;
  cols.curOk[c] = 1;
  return p;
}

/** Skip count space-separated fields from p (at a field start). */
function skipFields(buf: Uint8Array, p: number, len: number, count: number): number {
  for (let i = 0; i < count && p < len; i++) {
    while (p < len && buf[p] !== 32) p++;
    p++;
  }
  return p;
}

const VOLUNTARY = Buffer.from('\nvoluntary_ctxt_switches:');
const NONVOLUNTARY = Buffer.from('\nnonvoluntary_ctxt_switches:');

export const PROCESS_FIELDS = [
  ['utime', 'fraction', 'fraction'],
  ['stime', 'fraction', 'fraction'],
  ['majflt', 'counter', 'count'],
  ['voluntary_ctxt_switches', 'counter', 'count'],
  ['nonvoluntary_ctxt_switches', 'counter', 'count'],
  ['run_ns', 'counter', 'ns'],
  ['wait_ns', 'counter', 'ns'],
  ['timeslices', 'counter', 'count'],
] as const;

/** The fields of an own process (stat only). */
const OWN_FIELDS = 2;

export interface ProcessRates {
  /** /proc/PID/stat every Nth sample. */
  stat: number;
  /** status and schedstat every Nth sample. */
  rest: number;
}

export class ProcessProbe {
  readonly role: string;
  readonly pid: number;
  /** Column prefix: proc.<key>. */
  readonly key: string;
  /** One of sockspike's own processes: CPU (utime, stime) only. */
  readonly own: boolean;
  gone = false;
  goneReason: string | null = null;
  private readonly stat: ProcFile;
  private readonly status: ProcFile | null = null;
  private readonly sched: ProcFile | null = null;
  private readonly cols: Int32Array;
  private statGroup = 0;
  private restGroup = 0;
  private rates: ProcessRates = { stat: 1, rest: 1 };

  /** Opens its files; throws a one-line reason if it cannot. */
  constructor(role: string, pid: number, key: string, procRoot: string, own = false) {
    this.role = role;
    this.pid = pid;
    this.key = key;
    this.own = own;
    this.cols = new Int32Array(own ? OWN_FIELDS : PROCESS_FIELDS.length);
    const dir = path.join(procRoot, String(pid));
    const names = own ? ['stat'] : ['stat', 'status', 'schedstat'];
    const opened: ProcFile[] = [];
    try {
      for (const f of names) opened.push(new ProcFile(path.join(dir, f), 2048));
    } catch (err) {
      for (const f of opened) f.close();
      throw new Error(procFailure(path.join(dir, names[opened.length]), err));
    }
    this.stat = opened[0];
    if (!own) [, this.status, this.sched] = opened;
  }

  register(columns: Columns, row: number, clkTck: number, rates: ProcessRates = { stat: 1, rest: 1 }): void {
    this.rates = rates;
    for (let i = 0; i < this.cols.length; i++) {
      const [field, kind, unit] = PROCESS_FIELDS[i];
      const every = i < 3 ? rates.stat : rates.rest;
      this.cols[i] = columns.ensure({ name: `proc.${this.key}.${field}`, kind, unit, source: `proc.${this.key}`, scale: 1e9 / clkTck, every }, row);
    }
    this.statGroup = columns.group(rates.stat, `proc.${this.key} (/proc/${this.pid}/stat)`);
    if (!this.own) this.restGroup = columns.group(rates.rest, `proc.${this.key} (/proc/${this.pid}/status, schedstat)`);
  }

  /** Have the capture thread read its files when they are due (after register()). */
  captureWith(capture: Capture): void {
    capture.addFile(this.stat, this.rates.stat, this.stat.buf.length);
    if (this.status !== null) capture.addFile(this.status, this.rates.rest, this.status.buf.length);
    if (this.sched !== null) capture.addFile(this.sched, this.rates.rest, this.sched.buf.length);
  }

  /** Read the process's numbers that are due in this sample. False once it is gone (then never again). */
  sample(columns: Columns, row: number): boolean {
    if (this.gone) return false;
    const cols = this.cols;
    const readStat = columns.reading[this.statGroup] === 1;
    const readRest = this.status !== null && this.sched !== null && columns.reading[this.restGroup] === 1;
    if (!readStat && !readRest) return true;
    if (readStat) for (let i = 0; i < Math.min(3, cols.length); i++) columns.curOk[cols[i]] = 0;
    if (readRest) for (let i = 3; i < cols.length; i++) columns.curOk[cols[i]] = 0;
    // a sample the capture thread took before this process was added: not read (a read now would carry the wrong time)
    if (this.stat.pending || this.status?.pending === true || this.sched?.pending === true) return true;
    let ok = true;
    try {
      if (readStat) {
        // stat: "pid (comm) S ppid ...": comm may hold spaces and parens, so
        // fields count from the last ')'. utime, stime are fields 14, 15.
        const n = this.stat.read();
        const buf = this.stat.buf;
        const close = buf.lastIndexOf(41, n - 1);
        if (close < 0) ok = false;
        else if (buf[close + 2] === 90 /* Z */ || buf[close + 2] === 88 /* X */) {
          // exited, not yet reaped: as good as gone
          throw Object.assign(new Error('zombie'), { code: 'ESRCH' });
        } else {
          let p = skipFields(buf, close + 2, n, 9); // fields 3..11 → majflt (12)
          if (this.own) {
            while (p < n && buf[p] !== 32) p++; // majflt: not recorded for our own
          } else p = parseInto(buf, p, n, columns, cols[2]);
          if (p > 0) p = skipFields(buf, p + 1, n, 1); // cmajflt
          if (p > 0) p = parseInto(buf, p, n, columns, cols[0]);
          if (p > 0) p = parseInto(buf, p, n, columns, cols[1]);
          ok = p > 0;
        }
      }
      if (readRest) {
        const status = this.status as ProcFile;
        const sched = this.sched as ProcFile;
        let n = status.read();
        let buf = status.buf;
        const from = n > 512 ? n - 512 : 0;
        let at = buf.indexOf(VOLUNTARY, from);
        if (at >= 0 && at < n) parseInto(buf, at + VOLUNTARY.length, n, columns, cols[3]);
        at = buf.indexOf(NONVOLUNTARY, from);
        if (at >= 0 && at < n) parseInto(buf, at + NONVOLUNTARY.length, n, columns, cols[4]);
        n = sched.read();
        buf = sched.buf;
        let p = parseInto(buf, 0, n, columns, cols[5]);
        if (p > 0) p = parseInto(buf, p, n, columns, cols[6]);
        if (p > 0) p = parseInto(buf, p, n, columns, cols[7]);
      }
    } catch (err) {
      this.gone = true;
      this.goneReason = procFailure(`/proc/${this.pid}`, err);
      for (let i = 0; i < cols.length; i++) columns.retire(cols[i], row);
      this.close();
      return false;
    }
    return ok;
  }

  close(): void {
    this.stat.close();
    this.status?.close();
    this.sched?.close();
  }
}
