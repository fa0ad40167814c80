// Ctrl-C (SIGINT) and SIGTERM mid-run: the run stops within a few seconds,
// flushes every transaction, writes summary.json and report.md, says it was
// interrupted, and leaves no child process behind.
import test, { type ExecutionContext } from 'ava';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { createServer, type Socket } from 'node:net';
import { join } from 'node:path';
import { OUTCOMES } from '../../lib/types.ts';
import {
  assertAccounting,
  descendants,
  killStillRunning,
  leftoversAfter,
  HEADER_BYTES,
  killLeftoversOnTeardown,
  leftoverProcesses,
  readManifestFile,
  readSummaryFile,
  sleep,
  startSockspike,
  tempDir,
  txnRecordSize,
  waitFor,
  waitForTransactions,
  workloadEndedAfterMs,
  peekManifest,
} from '../helpers/cli.ts';
import { clientConfig, runClient } from '../helpers/client.ts';
import { ENGINES, engineFlag, onEngine } from '../helpers/engines.ts';
import type { EngineKind } from '../../harness/engine.ts';
import { formatCount } from '../../lib/format.ts';

async function interrupt(t: ExecutionContext, signal: 'SIGINT' | 'SIGTERM', codes: number[], engine: EngineKind = ENGINES[0]): Promise<void> {
  const dir = join(tempDir(t), 'run');
  killLeftoversOnTeardown(t, dir);
  // non-detached, and no SIGKILL from execa after the signal: the CLI must end by itself
  const cli = startSockspike(t, ['run', '--duration', '30s', ...engineFlag(engine), '--out', dir], { timeout: 90_000, forceKillAfterDelay: false });
  await waitForTransactions(dir, 100);
  await sleep(1000);
  const running = readManifestFile(dir);
  t.is(running.status, 'running');
  // the whole process tree of the run (server, client, probes), to check afterwards
  const tree = descendants(cli.pid!);
  t.teardown(() => killStillRunning(tree));
  for (const p of running.processes)
    t.true(
      tree.some((x) => x.pid === p.pid),
      `${p.role} ${p.pid} is a descendant of the CLI`,
    );
  const sentAt = Date.now();
  const sentNs = process.hrtime.bigint(); // CLOCK_MONOTONIC, as the run's t0Ns
  t.true(cli.kill(signal), `${signal} delivered to the CLI (pid ${cli.pid})`);
  const r = await cli;
  const tookMs = Date.now() - sentAt;
  t.log(`${signal}: exit ${r.exitCode} after ${tookMs} ms; stdout: ${String(r.stdout).trim()}`);
  t.false(r.timedOut, 'the CLI did not stop and was killed by the test timeout');
  // The workload stops within seconds (in-flight transactions get a 2 s
  // grace); the analysis and report after it take what the machine needs.
  const stoppedMs = workloadEndedAfterMs(readManifestFile(dir), sentNs);
  t.true(stoppedMs < 5000, `the workload's last transaction ended ${stoppedMs.toFixed(0)} ms after the signal`);
  t.true(tookMs < 60_000, `the CLI exited ${tookMs} ms after the signal`);
  t.true(codes.includes(r.exitCode ?? -1), `exit code ${r.exitCode} (signal ${r.signal ?? 'none'}), expected one of ${codes}`);
  t.false(String(r.stderr).includes('    at '), 'no stack trace');

  t.true(existsSync(join(dir, 'report.md')), 'report.md written');
  t.true(existsSync(join(dir, 'summary.json')), 'summary.json written');
  const m = readManifestFile(dir);
  t.is(m.status, 'interrupted');
  t.regex(m.stopReason ?? '', new RegExp(signal));
  const s = readSummaryFile(dir);
  t.is(s.status, 'interrupted');
  assertAccounting(t, s);
  t.true(s.transactions.attempted > 0);
  t.true(s.transactions.ok > 0);
  // (the client process needs a moment to load before its first transaction)
  t.true(s.durationS > 0.3 && s.durationS < 15, `workload lasted ${s.durationS} s of its 30 s`);
  // every recorded transaction is on disk, whole: nothing left in a buffer
  const size = statSync(join(dir, 'transactions.bin')).size;
  t.is(size, HEADER_BYTES + s.transactions.attempted * txnRecordSize(m.config.exchanges));
  t.regex(readFileSync(join(dir, 'report.md'), 'utf8'), new RegExp(formatCount(s.transactions.attempted)));
  // every process of the run (server, client, and the probes where they ran) ended, and the run says how
  t.deepEqual(
    m.processes
      .map((p) => p.role)
      .filter((r) => r === 'server' || r === 'client')
      .sort(),
    ['client', 'server'],
  );
  for (const p of m.processes) t.not(p.exit, null, `${p.role} exit recorded`);
  t.deepEqual(leftoverProcesses(m), []);
  t.deepEqual(await leftoversAfter(tree), [], 'processes of the run still running after it ended');
}

