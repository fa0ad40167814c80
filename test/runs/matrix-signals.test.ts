import test from 'ava';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { MatrixManifest } from '../../harness/matrix.ts';
import { leftoverProcesses, readManifestFile, startSockspike, tempDir, waitFor, waitForClient } from '../helpers/cli.ts';

// Ctrl-C on a matrix: the running run stops cleanly (it is the matrix's
// child, signalled by pid, in a process group of its own), no further run
// starts, matrix.json says interrupted, nothing is left running.

test('SIGINT stops the matrix after the running run has stopped cleanly, exit 130', async (t) => {
  const dir = join(tempDir(t), 'mx');
  const child = startSockspike(t, ['matrix', '--vary', 'backlog=64,128', '--repeat', '2', '--duration', '30s', '--no-probes', '--out', dir]);
  const m0 = await waitFor(
    'matrix.json',
    () => existsSync(join(dir, 'matrix.json')) && (JSON.parse(readFileSync(join(dir, 'matrix.json'), 'utf8')) as MatrixManifest),
    60_000,
  );
  const first = join(dir, m0.schedule[0].dir);
  await waitForClient(first, 60_000);
  const t0 = Date.now();
  process.kill(child.pid!, 'SIGINT');
  const r = await child;
  t.is(r.exitCode, 130, String(r.stderr));
  t.true(Date.now() - t0 < 25_000, 'stopped long before the 30 s run would have ended');
  t.true(m0.schedule.length === 4);
  const m = JSON.parse(readFileSync(join(dir, 'matrix.json'), 'utf8')) as MatrixManifest;
  t.is(m.status, 'interrupted');
  t.is(m.schedule[0].exit, 130, 'the run itself was interrupted and said so');
  t.true(
    m.schedule.slice(1).every((s) => s.exit === null),
    'no run started after Ctrl-C',
  );
  t.true(m.schedule[0].interrupted);
  const run = readManifestFile(first);
  t.is(run.status, 'interrupted');
  t.true(existsSync(join(first, 'report.md')), 'the interrupted run still wrote its report');
  t.deepEqual(leftoverProcesses(run), []);
  t.regex(String(r.stderr), /no comparison/);
});
