import test from 'ava';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { OTHERS_PERIOD_NS, OtherProcesses, readOtherProcesses } from '../../probes/other-processes.ts';
import { PROBES_DIR } from '../../probes/probe-files.ts';
import { tempDir } from '../helpers/cli.ts';

// The busiest other processes, on the real /proc: a busy process of the
// test's own shows by name, the run's own processes are left out.

test('a busy process shows by name with about a core; an excluded one does not', async (t) => {
  const dir = tempDir(t);
  mkdirSync(join(dir, PROBES_DIR), { recursive: true });
  const busy = spawn(process.execPath, ['-e', 'const end = Date.now() + 20000; while (Date.now() < end);', 'sockspike-busy-test'], { stdio: 'ignore' });
  t.teardown(() => busy.kill('SIGKILL'));
  await once(busy, 'spawn');
  const excluded = new Set([process.pid]);
  const others = new OtherProcesses(dir, '/proc', 100, (pid) => excluded.has(pid));
  const t0 = process.hrtime.bigint();
  const now = (): number => Number(process.hrtime.bigint() - t0);
  others.maybeWalk(now());
  await sleep(OTHERS_PERIOD_NS / 1e6 + 100);
  others.maybeWalk(now());
  others.close();
  const walks = readOtherProcesses(dir);
  t.is(walks.length, 1, 'the first walk is the baseline');
  const node = walks[0].top.find((x) => x.comm === 'node');
  t.truthy(node, JSON.stringify(walks[0].top));
  t.true(node!.cores > 0.5 && node!.cores <= 2.05, `${node!.cores} cores`);
  t.true(walks[0].dtNs >= OTHERS_PERIOD_NS);
});

test('reader: no file is no walks; a damaged line is one line naming the file', async (t) => {
  const dir = tempDir(t);
  t.deepEqual(readOtherProcesses(dir), []);
  mkdirSync(join(dir, PROBES_DIR), { recursive: true });
  const { writeFileSync } = await import('node:fs');
  writeFileSync(join(dir, PROBES_DIR, 'others.ndjson'), '{"tNs":1,"dtNs":1,"top":[]}\nnot json\n{"tNs":2,"dtNs":1,"top":[]}\n');
  t.throws(() => readOtherProcesses(dir), { message: /others\.ndjson: damaged \(line 2 is not JSON\)/ });
  writeFileSync(join(dir, PROBES_DIR, 'others.ndjson'), '{"tNs":1,"dtNs":1,"top":[]}\n{"tNs":2,"dt');
  t.is(readOtherProcesses(dir).length, 1, 'a line cut by a killed probe process is dropped');
});
