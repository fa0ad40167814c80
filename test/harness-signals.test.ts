// Ctrl-C (SIGINT) and SIGTERM mid-run: the run stops within a few seconds,
// flushes every transaction, writes summary.json and report.md, says it was
// interrupted, and leaves no child process behind.
import test, { type ExecutionContext } from 'ava';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import {
  assertAccounting,
  HEADER_BYTES,
  killLeftoversOnTeardown,
  leftoverProcesses,
  readManifestFile,
  readSummaryFile,
  sleep,
  startSockspike,
  tempDir,
  txnRecordSize,
  waitForClient,
} from './helpers/cli.ts';

async function interrupt(t: ExecutionContext, signal: 'SIGINT' | 'SIGTERM', codes: number[]): Promise<void> {
  const dir = join(tempDir(t), 'run');
  killLeftoversOnTeardown(t, dir);
  // non-detached, and no SIGKILL from execa after the signal: the CLI must end by itself
  const cli = startSockspike(t, ['run', '--duration', '30s', '--out', dir], { timeout: 60_000, forceKillAfterDelay: false });
  await waitForClient(dir);
  await sleep(2000);
  const running = readManifestFile(dir);
  t.is(running.status, 'running');
  const sentAt = Date.now();
  t.true(cli.kill(signal), `${signal} delivered to the CLI (pid ${cli.pid})`);
  const r = await cli;
  const tookMs = Date.now() - sentAt;
  t.log(`${signal}: exit ${r.exitCode} after ${tookMs} ms; stdout: ${String(r.stdout).trim()}`);
  t.false(r.timedOut, 'the CLI did not stop and was killed by the test timeout');
  t.true(tookMs < 8000, `took ${tookMs} ms to stop`);
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
  t.true(s.durationS > 1 && s.durationS < 15, `workload lasted ${s.durationS} s of its 30 s`);
  // every recorded transaction is on disk, whole: nothing left in a buffer
  const size = statSync(join(dir, 'transactions.bin')).size;
  t.is(size, HEADER_BYTES + s.transactions.attempted * txnRecordSize(m.config.exchanges));
  t.regex(readFileSync(join(dir, 'report.md'), 'utf8'), new RegExp(`${s.transactions.attempted}`));
  // both children ended, and the run says how
  t.is(m.processes.length, 2);
  for (const p of m.processes) t.not(p.exit, null, `${p.role} exit recorded`);
  t.deepEqual(leftoverProcesses(m), []);
}

test.serial('SIGINT mid-run: stops within seconds, exit 130, report written, all accounted, no leftover process', interrupt, 'SIGINT', [130]);
// cli/run.ts maps every interrupted run to 130 (a shell would say 143 for SIGTERM): either is an honest "interrupted"
test.serial('SIGTERM mid-run: stops within seconds, non-zero exit, report written, all accounted, no leftover process', interrupt, 'SIGTERM', [130, 143]);
