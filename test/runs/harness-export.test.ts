// Export round trip: one real run, exported as NDJSON and as CSV, gives the
// same rows; the rows agree with summary.json; server rows join to
// transactions by client port; --output writes a file.
import test from 'ava';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import type { Summary } from '../../lib/types.ts';
import { assertAccounting, leftoverProcesses, lines, readManifestFile, readSummaryFile, sockspike, tempDir } from '../helpers/cli.ts';

type Cell = number | string | boolean | null;
type Row = Record<string, Cell>;

const N = 300;
let dir = '';
let summary: Summary;

test.before(async (t) => {
  // a run shared by the tests of this file; its temp dir goes in test.after.always
  dir = join(mkdtempSync(join(tmpdir(), 'sockspike-test-')), 'run');
  const r = await sockspike(['run', '--transactions', String(N), '--concurrency', '2', '--out', dir]);
  if (r.exitCode !== 0) throw new Error(`run failed (${r.exitCode}): ${String(r.stderr)}`);
  summary = readSummaryFile(dir);
  const left = leftoverProcesses(readManifestFile(dir));
  if (left.length > 0) throw new Error(`processes left after the run: ${JSON.stringify(left)}`);
  t.log(`run: ${JSON.stringify(summary.transactions)}`);
});

test.after.always(() => {
  if (dir === '') return;
  rmSync(dirname(dir), { recursive: true, force: true });
});

const parseNdjson = (text: string): Row[] => lines(text).map((l) => JSON.parse(l) as Row);

/** CSV as written by reports/export.ts (no quoted cells for these columns). */
function parseCsv(text: string): { header: string[]; rows: string[][] } {
  const [head, ...rest] = lines(text);
  return { header: head.split(','), rows: rest.map((l) => l.split(',')) };
}

/** One CSV cell against the NDJSON value of the same field. */
function sameCell(csv: string, v: Cell): boolean {
  if (v === null) return csv === '';
  if (typeof v === 'boolean') return csv === String(v);
  if (typeof v === 'number') return csv !== '' && Number(csv) === v;
  return csv === v;
}

test('transactions: NDJSON and CSV have one row per transaction with the same values', async (t) => {
  const [nd, csv] = await Promise.all([
    sockspike(['export', dir, '--what', 'transactions', '--format', 'ndjson']),
    sockspike(['export', dir, '--what', 'transactions', '--format', 'csv']),
  ]);
  t.is(nd.exitCode, 0, String(nd.stderr));
  t.is(csv.exitCode, 0, String(csv.stderr));
  const rows = parseNdjson(String(nd.stdout));
  const table = parseCsv(String(csv.stdout));
  t.is(rows.length, N);
  t.is(table.rows.length, N);
  t.deepEqual(table.header, Object.keys(rows[0]), 'same columns, same order');
  for (const col of [
    'seq',
    'intended_ns',
    'start_ns',
    'late_us',
    'connect_us',
    'exchange1_us',
    'exchange2_us',
    'end_us',
    'total_us',
    'outcome',
    'local_port',
    'worker',
    'bytes_out',
    'bytes_in',
  ])
    t.true(table.header.includes(col), `column ${col}`);
  let mismatches = 0;
  for (let i = 0; i < N; i++) {
    const r = table.rows[i];
    t.is(r.length, table.header.length);
    table.header.forEach((h, k) => {
      if (!sameCell(r[k], rows[i][h])) {
        mismatches++;
        if (mismatches < 5) t.log(`row ${i} ${h}: csv "${r[k]}" vs ndjson ${JSON.stringify(rows[i][h])}`);
      }
    });
  }
  t.is(mismatches, 0);
  // values are real: distinct ports, both workers, whole bytes, phases in order
  t.deepEqual(
    rows.map((r) => r.seq),
    Array.from({ length: N }, (_, i) => i),
  );
  t.is(new Set(rows.map((r) => r.local_port)).size, N, 'a new connection (port) per transaction');
  t.deepEqual([...new Set(rows.map((r) => r.worker))].sort(), [0, 1]);
  for (const r of rows.filter((x) => x.outcome === 'ok')) {
    t.is(r.bytes_out, 6000);
    t.is(r.bytes_in, 6000);
    const [c, e1, e2, end] = [r.connect_us, r.exchange1_us, r.exchange2_us, r.end_us] as number[];
    t.true(c >= 0 && c <= e1 && e1 <= e2 && e2 <= end, `phases out of order: ${c} ${e1} ${e2} ${end}`);
  }
});

