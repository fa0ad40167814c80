// Wrapping a user's own client: a `sockspike probe` run while the test's own
// load runs, the test's latency log (both clock kinds) imported with
// `analyze --latency-log`, and the planted slow rows found as outliers at
// the right times.
import test from 'ava';
import { writeFileSync } from 'node:fs';
import { connect, createServer, type Socket } from 'node:net';
import { join } from 'node:path';
import { readManifest, readTransactions } from '../../analysis/read-run.ts';
import { lines, readSummaryFile, sleep, sockspike, startSockspike, tempDir, waitFor, peekManifest } from '../helpers/cli.ts';

interface Row {
  monoNs: bigint;
  epochUs: number;
  durUs: number;
}

/** Connect, write 100 bytes, read the echo, close; bounded by count and time. */
async function load(port: number, maxMs: number, maxCount: number): Promise<Row[]> {
  const rows: Row[] = [];
  const until = Date.now() + maxMs;
  while (Date.now() < until && rows.length < maxCount) {
    const monoNs = process.hrtime.bigint();
    // an independent wall clock: the process's time origin plus the monotonic time since
    const epochUs = (performance.timeOrigin + performance.now()) * 1e3;
    await new Promise<void>((resolve, reject) => {
      const s = connect({ host: '127.0.0.1', port }, () => s.write(Buffer.alloc(100, 1)));
      let got = 0;
      s.on('data', (d) => {
        got += d.length;
        if (got >= 100) s.end();
      });
      s.on('close', () => resolve());
      s.on('error', reject);
    });
    rows.push({ monoNs, epochUs, durUs: Number(process.hrtime.bigint() - monoNs) / 1e3 });
    await sleep(2);
  }
  return rows;
}

test('analyze --latency-log imports a CSV on either clock and finds the planted slow rows as outliers', async (t) => {
  const base = tempDir(t);
  const dir = join(base, 'probe');
  const socks = new Set<Socket>();
  const srv = createServer((s) => {
    socks.add(s);
    s.on('close', () => socks.delete(s));
    s.on('data', (d) => s.write(d));
    s.on('error', () => {});
  });
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  t.teardown(() => {
    for (const s of socks) s.destroy();
    srv.close();
  });
  const port = (srv.address() as { port: number }).port;
  const probe = startSockspike(t, ['probe', '--out', dir, '--duration', '4s', '--port', String(port), '--no-progress']);
  await waitFor('the probe to start', () => peekManifest(dir)?.clockOffset !== undefined, 30_000);
  await sleep(500);
  const rows = await load(port, 2000, 2000);
  const r = await probe;
  t.is(r.exitCode, 0, String(r.stderr));
  t.true(rows.length > 50, `${rows.length} transactions of our own client`);
  // plant slow ones: 4 rows, evenly spread, 300 ms each
  const planted = [0.2, 0.4, 0.6, 0.8].map((f) => Math.floor(f * rows.length));
  for (const i of planted) rows[i].durUs = 300_000;

  const mono = join(base, 'mono.csv');
  writeFileSync(mono, 'start_mono_ns,duration_us,outcome\n' + rows.map((x) => `${x.monoNs},${x.durUs.toFixed(1)},ok`).join('\n') + '\n');
  const a = await sockspike(['analyze', dir, '--latency-log', mono, '--log-format', 'csv', '--outlier', '100ms', '--json']);
  t.is(a.exitCode, 0, String(a.stderr));
  const s = readSummaryFile(dir);
  t.is(s.transactions.attempted, rows.length);
  t.is(s.transactions.ok, rows.length);
  t.is(s.outliers.count, planted.length, 'exactly the planted rows are outliers');
  const m = readManifest(dir);
  const t0 = BigInt(m.t0Ns);
  const c = readTransactions(dir, m);
  const slowStarts = [...Array(c.n).keys()]
    .filter((i) => c.endUs[i] > 100_000)
    .map((i) => c.intendedNs[i])
    .sort((x, y) => x - y);
  const plantedStarts = planted.map((i) => Number(rows[i].monoNs - t0));
  t.deepEqual(slowStarts, plantedStarts, 'at the times they started, on the run clock');
  t.true(s.systemState !== undefined, 'probe samples around the outliers were compared');

  // the same log on the Unix epoch (microseconds, with decimals)
  const epoch = join(base, 'epoch.csv');
  writeFileSync(epoch, 'duration_ms,start_epoch_us\n' + rows.map((x) => `${(x.durUs / 1e3).toFixed(4)},${x.epochUs.toFixed(3)}`).join('\n') + '\n');
  const b = await sockspike(['analyze', dir, '--latency-log', epoch, '--log-format', 'csv', '--outlier', '100ms']);
  t.is(b.exitCode, 0, String(b.stderr));
  t.regex(String(b.stdout), /imported \d+ transactions \(Unix epoch us, mapped with the offset measured at the probe's start/);
  t.is(readSummaryFile(dir).outliers.count, planted.length);
  const c2 = readTransactions(dir, readManifest(dir));
  const slow2 = [...Array(c2.n).keys()]
    .filter((i) => c2.endUs[i] > 100_000)
    .map((i) => c2.intendedNs[i])
    .sort((x, y) => x - y);
  t.is(slow2.length, planted.length);
  for (let k = 0; k < planted.length; k++)
    t.true(Math.abs(slow2[k] - plantedStarts[k]) < 2e6, `epoch row ${k} lands ${(slow2[k] - plantedStarts[k]) / 1e3} us from its monotonic time`);
  t.log(`epoch vs monotonic: ${slow2.map((v, k) => ((v - plantedStarts[k]) / 1e3).toFixed(1)).join(', ')} us`);

  // a malformed row: one line with the line number
  const bad = join(base, 'bad.csv');
  writeFileSync(bad, 'start_mono_ns,duration_us\n# comment\n' + `${rows[0].monoNs},12\n${rows[1].monoNs},abc\n`);
  const e = await sockspike(['analyze', dir, '--latency-log', bad, '--log-format', 'csv']);
  t.is(e.exitCode, 2);
  t.deepEqual(lines(e.stderr), [`sockspike: ${bad}:4: duration_us "abc" is not a number`]);
  const unknown = join(base, 'unknown.csv');
  writeFileSync(unknown, 'start,duration_us\n1,2\n');
  const u = await sockspike(['analyze', dir, '--latency-log', unknown, '--log-format', 'csv']);
  t.is(u.exitCode, 2);
  t.regex(lines(u.stderr)[0], /unknown\.csv:1: unknown column "start" \(accepted: start_mono_ns, /);
  t.is(lines(u.stderr).length, 1);
});
