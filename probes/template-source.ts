import path from 'node:path';
import type { Columns } from './columns.ts';
import type { NameContext, SourceDef } from './proc-names.ts';
import { ProcFile, procFailure } from './procfile.ts';
import { bindTemplate, match, tokenize, type Template } from './template.ts';

// A system-wide /proc file sampled through a template: fast path match()
// per sample, slow path (tokenize, name, add columns) at start and whenever
// the layout changes.

export class TemplateSource {
  readonly def: SourceDef;
  readonly path: string;
  /** Layout changes seen after the first (new counters, CPUs on/offline). */
  relayouts = 0;
  /** Samples where the file could not be read or parsed. */
  failures = 0;
  lastFailure: string | null = null;
  private file: ProcFile | null = null;
  private template: Template | null = null;
  private cols = new Int32Array(0);
  private readonly ctx: NameContext;
  /** Read every Nth sample. */
  readonly every: number;
  /** Its rate group in the columns (set by open()). */
  group = 0;

  constructor(def: SourceDef, procRoot: string, ctx: NameContext, every = 1) {
    this.def = def;
    this.path = path.join(procRoot, def.path);
    this.ctx = ctx;
    this.every = every;
  }

  /** Open and lay out the file. Returns why it cannot be sampled, or null. */
  open(columns: Columns, row: number): string | null {
    try {
      this.file = new ProcFile(this.path);
      const n = this.file.readFully();
      this.layout(columns, row, n);
      if (this.cols.length === 0) return `${this.path}: nothing recognisable to sample`;
      this.group = columns.group(this.every, `/proc/${this.def.path}`);
      return null;
    } catch (err) {
      this.file?.close();
      this.file = null;
      return procFailure(this.path, err);
    }
  }

  /** Read the file into the current raw values of its columns. False if it failed this time. */
  sample(columns: Columns, row: number): boolean {
    const file = this.file;
    if (!file || !this.template) return false;
    let n: number;
    try {
      n = file.read();
    } catch (err) {
      return this.fail(columns, procFailure(this.path, err));
    }
    this.clear(columns);
    if (match(this.template, file.buf, n, columns.curHi, columns.curLo, columns.curOk)) return true;
    // A short read, or a new layout: read it all, then re-tokenize if still different.
    try {
      n = file.readFully();
      this.clear(columns);
      if (match(this.template, file.buf, n, columns.curHi, columns.curLo, columns.curOk)) return true;
      this.relayouts++;
      this.layout(columns, row, n);
    } catch (err) {
      return this.fail(columns, procFailure(this.path, err));
    }
    this.clear(columns);
    if (match(this.template, file.buf, n, columns.curHi, columns.curLo, columns.curOk)) return true;
    return this.fail(columns, `${this.path}: layout did not parse`);
  }

  close(): void {
    this.file?.close();
    this.file = null;
  }

  private layout(columns: Columns, row: number, n: number): void {
    const file = this.file as ProcFile;
    const tok = tokenize(file.buf, n);
    const named = this.def.namer(tok.lines, this.ctx, this.def.id);
    const slotToCol = new Int32Array(tok.template.slots).fill(-1);
    // Columns of an earlier layout stay in the list, so they are cleared each
    // sample (NaN from now on) instead of keeping stale values.
    const cols = new Set<number>(this.cols);
    named.slots.forEach((spec, slot) => {
      if (!spec) return;
      const c = columns.ensure(this.every > 1 ? { ...spec, every: this.every } : spec, row);
      slotToCol[slot] = c;
      cols.add(c);
    });
    for (const spec of named.derived) columns.ensure(this.every > 1 ? { ...spec, every: this.every } : spec, row);
    this.template = bindTemplate(tok.template, slotToCol);
    this.cols = Int32Array.from(cols);
  }

  private clear(columns: Columns): void {
    const ok = columns.curOk;
    const cols = this.cols;
    for (let i = 0; i < cols.length; i++) ok[cols[i]] = 0;
  }

  private fail(columns: Columns, why: string): boolean {
    this.clear(columns);
    this.failures++;
    this.lastFailure = why;
    return false;
  }
}
