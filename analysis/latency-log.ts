import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { UserError } from '../lib/errors.ts';
import { txnLayout, TXN_MAGIC } from '../lib/records.ts';
import { FILES, writeJson } from '../lib/run-files.ts';
import { OUTCOME_INDEX } from '../lib/types.ts';
import { RecordFile } from '../lib/record-file.ts';
import { readManifest } from './read-run.ts';

// Wrapping someone else's client: its latency log (CSV, one row per
// transaction) is imported into a `sockspike probe` run directory as
// transaction records, so the normal analysis correlates its outliers with
// the probe samples. Times go onto the run's clock: CLOCK_MONOTONIC as is,
// Unix epoch through the epoch-monotonic offset run.json recorded at the
// probe's start. Format: docs/run-directory.md ("Imported latency logs").

export const IMPORTED_FILE = 'transactions.bin';

const UNIT_NS: Record<string, number> = { ns: 1, us: 1e3, ms: 1e6, s: 1e9 };
const START_COLUMNS = ['start_mono_ns', 'start_epoch_ns', 'start_epoch_us', 'start_epoch_ms', 'start_epoch_s'];
const DURATION_COLUMNS = ['duration_ns', 'duration_us', 'duration_ms', 'duration_s'];
const CONNECT_COLUMNS = ['connect_ns', 'connect_us', 'connect_ms', 'connect_s'];
const OTHER_COLUMNS = ['outcome', 'local_port'];
export const ACCEPTED_COLUMNS = [...START_COLUMNS, ...DURATION_COLUMNS, ...CONNECT_COLUMNS, ...OTHER_COLUMNS];

export interface ImportResult {
  rows: number;
  clock: string;
  /** Rows that started before the probe's t0 or after its end (kept, but no samples cover them). */
  outsideProbe: number;
}

const NUMBER = /^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/;

