import path from 'node:path';
import type { Capture } from './capture.ts';
import type { Columns } from './columns.ts';
import { EVERY_SAMPLE, type NameContext, type SourceDef } from './proc-names.ts';
import { ProcFile, procFailure } from './procfile.ts';
import { bindTemplate, match, tokenize, type Template } from './template.ts';

// A system-wide /proc file sampled through a template: fast path match()
// per sample, slow path (tokenize, name, add columns) at start and whenever
// the layout changes.
//
// Rates: a source marked slow is read every `slowEvery` samples. A source
// read every sample keeps only its EVERY_SAMPLE columns at that rate; its
// other numbers are read at the slow rate: in the samples between, the file
// is matched against a second template that checks every byte of the
// layout but parses none of those numbers.

export class TemplateSource {
  readonly def: SourceDef;
  readonly path: string;
  /** Layout changes seen after the first (new counters, CPUs on/offline). */
  relayouts = 0;
  /** Samples where the file could not be read or parsed. */
  failures = 0;
  lastFailure: string | null = null;
  private file: ProcFile | null = null;
  /** Bytes of the first read (to size a capture slot). */
  private bytes = 0;
  /** Every number bound to its column. */
  private full: Template | null = null;
  /** Only the numbers of columns read every sample bound (null: the source is read at one rate). */
  private partial: Template | null = null;
  private cols = new Int32Array(0);
  /** Its columns read every sample, and the others (cleared only when their rate is read). */
  private colsFast = new Int32Array(0);
  private colsSlow = new Int32Array(0);
  private readonly ctx: NameContext;
  /** The slow rate: every Nth sample. */
  readonly slowEvery: number;
  /** Rate group of the source's most frequent columns: the sampler reads the file when it is due (set by open()). */
  group = 0;
  /** Rate group of the slow columns. */
  private slowGroup = 0;

  constructor(def: SourceDef, procRoot: string, ctx: NameContext, slowEvery = 1) {
    this.def = def;
    this.path = path.join(procRoot, def.path);
    this.ctx = ctx;
    this.slowEvery = Math.max(1, slowEvery);
  }

  /** Open and lay out the file. Returns why it cannot be sampled, or null. */
  open(columns: Columns, row: number): string | null {
    try {
      this.file = new ProcFile(this.path);
      const n = this.file.readFully();
      this.bytes = n;
      this.layout(columns, row, n);
      if (this.cols.length === 0) return `${this.path}: nothing recognisable to sample`;
      this.slowGroup = columns.group(this.slowEvery);
      // a file none of whose columns is read every sample is read only at the slow rate
      const whole = this.def.slow === true || this.colsFast.length === 0;
      this.group = whole ? this.slowGroup : 0;
      const label = `/proc/${this.def.path}`;
      columns.group(whole ? this.slowEvery : 1, this.partial !== null ? `${label}: ${this.fastNames(columns)}` : label);
      if (this.partial !== null) columns.group(this.slowEvery, `${label}: the other columns`);
      return null;
    } catch (err) {
      this.file?.close();
      this.file = null;
      return procFailure(this.path, err);
    }
  }

  /** Read the file into the current raw values of its columns due in this sample. False if it failed this time. */
  sample(columns: Columns, row: number): boolean {
    const file = this.file;
    if (!file || !this.full) return false;
    const tpl = this.partial !== null && columns.reading[this.slowGroup] === 0 ? this.partial : this.full;
    let n: number;
    try {
      n = file.read();
    } catch (err) {
      return this.fail(columns, procFailure(this.path, err));
    }
    this.clear(columns);
    if (match(tpl, file.buf, n, columns.curHi, columns.curLo, columns.curOk)) return true;
    // A short read, or a new layout: read it all, then re-tokenize if still different.
    try {
      n = file.readFully();
      this.clear(columns);
      if (match(this.full, file.buf, n, columns.curHi, columns.curLo, columns.curOk)) return true;
      this.relayouts++;
      this.layout(columns, row, n);
    } catch (err) {
      return this.fail(columns, procFailure(this.path, err));
    }
    this.clear(columns);
    if (match(this.full, file.buf, n, columns.curHi, columns.curLo, columns.curOk)) return true;
    return this.fail(columns, `${this.path}: layout did not parse`);
  }

  /** Have the capture thread read the file when it is due (every sample, or at the slow rate). */
  captureWith(capture: Capture): void {
    if (this.file !== null) capture.addFile(this.file, this.group === 0 ? 1 : this.slowEvery, this.bytes);
  }

  close(): void {
    this.file?.close();
    this.file = null;
  }

  /** The column names read every sample. */
  private fastNames(columns: Columns): string {
    return [...this.cols]
      .filter((c) => columns.grp[c] === 0 && columns.out[c] >= 0)
      .map((c) => columns.specs[c].name)
      .join(', ');
  }

  private layout(columns: Columns, row: number, n: number): void {
    const file = this.file as ProcFile;
    const tok = tokenize(file.buf, n);
    const named = this.def.namer(tok.lines, this.ctx, this.def.id);
    const slotToCol = new Int32Array(tok.template.slots).fill(-1);
    const slotToFast = new Int32Array(tok.template.slots).fill(-1);
    const everyOf = (name: string): number => (this.def.slow === true || !EVERY_SAMPLE.test(name) ? this.slowEvery : 1);
    // Columns of an earlier layout stay in the list, so they are cleared each
    // sample (NaN from now on) instead of keeping stale values.
    const cols = new Set<number>(this.cols);
    let slowCols = 0;
    named.slots.forEach((spec, slot) => {
      if (!spec) return;
      const every = everyOf(spec.name);
      const c = columns.ensure(every > 1 ? { ...spec, every } : spec, row);
      slotToCol[slot] = c;
      if (columns.grp[c] === 0) slotToFast[slot] = c;
      else slowCols++;
      cols.add(c);
    });
    for (const spec of named.derived) {
      // a sum is read with its members
      const every = spec.sumOf?.some((m) => everyOf(m) > 1) === true ? this.slowEvery : everyOf(spec.name);
      columns.ensure(every > 1 ? { ...spec, every } : spec, row);
    }
    this.full = bindTemplate(tok.template, slotToCol);
    const fastCols = slotToFast.filter((c) => c >= 0).length;
    this.partial = this.def.slow !== true && slowCols > 0 && fastCols > 0 && this.slowEvery > 1 ? bindTemplate(tok.template, slotToFast) : null;
    this.cols = Int32Array.from(cols);
    this.colsFast = this.cols.filter((c) => columns.grp[c] === 0);
    this.colsSlow = this.cols.filter((c) => columns.grp[c] !== 0);
  }

  /** The columns due in this sample: not read until matched. */
  private clear(columns: Columns): void {
    const ok = columns.curOk;
    const fast = this.colsFast;
    for (let i = 0; i < fast.length; i++) ok[fast[i]] = 0;
    // the slow columns are all of one rate: cleared when it is read
    const slow = this.colsSlow;
    if (slow.length > 0 && columns.reading[columns.grp[slow[0]]] === 1) for (let i = 0; i < slow.length; i++) ok[slow[i]] = 0;
  }

  private fail(columns: Columns, why: string): boolean {
    this.clear(columns);
    this.failures++;
    this.lastFailure = why;
    return false;
  }
}