test.serial('SIGINT mid-run: stops within seconds, exit 130, report written, all accounted, no leftover process', interrupt, 'SIGINT', [130]);
// 128 + the signal's number, as a shell reports it
test.serial('SIGTERM mid-run: stops within seconds, exit 143, report written, all accounted, no leftover process', interrupt, 'SIGTERM', [143]);
// Ctrl-C on the Node client and server too (the signal paths of the run are the same for both)
for (const engine of ENGINES.slice(1)) test.serial(`SIGINT mid-run: stops within seconds, exit 130${onEngine(engine)}`, interrupt, 'SIGINT', [130], engine);

// The client process on its own, told to stop as the run tells it on a signal.

/** An echo server on 127.0.0.1 (or one that never answers); closed in teardown. */
async function server(t: ExecutionContext, answer: boolean): Promise<number> {
  const socks = new Set<Socket>();
  const srv = createServer((s) => {
    socks.add(s);
    s.on('close', () => socks.delete(s));
    s.on('error', () => {});
    if (answer) s.pipe(s);
  });
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  t.teardown(() => {
    for (const s of socks) s.destroy();
    srv.close();
  });
  return (srv.address() as { port: number }).port;
}

for (const engine of ENGINES) {
  test(`client told to stop mid-run: its own count equals the records on disk${onEngine(engine)}`, async (t) => {
    const port = await server(t, true);
    const config = clientConfig({ duration: '30s', concurrency: '2', port: String(port), engine });
    const r = await runClient(t, config, tempDir(t), 60_000, { stopAfterMs: 1500 });
    t.not(r.stopSentAt, null);
    const took = r.exitedAt - (r.stopSentAt ?? 0);
    t.true(took < 8000, `stopped ${took} ms after it was told to`);
    t.is(r.exit.code, 0);
    t.truthy(r.done);
    t.true(r.done!.attempted > 0);
    // what the client counted is exactly what is in transactions.bin
    t.is(r.txns.n, r.done!.attempted);
    t.is(r.txns.trailingBytes, 0);
    t.is(r.summary.transactions.ok, r.done!.ok);
    t.is(r.summary.transactions.failed, r.done!.failed);
    t.is(r.summary.transactions.timedOut, r.done!.timedOut);
    assertAccounting(t, r.summary);
  });

  test(`client told to stop with transactions stuck in flight: they are recorded as stopped after the grace period${onEngine(engine)}`, async (t) => {
    const port = await server(t, false); // accepts, never answers
    const config = clientConfig({ duration: '30s', concurrency: '3', port: String(port), ioTimeout: '60s', engine });
    const r = await runClient(t, config, tempDir(t), 60_000, { stopAfterMs: 300 });
    t.not(r.stopSentAt, null);
    const took = r.exitedAt - (r.stopSentAt ?? 0);
    t.true(took >= 2000 && took < 10_000, `stopped ${took} ms after it was told to (in-flight transactions get a 2 s grace)`);
    t.is(r.done!.attempted, 3);
    t.is(r.txns.n, 3);
    t.deepEqual(
      Array.from(r.txns.outcome, (o) => OUTCOMES[o]),
      ['stopped', 'stopped', 'stopped'],
    );
    t.deepEqual(r.summary.transactions.errors, { stopped: 3 });
    t.is(r.summary.transactions.failed, 3);
    assertAccounting(t, r.summary);
  });
}

// `sockspike probe` stops on a signal as `run` does, with the same exit codes.
for (const [signal, code] of [
  ['SIGINT', 130],
  ['SIGTERM', 143],
] as const) {
  test(`sockspike probe: ${signal} stops sampling, writes the report, exit ${code}`, async (t) => {
    const dir = join(tempDir(t), 'probe');
    const cli = startSockspike(t, ['probe', '--duration', '60s', '--out', dir], { forceKillAfterDelay: false });
    await waitFor('the probe to write run.json', () => peekManifest(dir)?.status === 'running', 60_000);
    await sleep(300);
    cli.kill(signal);
    const r = await cli;
    t.is(r.exitCode, code, String(r.stderr));
    t.is(readManifestFile(dir).status, 'interrupted');
    t.true(existsSync(join(dir, 'report.md')));
  });
}
