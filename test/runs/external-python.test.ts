// --server-cmd with the reported case's server (fixtures/servers/reported-case-server.py):
// a normal run, a server that crashes mid-run, one that never listens, and
// SIGTERM to sockspike; every time the server's process group is gone after.
import test, { type ExecutionContext } from 'ava';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { assertAccounting, lines, readManifestFile, readSummaryFile, ROOT, sleep, sockspike, startSockspike, tempDir, waitForClient } from '../helpers/cli.ts';
import { alive, groupMembers, hasCommand, killGroup } from '../helpers/processes.ts';

const SERVER = join(ROOT, 'fixtures', 'servers', 'reported-case-server.py');
const python = hasCommand('python3');
const cmd = (extra = ''): string => `python3 ${SERVER} --port {port}${extra}`;

/** The server pid from run.json; teardown kills its group if a test failed half way. */
function serverPid(t: import('ava').ExecutionContext, dir: string): number {
  const pid = readManifestFile(dir).processes.find((p) => p.role === 'server')?.pid ?? -1;
  t.true(pid > 0, 'run.json lists the server process');
  t.teardown(() => pid > 0 && killGroup(pid));
  return pid;
}

test('python fixture: a normal run is all ok, the server is probed, stopped and its output kept', async (t) => {
  if (!python) return (t.pass(), t.log('skipped: python3 is not installed'));
  const dir = join(tempDir(t), 'run');
  // no {port} here: the fixture takes its port from SOCKSPIKE_PORT (the other tests use {port})
  const r = await sockspike(['run', '--server-cmd', `python3 ${SERVER}`, '--duration', '2s', '--out', dir, '--no-progress', '--json']);
  t.is(r.exitCode, 0, String(r.stderr));
  const pid = serverPid(t, dir);
  t.false(alive(pid), `server ${pid} stopped`);
  t.deepEqual(groupMembers(pid), [], 'nothing left of its process group');
  const s = readSummaryFile(dir);
  assertAccounting(t, s);
  t.true(s.transactions.attempted > 20, `${s.transactions.attempted} transactions`);
  t.is(s.transactions.ok, s.transactions.attempted, JSON.stringify(s.transactions.errors));
  t.is(s.server, null, 'no server.bin for an external server');
  const m = readManifestFile(dir);
  t.deepEqual(m.files.server, []);
  t.is(m.status, 'complete');
  t.is(m.processes.find((p) => p.role === 'server')?.exit, 0, 'the fixture left on SIGTERM with 0');
  t.regex(readFileSync(join(dir, 'server-command.log'), 'utf8'), /listening on 127\.0\.0\.1:\d+ backlog 1/);
  const meta = JSON.parse(readFileSync(join(dir, 'probes', 'meta.json'), 'utf8')) as {
    columns: { name: string }[];
    processes?: { role: string; pid: number }[];
  };
  t.true(
    meta.columns.some((c) => c.name.startsWith('proc.server.')),
    'the server process is sampled',
  );
  t.true(
    meta.columns.some((c) => c.name === 'listen.depth'),
    'its listen queue is watched (found by port)',
  );
  const report = readFileSync(join(dir, 'report.md'), 'utf8');
  t.regex(report, /[Ss]erver events: not recorded \(external server\)/);
  t.regex(report, /checked byte for byte/, 'the built-in echo is still checked byte for byte');
});

test('python fixture: --crash-after mid-run counts failures, fails the run with one line, keeps a report, leaves no process', async (t) => {
  if (!python) return (t.pass(), t.log('skipped: python3 is not installed'));
  const dir = join(tempDir(t), 'run');
  const r = await sockspike(['run', '--server-cmd', cmd(' --crash-after 50'), '--duration', '20s', '--out', dir, '--no-progress', '--no-probes']);
  const pid = serverPid(t, dir);
  t.is(r.exitCode, 1, `exit 1; stderr: ${String(r.stderr)}`);
  const err = lines(r.stderr);
  t.is(err.length, 1, 'one line');
  t.regex(err[0], /^sockspike: the server command exited with code 3 during the run; its output is in .*server-command\.log$/);
  t.false(alive(pid));
  t.deepEqual(groupMembers(pid), []);
  const m = readManifestFile(dir);
  t.is(m.status, 'failed');
  t.is(m.processes.find((p) => p.role === 'server')?.exit, 3);
  const s = readSummaryFile(dir);
  assertAccounting(t, s);
  // the server served 50 connections: ours, less the readiness check's in the host's namespace (one, or two on a
  // slow start); in the run's own namespace (root's default) readiness is its listening socket, no connection
  t.true(s.transactions.ok >= 46 && s.transactions.ok <= 50, `${s.transactions.ok} ok of the 50 connections the server served`);
  t.true(s.transactions.failed >= 1, `failures counted: ${JSON.stringify(s.transactions.errors)}`);
  t.true(s.durationS < 15, `the run ended at the crash, not after --duration (${s.durationS} s)`);
  const report = readFileSync(join(dir, 'report.md'), 'utf8');
  t.regex(report, /Run failed: the server command exited with code 3/);
});

