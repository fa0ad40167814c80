import type { Writable } from 'node:stream';
import { OUTCOMES, type RunConfig } from '../lib/types.ts';
import { TCP_STATES } from '../lib/tcp-states.ts';
import { TXN_FLAG_REUSED, TXN_FLAG_TCPINFO, SRV_FLAG_RESET } from '../lib/records.ts';
import type { ServerColumns, TxnColumns } from '../analysis/read-run.ts';
import { txnStartNs } from '../analysis/summarize.ts';
import { warmupOf } from '../analysis/warmup.ts';

// Records as CSV or NDJSON for other tools: one row per record, every
// recorded field, times in ns since t0 (run.json t0Ns) or in us as named
// (docs/exports.md has every column's meaning and unit). Numbers are clean:
// ns and counts are integers, us have one decimal (the records are f32 us:
// 0.06 us of precision at one second, so a second decimal would be noise),
// TCP states are names.

export type ExportFormat = 'csv' | 'ndjson';
type Cell = number | string | boolean | null;

export function transactionColumns(exchanges: number): string[] {
  return [
    'seq',
    'intended_ns',
    'start_ns',
    'late_us',
    'connect_us',
    ...Array.from({ length: exchanges }, (_, e) => `exchange${e + 1}_us`),
    'end_us',
    'total_us',
    ...Array.from({ length: exchanges }, (_, e) => `exchange${e + 1}_took_us`),
    'close_took_us',
    'outcome',
    'warmup',
    'local_port',
    'worker',
    'reused',
    'bytes_out',
    'bytes_in',
    'tcpi_valid',
    'tcpi_state',
    'tcpi_retransmits',
    'tcpi_total_retrans',
    'tcpi_rtt_us',
    'tcpi_rto_us',
  ];
}

/** Microseconds to one decimal (null: not reached). */
export const us1 = (v: number): number | null => (Number.isFinite(v) ? Math.round(v * 10) / 10 : null);
/** Nanoseconds (or any count) as an integer (null: none). */
export const int = (v: number): number | null => (Number.isFinite(v) ? Math.round(v) : null);

function transactionRow(c: TxnColumns, i: number, warm: Uint8Array | null): Cell[] {
  // each phase's own duration, as the report shows them (the *_us columns before are times since the start)
  let prev = c.connectUs[i];
  const took = c.exchangeUs.map((a) => {
    const d = a[i] - prev;
    prev = a[i];
    return us1(d);
  });
  const valid = (c.flags[i] & TXN_FLAG_TCPINFO) !== 0;
  return [
    i,
    int(c.intendedNs[i]),
    int(txnStartNs(c, i)),
    us1(c.lateUs[i]),
    us1(c.connectUs[i]),
    ...c.exchangeUs.map((a) => us1(a[i])),
    us1(c.endUs[i]),
    us1(c.lateUs[i] + c.endUs[i]),
    ...took,
    us1(c.endUs[i] - prev),
    OUTCOMES[c.outcome[i]] ?? 'EOTHER',
    warm !== null && warm[i] === 1,
    c.localPort[i],
    c.worker[i],
    (c.flags[i] & TXN_FLAG_REUSED) !== 0,
    c.bytesOut[i],
    c.bytesIn[i],
    valid,
    valid ? (TCP_STATES[c.tcpiState[i]] ?? String(c.tcpiState[i])) : null,
    c.tcpiRetransmits[i],
    c.tcpiTotalRetrans[i],
    c.tcpiRttUs[i],
    c.tcpiRtoUs[i],
  ];
}

export const SERVER_COLUMNS = ['accept_ns', 'close_us', 'client_port', 'outcome', 'reset', 'bytes_in', 'bytes_out'];

function serverRow(s: ServerColumns, i: number): Cell[] {
  return [
    int(s.acceptNs[i]),
    us1(s.closeUs[i]),
    s.clientPort[i],
    OUTCOMES[s.outcome[i]] ?? 'EOTHER',
    (s.flags[i] & SRV_FLAG_RESET) !== 0,
    s.bytesIn[i],
    s.bytesOut[i],
  ];
}

const csvCell = (v: Cell): string =>
  v === null
    ? ''
    : typeof v === 'string' && /[",\n]/.test(v)
      ? `"${v.replace(/"/g, '""')}"`
      : typeof v === 'number' && !Number.isInteger(v)
        ? v.toFixed(1)
        : String(v);

/** Write rows in chunks, honouring backpressure, so a million rows stream in bounded memory. */
async function writeRows(out: Writable, format: ExportFormat, names: string[], n: number, rowAt: (i: number) => Cell[]): Promise<void> {
  let chunk = format === 'csv' ? names.join(',') + '\n' : '';
  for (let i = 0; i < n; i++) {
    const r = rowAt(i);
    if (format === 'csv') chunk += r.map(csvCell).join(',') + '\n';
    else {
      const o: Record<string, Cell> = {};
      for (let k = 0; k < names.length; k++) o[names[k]] = r[k];
      chunk += JSON.stringify(o) + '\n';
    }
    if (chunk.length > 1 << 16) {
      if (!out.write(chunk)) await new Promise((r) => out.once('drain', r));
      chunk = '';
    }
  }
  if (chunk.length > 0 && !out.write(chunk)) await new Promise((r) => out.once('drain', r));
}

/** `config`: the run's, for which transactions were warm-up (analysis/warmup.ts); without it the column is false throughout. */
export async function exportTransactions(out: Writable, format: ExportFormat, c: TxnColumns, config?: Pick<RunConfig, 'warmupNs'>): Promise<void> {
  const warm = config === undefined ? null : warmupOf(c, config).mask;
  await writeRows(out, format, transactionColumns(c.exchanges), c.n, (i) => transactionRow(c, i, warm));
}

export async function exportServer(out: Writable, format: ExportFormat, s: ServerColumns): Promise<void> {
  await writeRows(out, format, SERVER_COLUMNS, s.n, (i) => serverRow(s, i));
}