test('transactions: counts by outcome equal summary.json', async (t) => {
  const nd = await sockspike(['export', dir, '--format', 'ndjson']);
  const rows = parseNdjson(String(nd.stdout));
  const counts: Record<string, number> = {};
  for (const r of rows) counts[r.outcome as string] = (counts[r.outcome as string] ?? 0) + 1;
  assertAccounting(t, summary);
  t.is(rows.length, summary.transactions.attempted);
  t.is(counts.ok ?? 0, summary.transactions.ok);
  t.is(counts.timeout ?? 0, summary.transactions.timedOut);
  const { ok: _ok, ...errors } = counts;
  t.deepEqual(errors, summary.transactions.errors);
  // warm-up transactions are counted but kept out of the latencies (the export marks them)
  const warm = rows.filter((r) => r.warmup === true || r.warmup === 'true').length;
  t.is(summary.warmup?.transactions, warm);
  t.is(summary.latencyUs.total.count, summary.transactions.ok - warm);
  const maxTotal = Math.max(...rows.filter((r) => r.outcome === 'ok' && !(r.warmup === true || r.warmup === 'true')).map((r) => r.total_us as number));
  // the histogram keeps 3 significant digits
  t.true(Math.abs(summary.latencyUs.total.max - maxTotal) <= Math.max(2, maxTotal * 0.002), `max ${summary.latencyUs.total.max} vs ${maxTotal}`);
});

test('server: one CSV row per connection, each joined to a transaction by client port', async (t) => {
  const [csv, nd, txn] = await Promise.all([
    sockspike(['export', dir, '--what', 'server', '--format', 'csv']),
    sockspike(['export', dir, '--what', 'server', '--format', 'ndjson']),
    sockspike(['export', dir, '--what', 'transactions', '--format', 'ndjson']),
  ]);
  t.is(csv.exitCode, 0, String(csv.stderr));
  const table = parseCsv(String(csv.stdout));
  t.deepEqual(table.header, ['accept_ns', 'close_us', 'client_port', 'outcome', 'reset', 'bytes_in', 'bytes_out']);
  t.is(table.rows.length, summary.server!.connections);
  t.is(table.rows.length, N, 'client-fin: one connection per transaction');
  const serverRows = parseNdjson(String(nd.stdout));
  t.is(serverRows.length, table.rows.length);
  table.rows.forEach((r, i) => table.header.forEach((h, k) => t.true(sameCell(r[k], serverRows[i][h]), `server row ${i} ${h}`)));
  const ports = new Map(parseNdjson(String(txn.stdout)).map((r) => [r.local_port as number, r]));
  const p = table.header.indexOf('client_port');
  let joined = 0;
  for (const r of table.rows) {
    const x = ports.get(Number(r[p]));
    if (x !== undefined) joined++;
    else t.log(`server connection from port ${r[p]} has no transaction`);
  }
  t.is(joined, table.rows.length);
  for (const r of serverRows) {
    t.is(r.outcome, 'ok');
    t.is(r.bytes_in, 6000);
    t.is(r.bytes_out, 6000);
    t.is(r.reset, false);
  }
});

test('--output writes the export to a file, identical to stdout', async (t) => {
  const out = join(tempDir(t), 'txns.csv');
  const [toFile, toStdout] = await Promise.all([sockspike(['export', dir, '--format', 'csv', '--output', out]), sockspike(['export', dir, '--format', 'csv'])]);
  t.is(toFile.exitCode, 0, String(toFile.stderr));
  t.is(String(toFile.stdout), '', 'nothing on stdout');
  const text = readFileSync(out, 'utf8');
  t.is(lines(text).length, N + 1);
  t.is(text, String(toStdout.stdout) + (String(toStdout.stdout).endsWith('\n') ? '' : '\n'));
});