/** Import a CSV latency log into a probe run directory as transactions.bin; updates run.json. */
export function importLatencyLog(dir: string, file: string, format: string): ImportResult {
  if (format !== 'csv') throw new UserError(`--log-format ${format}: only csv is supported`);
  const m = readManifest(dir);
  const imported = m.files.imported as { from?: string } | undefined;
  if (m.files.transactions.length > 0 && imported === undefined)
    throw new UserError(`${dir} has transactions of sockspike's own client: --latency-log imports into a \`sockspike probe\` run directory`);
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new UserError(`--latency-log ${file}: ${(err as NodeJS.ErrnoException).code ?? 'cannot read it'}`);
  }
  const lines = text.split(/\r?\n/);
  let h = 0;
  while (h < lines.length && (lines[h].trim() === '' || lines[h].startsWith('#'))) h++;
  if (h === lines.length) throw new UserError(`--latency-log ${file}: no header line (expected e.g. start_mono_ns,duration_us)`);
  const header = lines[h].split(',').map((x) => x.trim().toLowerCase());
  const where = (line: number): string => `${file}:${line}`;
  for (const col of header)
    if (!ACCEPTED_COLUMNS.includes(col)) throw new UserError(`${where(h + 1)}: unknown column "${col}" (accepted: ${ACCEPTED_COLUMNS.join(', ')})`);
  const pick = (names: string[], what: string, required: boolean): number => {
    const found = names.filter((n) => header.includes(n));
    if (found.length > 1) throw new UserError(`${where(h + 1)}: more than one ${what} column (${found.join(', ')})`);
    if (found.length === 0 && required) throw new UserError(`${where(h + 1)}: no ${what} column (one of ${names.join(', ')})`);
    return found.length === 0 ? -1 : header.indexOf(found[0]);
  };
  const startCol = pick(START_COLUMNS, 'start time', true);
  const durCol = pick(DURATION_COLUMNS, 'duration', true);
  const connectCol = pick(CONNECT_COLUMNS, 'connect time', false);
  const outcomeCol = header.indexOf('outcome');
  const portCol = header.indexOf('local_port');
  const startName = header[startCol];
  const startUnit = startName.slice(startName.lastIndexOf('_') + 1);
  const durUnitUs = UNIT_NS[header[durCol].slice(header[durCol].lastIndexOf('_') + 1)] / 1e3;
  const connectUnitUs = connectCol < 0 ? 0 : UNIT_NS[header[connectCol].slice(header[connectCol].lastIndexOf('_') + 1)] / 1e3;

  const t0 = BigInt(m.t0Ns);
  const mono = startName === 'start_mono_ns';
  let epochAtT0 = 0n; // Unix epoch ns at t0
  let clock = 'CLOCK_MONOTONIC ns';
  if (!mono) {
    if (m.clockOffset !== undefined) {
      epochAtT0 = t0 + BigInt(m.clockOffset.realtimeMinusMonotonicNs);
      clock = `Unix epoch ${startUnit}, mapped with the offset measured at the probe's start (±${Math.ceil(m.clockOffset.uncertaintyNs / 1e3)} us)`;
    } else {
      epochAtT0 = BigInt(m.wallMsAtT0) * 1_000_000n;
      clock = `Unix epoch ${startUnit}, mapped with wallMsAtT0 (this run directory has no clockOffset: ±1 ms)`;
    }
  }
  // t0 in the log's own unit, as a number: v - base stays small, so no precision is lost
  const unitNs = UNIT_NS[startUnit];
  const baseInUnit = mono ? 0 : Number(epochAtT0 / BigInt(unitNs)) + Number(epochAtT0 % BigInt(unitNs)) / unitNs;

  const rows: { startNs: number; durUs: number; connectUs: number; outcome: number; port: number }[] = [];
  const endNs = m.endNs ?? Infinity;
  let outsideProbe = 0;
  for (let i = h + 1; i < lines.length; i++) {
    const line = lines[i];
    if (line.trim() === '' || line.startsWith('#')) continue;
    const cells = line.split(',').map((x) => x.trim());
    if (cells.length !== header.length) throw new UserError(`${where(i + 1)}: ${cells.length} fields, the header has ${header.length}`);
    const num = (col: number, what: string): number => {
      const v = cells[col];
      if (!NUMBER.test(v)) throw new UserError(`${where(i + 1)}: ${what} "${v}" is not a number`);
      return Number(v);
    };
    let startNs: number;
    if (unitNs === 1) {
      const v = cells[startCol];
      if (!/^\d+$/.test(v)) throw new UserError(`${where(i + 1)}: ${startName} "${v}" is not a whole number of nanoseconds`);
      startNs = Number(BigInt(v) - (mono ? t0 : epochAtT0));
    } else startNs = (num(startCol, startName) - baseInUnit) * unitNs;
    const durUs = num(durCol, header[durCol]) * durUnitUs;
    if (!(durUs >= 0)) throw new UserError(`${where(i + 1)}: ${header[durCol]} is negative`);
    const connectUs = connectCol < 0 ? 0 : num(connectCol, header[connectCol]) * connectUnitUs;
    if (connectCol >= 0 && !(connectUs >= 0 && connectUs <= durUs))
      throw new UserError(`${where(i + 1)}: ${header[connectCol]} must be between 0 and the duration`);
    let outcome = 0;
    if (outcomeCol >= 0) {
      const o = cells[outcomeCol];
      const k = o === '' ? 0 : OUTCOME_INDEX[o];
      if (k === undefined)
        throw new UserError(
          `${where(i + 1)}: unknown outcome "${o}" (ok, timeout, an errno name such as ECONNREFUSED, short-response, bad-response or EOTHER)`,
        );
      outcome = k;
    }
    let port = 0;
    if (portCol >= 0) {
      port = num(portCol, 'local_port');
      if (!Number.isInteger(port) || port < 0 || port > 65535) throw new UserError(`${where(i + 1)}: local_port ${cells[portCol]} is not a TCP port`);
    }
    if (startNs < 0 || startNs > endNs) outsideProbe++;
    rows.push({ startNs, durUs, connectUs, outcome, port });
  }
  if (rows.length === 0) throw new UserError(`--latency-log ${file}: no rows after the header`);
  if (outsideProbe === rows.length)
    throw new UserError(`--latency-log ${file}: none of its ${rows.length} rows falls inside this probe run (wrong clock or wrong directory?); ${clock}`);

  // One exchange: the whole transaction after connect (the log has no finer phases).
  const L = txnLayout(1);
  const f = new RecordFile(join(dir, IMPORTED_FILE), TXN_MAGIC, L.size, 1);
  rows.sort((a, b) => a.startNs + a.durUs * 1e3 - (b.startNs + b.durUs * 1e3));
  for (const r of rows) {
    const v = f.view;
    const at = f.next();
    v.setFloat64(at + L.intendedNs, r.startNs, true);
    v.setFloat32(at + L.lateUs, 0, true);
    v.setFloat32(at + L.connectUs, r.connectUs, true);
    v.setFloat32(at + L.exchangeUs, r.outcome === 0 ? r.durUs : NaN, true);
    v.setFloat32(at + L.endUs, r.durUs, true);
    v.setUint16(at + L.localPort, r.port, true);
    v.setUint8(at + L.outcome, r.outcome);
    f.commit();
  }
  f.close();

  m.files.transactions = [IMPORTED_FILE];
  m.files.imported = { from: file, format, clock, rows: rows.length, outsideProbe };
  m.config.exchanges = 1;
  const note = `transactions imported from a latency log (${file}, ${rows.length} rows, ${clock}); phases: connect${connectCol < 0 ? ' not in the log (0)' : ''}, then one exchange holding the rest`;
  m.notes = m.notes.filter((n) => !n.startsWith('transactions imported from a latency log'));
  m.notes.push(note);
  writeJson(join(dir, FILES.manifest), m);
  return { rows: rows.length, clock, outsideProbe };
}
