// Accounting under errors: every attempted transaction ends up as ok, failed
// (by code) or timed out, whatever goes wrong: the server dies mid-run,
// nobody listens, the answer or the handshake does not come in time.
import { ENGINES, engineFlag, onEngine } from '../helpers/engines.ts';
import test from 'ava';
import { existsSync, statSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { OUTCOMES } from '../../lib/types.ts';
import {
  assertAccounting,
  descendants,
  killStillRunning,
  leftoversAfter,
  harnessProcessAlive,
  HEADER_BYTES,
  killLeftoversOnTeardown,
  leftoverProcesses,
  lines,
  readManifestFile,
  readSummaryFile,
  sockspike,
  startSockspike,
  tempDir,
  txnRecordSize,
  waitForTransactions,
  workloadEndedAfterMs,
} from '../helpers/cli.ts';
import { clientConfig, runClient } from '../helpers/client.ts';

test.serial('server killed mid-run: the run ends by itself, failed, every transaction accounted for, no process left', async (t) => {
  const dir = join(tempDir(t), 'run');
  killLeftoversOnTeardown(t, dir);
  // a long --duration: a run that ends soon after the kill ended because of it
  const cli = startSockspike(t, ['run', '--duration', '20s', '--concurrency', '2', '--out', dir], { timeout: 90_000 });
  const m0 = await waitForTransactions(dir, 100); // transactions happen before the kill
  const server = m0.processes.find((p) => p.role === 'server')!;
  t.true(harnessProcessAlive(server.pid), 'the server is running before it is killed');
  const tree = descendants(cli.pid!);
  t.teardown(() => killStillRunning(tree));
  const killedAt = Date.now();
  const killedNs = process.hrtime.bigint();
  process.kill(server.pid, 'SIGKILL');
  const r = await cli;
  const tookMs = Date.now() - killedAt;
  t.log(`ended ${tookMs} ms after the kill, exit ${r.exitCode}; stderr: ${String(r.stderr)}`);
  t.false(r.timedOut, 'the CLI had to be killed');
  // the workload stops at once; the analysis and report after it take what the machine needs
  const stoppedMs = workloadEndedAfterMs(readManifestFile(dir), killedNs);
  t.true(stoppedMs < 8000, `the workload went on for ${stoppedMs.toFixed(0)} ms after its server died (its --duration would end it ~18 s later)`);
  t.true(tookMs < 60_000, `the CLI exited ${tookMs} ms after the kill`);
  t.not(r.exitCode, 0);
  t.is(r.exitCode, 1);
  t.deepEqual(lines(r.stderr).length, 1);
  t.regex(String(r.stderr), /server exited unexpectedly/);
  t.false(String(r.stderr).includes('    at '), 'no stack trace');

  t.true(existsSync(join(dir, 'report.md')), 'report.md written');
  const m = readManifestFile(dir);
  t.is(m.status, 'failed');
  t.regex(m.stopReason ?? '', /server exited unexpectedly/);
  t.is(m.processes.find((p) => p.role === 'server')?.exit, 'SIGKILL');
  const s = readSummaryFile(dir);
  t.is(s.status, 'failed');
  assertAccounting(t, s);
  t.true(s.transactions.attempted > 0);
  t.true(s.transactions.ok > 0, 'transactions succeeded before the kill');
  t.true(s.transactions.failed > 0, `failed after the kill; errors ${JSON.stringify(s.transactions.errors)}`);
  const expected = ['ECONNREFUSED', 'ECONNRESET', 'EPIPE', 'short-response'];
  for (const code of Object.keys(s.transactions.errors)) t.true(expected.includes(code) || code === 'stopped', `unexpected error code ${code}`);
  t.true(
    (s.transactions.errors.ECONNREFUSED ?? 0) + (s.transactions.errors.ECONNRESET ?? 0) > 0,
    `a refusal or a reset among ${JSON.stringify(s.transactions.errors)}`,
  );
  // every attempted transaction is in the file, whole
  const size = statSync(join(dir, 'transactions.bin')).size;
  t.is(size, HEADER_BYTES + s.transactions.attempted * txnRecordSize(m.config.exchanges));
  t.deepEqual(leftoverProcesses(m), []);
  t.deepEqual(await leftoversAfter(tree), [], 'processes of the run still running after it ended');
});

for (const engine of ENGINES)
  test(`connection refused: nobody listens, every transaction fails with ECONNREFUSED, none lost${onEngine(engine)}`, async (t) => {
    const dir = tempDir(t);
    // a port that was free a moment ago and has no listener now
    const probe = createServer();
    await new Promise<void>((r) => probe.listen(0, '127.0.0.1', r));
    const port = (probe.address() as { port: number }).port;
    await new Promise<void>((r) => probe.close(() => r()));

    const N = 40;
    const r = await runClient(t, clientConfig({ transactions: String(N), concurrency: '2', port: String(port), engine }), dir);
    t.is(r.exit.code, 0);
    t.truthy(r.done);
    t.is(r.done!.attempted, N);
    t.is(r.done!.failed, N);
    t.is(r.done!.ok, 0);
    t.is(r.txns.n, N, 'every attempt recorded');
    t.is(r.txns.trailingBytes, 0);
    for (let i = 0; i < r.txns.n; i++) {
      t.is(OUTCOMES[r.txns.outcome[i]], 'ECONNREFUSED');
      t.true(Number.isNaN(r.txns.connectUs[i]), 'a refused connect has no connect time');
    }
    assertAccounting(t, r.summary);
    t.deepEqual(r.summary.transactions.errors, { ECONNREFUSED: N });
    t.is(r.summary.transactions.failed, N);
    t.is(r.summary.latencyUs.total.count, 0, 'failures do not count as latencies');
  });

for (const engine of ENGINES)
  test(`io timeout: a server that does not accept in time, transactions time out and are recorded as such${onEngine(engine)}`, async (t) => {
    const dir = join(tempDir(t), 'run');
    killLeftoversOnTeardown(t, dir);
    const r = await sockspike([
      'run',
      '--accept-delay',
      '400ms',
      '--io-timeout',
      '100ms',
      '--transactions',
      '5',
      ...engineFlag(engine),
      '--out',
      dir,
      '--json',
    ]);
    t.is(r.exitCode, 0, 'a run that completed exits 0 whatever its outcomes');
    const s = JSON.parse(String(r.stdout)) as ReturnType<typeof readSummaryFile>;
    t.deepEqual(s, readSummaryFile(dir));
    assertAccounting(t, s);
    t.is(s.transactions.attempted, 5);
    t.true(s.transactions.timedOut > 0, JSON.stringify(s.transactions));
    t.is(s.transactions.timedOut, 5 - s.transactions.ok - s.transactions.failed);
    // a timed-out answer: connected, then gave up after ~100 ms (loose upper bound: shared machine)
    const exp = await sockspike(['export', dir, '--format', 'ndjson']);
    const rows = lines(exp.stdout).map((l) => JSON.parse(l) as Record<string, number | string | null>);
    const timedOut = rows.filter((x) => x.outcome === 'timeout');
    t.is(timedOut.length, s.transactions.timedOut);
    for (const x of timedOut) {
      t.not(x.connect_us, null, 'the kernel completed the handshake');
      t.true((x.end_us as number) >= 95_000 && (x.end_us as number) < 1_000_000, `timed out after ${x.end_us} us`);
    }
    t.deepEqual(leftoverProcesses(readManifestFile(dir)), []);
  });

test('connect timeout: SYNs dropped by a full accept queue, recorded as timeouts without a connect time', async (t) => {
  const dir = join(tempDir(t), 'run');
  killLeftoversOnTeardown(t, dir);
  // backlog 0 holds one connection; the server accepts it only after 1.5 s, so
  // the other clients' SYNs are dropped and connect() waits past 200 ms
  const r = await sockspike([
    'run',
    '--backlog',
    '0',
    '--accept-delay',
    '1500ms',
    '--connect-timeout',
    '200ms',
    '--concurrency',
    '4',
    '--transactions',
    '8',
    '--out',
    dir,
  ]);
  t.is(r.exitCode, 0, String(r.stderr));
  const s = readSummaryFile(dir);
  assertAccounting(t, s);
  t.is(s.transactions.attempted, 8);
  t.true(s.transactions.timedOut > 0, JSON.stringify(s.transactions));
  const exp = await sockspike(['export', dir, '--format', 'ndjson']);
  const rows = lines(exp.stdout).map((l) => JSON.parse(l) as Record<string, number | string | null>);
  t.is(rows.length, 8);
  const noConnect = rows.filter((x) => x.outcome === 'timeout' && x.connect_us === null);
  t.true(noConnect.length > 0, 'some timeouts happened in connect()');
  for (const x of noConnect) t.true((x.end_us as number) >= 195_000 && (x.end_us as number) < 1_500_000, `connect gave up after ${x.end_us} us`);
});

test('timeouts are bounded: out-of-range and malformed --connect-timeout / --io-timeout are refused', async (t) => {
  const dir = tempDir(t);
  const bad = [
    ['--connect-timeout', '0'],
    ['--connect-timeout', '500us'],
    ['--connect-timeout', '301s'],
    ['--connect-timeout', '10m'],
    ['--connect-timeout', 'soon'],
    ['--io-timeout', '0'],
    ['--io-timeout', '1h'],
    ['--io-timeout', '-5ms'],
  ];
  const results = await Promise.all(bad.map((flag, i) => sockspike(['run', '--transactions', '1', ...flag, '--out', join(dir, `r${i}`)])));
  results.forEach((r, i) => {
    t.is(r.exitCode, 2, `${bad[i].join(' ')}: exit ${r.exitCode}`);
    t.is(lines(r.stderr).length, 1, `${bad[i].join(' ')}: ${String(r.stderr)}`);
    t.regex(String(r.stderr), new RegExp(bad[i][0]));
    t.false(existsSync(join(dir, `r${i}`)), 'nothing started, no run directory');
  });
  // the bounds themselves are accepted
  const ok = await sockspike(['run', '--transactions', '3', '--connect-timeout', '300s', '--io-timeout', '1ms', '--out', join(dir, 'edge')]);
  t.is(ok.exitCode, 0, String(ok.stderr));
  assertAccounting(t, readSummaryFile(join(dir, 'edge')));
});