test('python fixture: --never-listen gives a clear error after the bounded wait and leaves no process', async (t) => {
  if (!python) return (t.pass(), t.log('skipped: python3 is not installed'));
  const dir = join(tempDir(t), 'run');
  const started = Date.now();
  const r = await sockspike(['run', '--server-cmd', cmd(' --never-listen'), '--server-wait', '1500ms', '--duration', '2s', '--out', dir, '--no-progress']);
  const took = Date.now() - started;
  const pid = serverPid(t, dir);
  t.is(r.exitCode, 1, String(r.stderr));
  const err = lines(r.stderr);
  t.is(err.length, 1);
  t.regex(err[0], /did not accept connections on 127\.0\.0\.1:\d+ within 1\.5 s \(--server-wait\); its output is in .*server-command\.log/);
  // bounded: the run's own clock (the CLI's start-up on a busy machine is not
  // the wait), and the 1.5 s given, not the 10 s default: below 1.5 + 6 s
  const endNs = readManifestFile(dir).endNs ?? Infinity;
  t.true(endNs < 1.5e9 + 6e9, `the run ended ${endNs / 1e9} s after its start (wait 1.5 s, default 10 s)`);
  t.true(took < 60_000, `took ${took} ms`);
  t.false(alive(pid));
  t.deepEqual(groupMembers(pid), []);
  t.is(readManifestFile(dir).status, 'failed');
  t.is(readSummaryFile(dir).transactions.attempted, 0);
  t.true(existsSync(join(dir, 'report.md')), 'a report of what happened');
  t.regex(readFileSync(join(dir, 'server-command.log'), 'utf8'), /never-listen/);
});

/** A 30 s run against the python fixture, once its server is up: the CLI, its run directory and the server's pid. */
async function runningPythonServer(
  t: ExecutionContext,
  env: Record<string, string> = {},
): Promise<{ cli: ReturnType<typeof startSockspike>; dir: string; pid: number }> {
  const dir = join(tempDir(t), 'run');
  const cli = startSockspike(t, ['run', '--server-cmd', cmd(), '--duration', '30s', '--out', dir, '--no-progress', '--no-probes'], {
    forceKillAfterDelay: false,
    env,
  });
  const m = await waitForClient(dir);
  const pid = m.processes.find((p) => p.role === 'server')!.pid;
  t.teardown(() => killGroup(pid));
  return { cli, dir, pid };
}

test('python fixture: SIGTERM to sockspike stops the server command too', async (t) => {
  if (!python) return (t.pass(), t.log('skipped: python3 is not installed'));
  const { cli, dir, pid } = await runningPythonServer(t);
  await sleep(500);
  t.true(alive(pid));
  cli.kill('SIGTERM');
  const r = await cli;
  t.is(r.exitCode, 143, String(r.stderr));
  t.false(alive(pid));
  t.deepEqual(groupMembers(pid), []);
  t.is(readManifestFile(dir).status, 'interrupted');
});

test('python fixture: SIGKILL to sockspike (no chance to clean up) still ends the server command', async (t) => {
  if (!python) return (t.pass(), t.log('skipped: python3 is not installed'));
  // a journal of its own: what the killed run leaves (as root, its namespace) is undone below
  const env = { SOCKSPIKE_STATE_DIR: tempDir(t) };
  const { cli, dir, pid } = await runningPythonServer(t, env);
  t.true(alive(pid));
  cli.kill('SIGKILL');
  await cli;
  // the kernel's parent-death signal (setpriv --pdeathsig), not sockspike, ends it
  for (let i = 0; i < 100 && alive(pid); i++) await sleep(50);
  t.false(alive(pid), `server ${pid} outlived sockspike`);
  const ns = readManifestFile(dir).kernel?.netns ?? null;
  const r = await sockspike(['restore'], { env });
  t.is(r.exitCode, 0, String(r.stderr));
  if (ns !== null) t.false(existsSync(`/run/netns/${ns}`), `namespace ${ns} left behind`);
});

test('--server-cmd with a --port in use is refused with one line', async (t) => {
  const { createServer } = await import('node:net');
  const srv = createServer();
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  t.teardown(() => srv.close());
  const port = (srv.address() as { port: number }).port;
  const r = await sockspike(['run', '--server-cmd', 'sleep 5', '--port', String(port), '--duration', '1s', '--out', join(tempDir(t), 'run')]);
  t.is(r.exitCode, 2);
  t.deepEqual(lines(r.stderr), [`sockspike: --port ${port}: already in use on 127.0.0.1: pick another port or leave --port out`]);
});

test('a server command that exits before listening: one line naming its exit code and log, status failed', async (t) => {
  const dir = join(tempDir(t), 'run');
  const r = await sockspike([
    'run',
    '--server-cmd',
    "sh -c 'echo bad configuration >&2; exit 7'",
    '--duration',
    '2s',
    '--out',
    dir,
    '--no-progress',
    '--no-probes',
  ]);
  t.is(r.exitCode, 1);
  t.deepEqual(lines(r.stderr), [
    `sockspike: the server command exited with code 7 before accepting connections on 127.0.0.1:${readManifestFile(dir).config.port}; its output is in ${dir}/server-command.log`,
  ]);
  t.is(readManifestFile(dir).status, 'failed');
  t.is(readFileSync(join(dir, 'server-command.log'), 'utf8'), 'bad configuration\n');
  t.true(existsSync(join(dir, 'report.md')));
});
