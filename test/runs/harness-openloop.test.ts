// Open loop: starts follow the schedule (uniform or poisson) regardless of
// completions, and latency is measured from the intended start, so a stalled
// client cannot hide its stall (coordinated omission).
import test, { type ExecutionContext } from 'ava';
import { join } from 'node:path';
import type { Summary } from '../../lib/types.ts';
import { ENGINES, engineFlag, onEngine } from '../helpers/engines.ts';
import { assertAccounting, killLeftoversOnTeardown, leftoverProcesses, lines, readManifestFile, readSummaryFile, sockspike, tempDir } from '../helpers/cli.ts';

type Row = Record<string, number | string | boolean | null>;

async function openLoopRun(t: ExecutionContext, args: string[]): Promise<{ s: Summary; rows: Row[]; dir: string }> {
  const dir = join(tempDir(t), 'run');
  killLeftoversOnTeardown(t, dir);
  const r = await sockspike(['run', ...args, '--out', dir]);
  t.is(r.exitCode, 0, String(r.stderr));
  const s = readSummaryFile(dir);
  const exp = await sockspike(['export', dir, '--what', 'transactions', '--format', 'ndjson']);
  t.is(exp.exitCode, 0, String(exp.stderr));
  const rows = lines(exp.stdout).map((l) => JSON.parse(l) as Row);
  t.is(rows.length, s.transactions.attempted);
  t.deepEqual(leftoverProcesses(readManifestFile(dir)), []);
  return { s, rows, dir };
}

/** Gaps between consecutive intended starts, in schedule order. */
function gapsNs(rows: Row[]): number[] {
  const starts = rows.map((r) => r.intended_ns as number).sort((a, b) => a - b);
  return starts.slice(1).map((v, i) => v - starts[i]);
}

for (const engine of ENGINES)
  test.serial(`uniform open loop at 200/s for 2 s: ~400 starts exactly 5 ms apart, latency from the intended start${onEngine(engine)}`, async (t) => {
    const { s, rows } = await openLoopRun(t, ['--rate', '200', '--duration', '2s', ...engineFlag(engine)]);
    assertAccounting(t, s);
    t.log(`attempted ${s.transactions.attempted}, openLoop ${JSON.stringify(s.openLoop)}`);
    t.truthy(s.openLoop);
    t.is(s.openLoop!.rate, 200);
    // 2 s at 200/s: 400 intended starts, each one started or counted as missed
    const missed = s.openLoop!.missedStarts;
    t.true(Math.abs(s.transactions.attempted + missed - 400) <= 2, `attempted ${s.transactions.attempted} + missed ${missed}, expected 400`);
    t.true(missed <= 3, `${missed} missed starts with 256 free workers`);
    t.true(s.transactions.attempted >= 395, `attempted ${s.transactions.attempted}`);
    t.is(s.transactions.ok, s.transactions.attempted, JSON.stringify(s.transactions.errors));
    const gaps = gapsNs(rows);
    t.is(gaps.length, rows.length - 1);
    const off = gaps.filter((g) => Math.abs(g - 5e6) > 1e3);
    t.deepEqual(off, [], 'every gap between intended starts is 5 ms ± 1 us');
    for (const r of rows) {
      t.true((r.late_us as number) >= 0, `start before its schedule: ${r.late_us} us`);
      // total latency = lateness of the start + the transaction itself (the export writes us with one decimal, ns as integers)
      t.true(Math.abs((r.total_us as number) - ((r.late_us as number) + (r.end_us as number))) <= 0.11);
      t.true(Math.abs((r.start_ns as number) - ((r.intended_ns as number) + (r.late_us as number) * 1e3)) <= 51);
    }
  });

test.serial('poisson open loop at 500/s: mean gap ~2 ms, coefficient of variation ~1', async (t) => {
  const { s, rows } = await openLoopRun(t, ['--rate', '500', '--arrivals', 'poisson', '--duration', '2s']);
  assertAccounting(t, s);
  t.is(s.openLoop?.rate, 500);
  const gaps = gapsNs(rows);
  t.true(gaps.length > 700, `only ${gaps.length} gaps`);
  const mean = gaps.reduce((a, b) => a + b, 0) / gaps.length;
  const sd = Math.sqrt(gaps.reduce((a, g) => a + (g - mean) ** 2, 0) / (gaps.length - 1));
  const cv = sd / mean;
  t.log(`${rows.length} starts, mean gap ${(mean / 1e6).toFixed(3)} ms, cv ${cv.toFixed(3)}`);
  t.true(Math.abs(mean - 2e6) / 2e6 < 0.15, `mean gap ${mean} ns, expected 2 ms ± 15 %`);
  t.true(cv > 0.8 && cv < 1.2, `coefficient of variation ${cv}, expected ~1 (exponential gaps)`);
  // not a uniform schedule in disguise
  t.true(new Set(gaps.map((g) => Math.round(g / 1e4))).size > 100);
});

for (const engine of ENGINES)
  test.serial(`saturated open loop: late and missed starts counted, latency from the intended start grows${onEngine(engine)}`, async (t) => {
    // one transaction in flight at a time, each held >= 20 ms by the slow accept loop, against 1000 starts/s
    const { s, rows } = await openLoopRun(t, ['--rate', '1000', '--max-inflight', '1', '--accept-delay', '20ms', '--duration', '2s', ...engineFlag(engine)]);
    assertAccounting(t, s);
    t.log(`attempted ${s.transactions.attempted}, openLoop ${JSON.stringify(s.openLoop)}, total ${JSON.stringify(s.latencyUs.total)}`);
    const o = s.openLoop!;
    t.truthy(o);
    t.is(o.rate, 1000);
    t.true(s.transactions.attempted < 200, `${s.transactions.attempted} started: the cap of 1 in flight did not hold`);
    t.true(o.lateStarts > 0, 'late starts counted');
    t.true(o.lateStarts >= s.transactions.attempted - 2, `${o.lateStarts} late of ${s.transactions.attempted}`);
    t.true(o.missedStarts > 0, 'starts that never happened counted');
    // the schedule had ~2000 starts in 2 s: started + missed cover it
    t.true(s.transactions.attempted + o.missedStarts > 1500, `${s.transactions.attempted} + ${o.missedStarts} missed`);
    t.true(o.lateUs.max > 500_000, `latest start ${o.lateUs.max} us`);
    t.true(s.latencyUs.total.p99 > 100_000, `p99 from the intended start ${s.latencyUs.total.p99} us`);
    // the service time itself stays ~20 ms: the growth is the queue, which a closed loop would hide
    const service = rows.map((r) => r.end_us as number).sort((a, b) => a - b);
    t.true(service[Math.floor(service.length / 2)] < 100_000, `median service time ${service[Math.floor(service.length / 2)]} us`);
    const worker = new Set(rows.map((r) => r.worker));
    t.is(worker.size, 1, 'one worker: --max-inflight 1');
  });
