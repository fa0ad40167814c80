import test from 'ava';
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { readStallMonitors } from '../../probes/read.ts';
import { startStallMonitor } from '../../probes/stall-monitor.ts';

// The stall monitor, in a process of its own: a 100 ms busy loop must show
// as event-loop delay, a forced GC as a pause record.

const run = promisify(execFile);
const MONITOR = path.resolve('probes/stall-monitor.ts');

test('a 100 ms busy loop shows as >= 90 ms of event-loop delay; a forced GC as a pause', async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sstest-self-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  const script = `
    import { startStallMonitor } from ${JSON.stringify(MONITOR)};
    const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
    const t0 = process.hrtime.bigint();
    const m = startStallMonitor({ runDir: ${JSON.stringify(dir)}, role: 'client', t0, intervalNs: 20e6 });
    await sleep(150);
    const busyFrom = Number(process.hrtime.bigint() - t0);
    const end = performance.now() + 100;
    while (performance.now() < end);
    await sleep(60);
    const gcAt = Number(process.hrtime.bigint() - t0);
    globalThis.gc();
    await sleep(60);
    m.stop();
    console.log(JSON.stringify({ busyFrom, gcAt }));`;
  const { stdout } = await run(process.execPath, ['--expose-gc', '--import', 'tsx', '--input-type=module', '-e', script], { timeout: 30_000 });
  const { busyFrom, gcAt } = JSON.parse(stdout) as { busyFrom: number; gcAt: number };
  const mons = readStallMonitors(dir);
  t.is(mons.length, 1);
  const m = mons[0];
  t.is(m.role, 'client');
  t.false(m.truncated);
  t.is(m.resolutionNs, 10e6);
  t.is(m.intervalNs, 20e6);
  // the interval that ends after the busy loop holds the stall
  let worst = 0;
  let at = 0;
  m.eld.max.forEach((v, i) => {
    if (v > worst) {
      worst = v;
      at = m.eld.t[i];
    }
  });
  t.log(
    `max event-loop delay ${(worst / 1e6).toFixed(1)} ms at ${(at / 1e6).toFixed(0)} ms (busy from ${(busyFrom / 1e6).toFixed(0)} ms); ${m.eld.t.length} intervals; ${m.gc.start.length} GC pauses`,
  );
  // A stall of S ms reads as S - resolution .. S (it may start up to one
  // resolution after the last tick): >= 90 ms, with a little slack for timer granularity.
  t.true(worst >= 88e6, `max delay ${worst / 1e6} ms`);
  t.true(at >= busyFrom + 90e6 && at < busyFrom + 200e6);
  // whole-run distribution from monitorEventLoopDelay
  t.truthy(m.run);
  t.true((m.run?.max ?? 0) >= 88e6);
  // the forced GC: a major (kind 4) pause starting at the gc() call
  const forced = Array.from(m.gc.start).findIndex((s, i) => m.gc.kind[i] === 4 && Math.abs(s - gcAt) < 20e6);
  t.true(
    forced >= 0,
    `GC pauses at ${Array.from(m.gc.start)
      .map((s) => (s / 1e6).toFixed(1))
      .join(', ')} ms; gc() at ${(gcAt / 1e6).toFixed(1)} ms`,
  );
  t.true(m.gc.duration[forced] > 0);
  // intervals tile the run
  for (let i = 1; i < m.eld.t.length; i++) t.true(Math.abs(m.eld.t[i] - m.eld.dt[i] - m.eld.t[i - 1]) < 1e3);
});

test('stop() is idempotent and flushes synchronously; the file is valid right after', (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sstest-self-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  const m = startStallMonitor({ runDir: dir, role: 'server x', t0: process.hrtime.bigint(), intervalNs: 20e6 });
  m.stop();
  m.stop();
  const [s] = readStallMonitors(dir);
  t.is(s.role, 'server_x');
  t.is(s.pid, process.pid);
  t.true(s.eld.t.length >= 1);
  t.true(path.basename(m.file).startsWith('self-server_x.'));
});
