import { once } from 'node:events';
import type { Writable } from 'node:stream';
import { UserError } from '../lib/errors.ts';
import { readProbes } from './read.ts';

// `sockspike export DIR --what probes --format csv|ndjson`: every sample as
// one line, t and dt (ns since t0) then every column by name, as read. NaN
// (no value: before a column existed, after its process ended, a counter's
// first sample, a row where a column read every Nth sample was not read) is
// an empty CSV cell and null in NDJSON. A column read every Nth sample holds
// in the rows where it was read its delta over the span in the column
// probe.everyN.dt_ns of the same row (not the row's dt_ns).

export type ProbeExportFormat = 'csv' | 'ndjson';

export interface ProbeExportOptions {
  format: ProbeExportFormat;
  /** Only columns whose name matches (e.g. /^Tcp/); default all. */
  columns?: RegExp;
}

const csvCell = (s: string): string => (/[",\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s);

/** Write a run's probe samples to out; resolves when written (respecting back-pressure). Returns the row count. */
export async function exportProbes(runDir: string, out: Writable, opts: ProbeExportOptions): Promise<number> {
  if (opts.format !== 'csv' && opts.format !== 'ndjson') throw new UserError(`--format ${String(opts.format)}: use csv or ndjson`);
  const data = readProbes(runDir);
  const cols = data.columns.filter((c) => !opts.columns || opts.columns.test(c.name));
  const values = cols.map((c) => data.raw(c.name) as Float64Array);
  const names = cols.map((c) => c.name);
  const write = async (s: string): Promise<void> => {
    if (!out.write(s)) await once(out, 'drain');
  };
  if (opts.format === 'csv') await write(['t_ns', 'dt_ns', ...names].map(csvCell).join(',') + '\n');
  let chunk = '';
  for (let r = 0; r < data.rows; r++) {
    if (opts.format === 'csv') {
      let line = `${data.t[r]},${data.dt[r]}`;
      for (let c = 0; c < values.length; c++) {
        const v = values[c][r];
        line += v === v ? `,${v}` : ',';
      }
      chunk += line + '\n';
    } else {
      const obj: Record<string, number | null> = { t_ns: data.t[r], dt_ns: data.dt[r] };
      for (let c = 0; c < values.length; c++) {
        const v = values[c][r];
        obj[names[c]] = v === v ? v : null;
      }
      chunk += JSON.stringify(obj) + '\n';
    }
    if (chunk.length > 1 << 16) {
      await write(chunk);
      chunk = '';
    }
  }
  if (chunk) await write(chunk);
  return data.rows;
}
