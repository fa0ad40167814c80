import { UserError } from '../lib/errors.ts';
import { counterDelta, TWO32 } from './delta.ts';
import { MAX_COLUMNS, type ColumnKind, type ProbeColumn } from './probe-files.ts';

// Every number the sampler tracks is a column with a fixed index: raw values
// (current and previous, split hi/lo) live in typed arrays indexed by it, so
// a sample writes numbers into preallocated slots and computes outputs in
// one loop, with no per-sample objects.
//
// Read rates: every column belongs to a rate group, read every Nth sample
// (N = 1: every sample). Before each sample plan() says which groups are
// read; a column of a group not read keeps its last raw values (its previous
// ones are not rotated away), is "not read" in that row (nothing written),
// and its next delta covers the whole span since its group was last read. A
// group with N > 1 has a span column, probe.everyN.dt_ns: in the rows where
// the group is read, the ns its counters and fractions cover.

export interface ColumnSpec {
  name: string;
  /** constant: read once, kept in meta.json, not sampled into rows. */
  kind: ColumnKind | 'constant';
  unit: string;
  source: string;
  /** Counter width in bits (default 64). */
  width?: 32 | 64;
  /** fraction: ns per raw unit, divided by the CPUs the value covers. */
  scale?: number;
  /** Raw material only (for sums): never written. */
  hidden?: boolean;
  /** A counter that is the sum of these columns' deltas (per-CPU to total). */
  sumOf?: string[];
  /** Read every Nth sample (default 1: every sample). */
  every?: number;
}

/** A rate group: columns read every Nth sample. */
export interface RateGroup {
  every: number;
  /** Time of the group's last read, ns since t0. */
  lastT: number;
  /** Column holding the span a read covers (groups with every > 1), else -1. */
  spanCol: number;
  /** What is read at this rate, for meta.json (e.g. "/proc/net/snmp", "proc.client stat"). */
  labels: string[];
}

const K_COUNTER = 1;
const K_GAUGE = 2;
const K_FRACTION = 3;
const K_CONSTANT = 4;
const K_SUM = 5;
const KIND_CODE = { counter: K_COUNTER, gauge: K_GAUGE, fraction: K_FRACTION, constant: K_CONSTANT } as const;

interface Sum {
  col: number;
  members: Int32Array;
}

export class Columns {
  count = 0;
  readonly specs: ColumnSpec[] = [];
  readonly index = new Map<string, number>();
  /** Output columns, in file order (column number in samples.bin = position here). */
  readonly outputs: ProbeColumn[] = [];
  /** Set whenever outputs change, so the meta file gets rewritten. */
  dirty = false;

  kind: Uint8Array = new Uint8Array(0);
  width: Uint8Array = new Uint8Array(0);
  scale: Float64Array = new Float64Array(0);
  /** Output column number, or -1 (hidden, constant). */
  out: Int32Array = new Int32Array(0);
  /** 0 once retired (process gone): no longer written. */
  live: Uint8Array = new Uint8Array(0);
  curHi: Float64Array = new Float64Array(0);
  curLo: Float64Array = new Float64Array(0);
  curOk: Uint8Array = new Uint8Array(0);
  prevHi: Float64Array = new Float64Array(0);
  prevLo: Float64Array = new Float64Array(0);
  prevOk: Uint8Array = new Uint8Array(0);
  /** Output value of the last compute(). */
  value: Float64Array = new Float64Array(0);
  /** Rate group of each column. */
  grp: Uint8Array = new Uint8Array(0);
  /** Rate groups; group 0 is read every sample. */
  readonly groups: RateGroup[] = [{ every: 1, lastT: 0, spanCol: -1, labels: [] }];
  /** Per group: 1 when read in the current sample (plan()); all 1 until plan() is called. */
  reading: Uint8Array = new Uint8Array(256).fill(1);
  private sums: Sum[] = [];
  private members: Int32Array[] | null = null;

