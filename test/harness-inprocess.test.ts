// The workload's logic without its processes: the built-in server and the
// client classes driven in this process on loopback (their process
// bootstraps, client-main.ts and server-main.ts, are what the run starts),
// the journals of host changes read back as a later run sees them, and a
// host sysctl written and put back.
import test from 'ava';
import { spawn, spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { readServer, readTransactions } from '../analysis/read-run.ts';
import { summarize } from '../analysis/summarize.ts';
import { Client } from '../harness/workload/client.ts';
import { Journal, otherJournals, orphanJournals, type JournalFile } from '../harness/kernel/journal.ts';
import type { FromChild, StartMessage } from '../harness/messages.ts';
import { BuiltinServer } from '../harness/workload/server.ts';
import { applySysctls } from '../harness/kernel/sysctls.ts';
import { sysctlPath } from '../harness/kernel/sysctl-spec.ts';
import { UserError } from '../lib/errors.ts';
import { monoNs } from '../lib/clock.ts';
import { SCHEMA_VERSION, type RunManifest } from '../lib/run-files.ts';
import { OUTCOMES } from '../lib/types.ts';
import { assertAccounting, tempDir } from './helpers/cli.ts';
import { clientConfig } from './helpers/client.ts';

test('client and built-in server in one process: every transaction recorded on both sides, progress sent', async (t) => {
  const dir = tempDir(t);
  const t0 = monoNs().toString();
  const config = clientConfig({ transactions: '60', concurrency: '3', close: 'client-fin' });
  const server = new BuiltinServer({ type: 'start', config, t0, runDir: dir, file: 'server.bin', progress: false } satisfies StartMessage);
  const { port } = await server.listen();
  t.true(port > 0);
  const sent: FromChild[] = [];
  const client = new Client({ type: 'start', config: { ...config, port }, t0, runDir: dir, file: 'transactions.bin', progress: true }, (m) => sent.push(m));
  client.start();
  await client.finishedAll;
  const done = client.close();
  await server.stop();
  t.is(done.attempted, 60);
  t.is(done.ok, 60, JSON.stringify(done));
  t.true(done.lastEndNs > done.firstStartNs);
  t.true(
    sent.some((m) => m.type === 'progress' && m.attempted === 60),
    'a last progress message with the final count',
  );

  const manifest = {
    schemaVersion: SCHEMA_VERSION,
    tool: 'sockspike',
    status: 'complete',
    config,
    files: { transactions: ['transactions.bin'], server: ['server.bin'] },
    workload: { firstStartNs: done.firstStartNs, lastEndNs: done.lastEndNs, missedStarts: done.missedStarts, attempted: done.attempted },
  } as unknown as RunManifest;
  const txns = readTransactions(dir, manifest);
  t.is(txns.n, 60);
  t.deepEqual(new Set(Array.from(txns.outcome, (o) => OUTCOMES[o])), new Set(['ok']));
  assertAccounting(t, summarize(manifest, txns, null));
  const conns = readServer(dir, manifest);
  t.is(conns?.n, 60, 'the server recorded every connection');
  const ports = new Set(Array.from(txns.localPort));
  t.true(
    Array.from(conns!.clientPort).every((p) => ports.has(p)),
    'the server saw the clients by their local ports',
  );
});

test("journals: a later run sees other runs' journals and which of them still run, never its own", async (t) => {
  const state = tempDir(t);
  const before = process.env.SOCKSPIKE_STATE_DIR;
  process.env.SOCKSPIKE_STATE_DIR = state;
  // a process that looks like a run (its command line names sockspike), ended by teardown
  const live = spawn(process.execPath, ['-e', 'setTimeout(() => {}, 60000)', 'sockspike-journal-test'], { stdio: 'ignore' });
  t.teardown(() => {
    live.kill('SIGKILL');
    if (before === undefined) delete process.env.SOCKSPIKE_STATE_DIR;
    else process.env.SOCKSPIKE_STATE_DIR = before;
  });
  await once(live, 'spawn');
  const stat = readFileSync(`/proc/${live.pid}/stat`, 'utf8');
  const ticks = stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19];
  const journal = (name: string, pid: number, startTicks?: string): void => {
    const f: JournalFile = { pid, startTicks, startedAt: new Date().toISOString(), runDir: `/tmp/${name}`, entries: [{ kind: 'netns', name: `sspk-${name}` }] };
    writeFileSync(join(state, `run-${pid}.json`), JSON.stringify(f));
  };
  new Journal('/tmp/own').add({ kind: 'netns', name: 'sspk-own' }); // this process's own
  journal('dead', spawnSync('true').pid ?? 999_999); // a pid that has just exited
  journal('init', 1); // alive, but not a sockspike run
  journal('live', live.pid!, ticks);
  writeFileSync(join(state, 'run-2.json'), '{"pid": 2, "entr'); // cut mid-write: skipped
  t.deepEqual(
    otherJournals()
      .map((j) => [j.file.runDir, j.running])
      .sort(),
    [
      ['/tmp/dead', false],
      ['/tmp/init', false],
      ['/tmp/live', true],
    ],
    'its own journal left out; only the live run counts as running',
  );
  t.deepEqual(
    orphanJournals()
      .map((j) => j.file.runDir)
      .sort(),
    ['/tmp/dead', '/tmp/init'],
  );
  // the same pid started at another time: a recycled pid, not the run that wrote the journal
  journal('live', live.pid!, String(Number(ticks) + 1));
  t.deepEqual(
    orphanJournals()
      .map((j) => j.file.runDir)
      .sort(),
    ['/tmp/dead', '/tmp/init', '/tmp/live'],
  );
});

test.serial('host sysctls in process: journalled before the write, put back by restore(), the journal gone after', async (t) => {
  if (process.getuid?.() !== 0) return t.pass('skipped: writing a host sysctl needs root');
  const state = tempDir(t);
  const before = process.env.SOCKSPIKE_STATE_DIR;
  process.env.SOCKSPIKE_STATE_DIR = state;
  t.teardown(() => {
    if (before === undefined) delete process.env.SOCKSPIKE_STATE_DIR;
    else process.env.SOCKSPIKE_STATE_DIR = before;
  });
  // a host-only key that nothing in the suite depends on
  const key = 'kernel.printk_ratelimit_burst';
  const path = sysctlPath(key);
  const original = readFileSync(path, 'utf8').trim();
  const value = String(Number(original) + 7);
  const ownJournal = join(state, `run-${process.pid}.json`);
  await t.throwsAsync(applySysctls([{ key, value }], null, false, new Journal('/tmp/x')), { instanceOf: UserError, message: /add --host-sysctl/ });
  await t.throwsAsync(applySysctls([{ key: 'kernel.no_such_key_here', value: '1' }], null, true, new Journal('/tmp/x')), { message: /no such sysctl/ });

  const applied = await applySysctls([{ key, value }], null, true, new Journal('/tmp/run'));
  try {
    t.deepEqual(applied.records, [{ key, value, scope: 'host', before: original, after: value }]);
    t.is(readFileSync(path, 'utf8').trim(), value);
    const journal = JSON.parse(readFileSync(ownJournal, 'utf8')) as JournalFile;
    t.like(journal.entries[0], { kind: 'sysctl', key, before: original, value });
  } finally {
    t.deepEqual(applied.restore(), []);
  }
  t.is(readFileSync(path, 'utf8').trim(), original);
  t.false(existsSync(ownJournal), 'an undone change leaves the journal; an empty journal leaves the disk');
});