  constructor(capacity = 512) {
    this.grow(capacity);
  }

  /** The rate group of columns read every Nth sample (created with its span column if new); label: what is read at that rate. */
  group(every: number, label?: string): number {
    const n = Math.max(1, Math.round(every));
    let g = this.groups.findIndex((x) => x.every === n);
    if (g < 0) {
      if (this.groups.length >= this.reading.length) throw new Error('probes: too many rate groups');
      g = this.groups.length;
      this.groups.push({ every: n, lastT: this.groups[0].lastT, spanCol: -1, labels: [] });
      this.members = null;
      this.groups[g].spanCol = this.ensure({ name: `probe.every${n}.dt_ns`, kind: 'gauge', unit: 'ns', source: 'probe', every: n }, 0);
    }
    if (label !== undefined && !this.groups[g].labels.includes(label)) this.groups[g].labels.push(label);
    return g;
  }

  /** Which groups the sample of this row reads: those whose turn it is (row + 1 a multiple of N), or all. */
  plan(row: number, all = false): void {
    const gs = this.groups;
    for (let g = 0; g < gs.length; g++) this.reading[g] = all || (row + 1) % gs[g].every === 0 ? 1 : 0;
  }

  /** Is column c read in the current sample? */
  isRead(c: number): boolean {
    return this.reading[this.grp[c]] === 1;
  }

  /** The column for spec (created if new, starting at row), its index. */
  ensure(spec: ColumnSpec, row: number): number {
    const have = this.index.get(spec.name);
    if (have !== undefined) {
      if (spec.sumOf) this.setSum(have, spec.sumOf);
      return have;
    }
    if (this.count === this.kind.length) this.grow(this.count * 2);
    const c = this.count++;
    this.members = null;
    this.specs.push(spec);
    this.index.set(spec.name, c);
    this.kind[c] = spec.sumOf ? K_SUM : KIND_CODE[spec.kind];
    this.width[c] = spec.width ?? 64;
    this.scale[c] = spec.scale ?? 1;
    this.live[c] = 1;
    this.out[c] = -1;
    this.grp[c] = spec.every !== undefined && spec.every > 1 ? this.group(spec.every) : 0;
    if (!spec.hidden && spec.kind !== 'constant') {
      if (this.outputs.length >= MAX_COLUMNS) throw new UserError(`probes: more than ${MAX_COLUMNS} columns`);
      this.out[c] = this.outputs.length;
      this.outputs.push({
        name: spec.name,
        kind: spec.kind as ColumnKind,
        unit: spec.unit,
        source: spec.source,
        fromRow: row,
        toRow: null,
        every: spec.every !== undefined && spec.every > 1 ? Math.round(spec.every) : 1,
      });
      this.dirty = true;
    }
    if (spec.sumOf) this.setSum(c, spec.sumOf);
    return c;
  }

  /** Stop writing a column from row on (its process exited). */
  retire(c: number, row: number): void {
    if (!this.live[c]) return;
    this.live[c] = 0;
    this.curOk[c] = 0;
    const o = this.out[c];
    if (o >= 0) {
      this.outputs[o].toRow = row;
      this.dirty = true;
    }
  }

  /** Value of a raw column (gauges and constants). */
  raw(c: number): number {
    return this.curOk[c] ? this.curHi[c] * TWO32 + this.curLo[c] : NaN;
  }

  /** Set a raw value directly (values that do not come from a /proc file). */
  set(c: number, v: number): void {
    this.curHi[c] = 0;
    this.curLo[c] = v;
    this.curOk[c] = 1;
  }

  /**
   * Outputs of one sample from current and previous raw values: dtNs the
   * interval since the last sample, tNs the sample's time (for the spans of
   * groups read every Nth sample). Columns not read in this sample are left.
   */
  compute(dtNs: number, tNs = NaN): void {
    const kind = this.kind;
    const curOk = this.curOk;
    const prevOk = this.prevOk;
    const value = this.value;
    const grp = this.grp;
    const reading = this.reading;
    const gs = this.groups;
    const members = this.groupMembers();
    for (let g = 1; g < gs.length; g++) if (reading[g] === 1) this.set(gs[g].spanCol, tNs - gs[g].lastT);
    // only the columns read in this sample: on most samples a few dozen of several hundred
    for (let g = 0; g < gs.length; g++) {
      if (reading[g] === 0) continue;
      const cols = members[g];
      const span = g === 0 ? dtNs : tNs - gs[g].lastT;
      for (let i = 0; i < cols.length; i++) {
        const c = cols[i];
        const k = kind[c];
        if (k === K_GAUGE) {
          value[c] = curOk[c] ? this.curHi[c] * TWO32 + this.curLo[c] : NaN;
        } else if (k === K_COUNTER || k === K_FRACTION) {
          if (curOk[c] && prevOk[c]) {
            const d = counterDelta(this.width[c], this.curHi[c], this.curLo[c], this.prevHi[c], this.prevLo[c]);
            value[c] = k === K_FRACTION ? (d * this.scale[c]) / span : d;
          } else {
            value[c] = NaN;
          }
        }
      }
    }
    // Sums skip members without a value (an offline CPU); NaN only if all lack one.
    for (let i = 0; i < this.sums.length; i++) {
      const s = this.sums[i];
      if (reading[grp[s.col]] === 0) continue;
      let total = 0;
      let any = false;
      for (let j = 0; j < s.members.length; j++) {
        const v = value[s.members[j]];
        if (v === v) {
          total += v;
          any = true;
        }
      }
      value[s.col] = any ? total : NaN;
    }
  }

  /**
   * Current values become the previous ones, for the groups read in this
   * sample (tNs: its time); columns of the others keep their last read.
   */
  rotate(tNs = NaN): void {
    const reading = this.reading;
    const gs = this.groups;
    const members = this.groupMembers();
    const { curHi, curLo, curOk, prevHi, prevLo, prevOk } = this;
    for (let g = 0; g < gs.length; g++) {
      if (reading[g] === 0) continue;
      gs[g].lastT = tNs;
      const cols = members[g];
      for (let i = 0; i < cols.length; i++) {
        const c = cols[i];
        prevHi[c] = curHi[c];
        prevLo[c] = curLo[c];
        prevOk[c] = curOk[c];
      }
    }
  }

  /** The columns of each rate group, in column order (rebuilt after columns are added). */
  groupMembers(): Int32Array[] {
    if (this.members === null) {
      const lists: number[][] = this.groups.map(() => []);
      for (let c = 0; c < this.count; c++) lists[this.grp[c]].push(c);
      this.members = lists.map((l) => Int32Array.from(l));
    }
    return this.members;
  }

  private setSum(c: number, names: string[]): void {
    const members = Int32Array.from(names.map((m) => this.index.get(m) ?? -1).filter((i) => i >= 0));
    const existing = this.sums.find((s) => s.col === c);
    if (existing) existing.members = members;
    else this.sums.push({ col: c, members });
  }

  private grow(capacity: number): void {
    const f64 = (a: Float64Array): Float64Array => {
      const b = new Float64Array(capacity);
      b.set(a);
      return b;
    };
    const u8 = (a: Uint8Array): Uint8Array => {
      const b = new Uint8Array(capacity);
      b.set(a);
      return b;
    };
    this.kind = u8(this.kind);
    this.grp = u8(this.grp);
    this.width = u8(this.width);
    this.live = u8(this.live);
    this.curOk = u8(this.curOk);
    this.prevOk = u8(this.prevOk);
    this.scale = f64(this.scale);
    this.curHi = f64(this.curHi);
    this.curLo = f64(this.curLo);
    this.prevHi = f64(this.prevHi);
    this.prevLo = f64(this.prevLo);
    this.value = f64(this.value);
    const out = new Int32Array(capacity);
    out.set(this.out);
    this.out = out;
  }
}
