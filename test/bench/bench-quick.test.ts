import test from 'ava';
import { execa } from 'execa';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import type { BenchResult } from '../../bench/main.ts';
import { ROOT } from '../helpers/cli.ts';

// `npm run bench -- --quick --json`: every part runs and its figures are
// well formed (not their values: performance figures come from the full
// benchmark, never from a timed test).

test('npm run bench -- --quick --json: well-formed figures for every part', async (t) => {
  t.timeout(180_000); // ~30 s on an idle 2-core VM; much more on a loaded one
  if (spawnSync('gcc', ['--version']).error !== undefined) return void t.pass('skipped: no gcc to build the native reference');
  const r = await execa('node', [join(ROOT, 'bin', 'bench.js'), '--quick', '--json'], { cwd: ROOT, reject: false, timeout: 170_000 });
  t.is(r.exitCode, 0, r.stderr);
  const b = JSON.parse(r.stdout.trim().split('\n').pop()!) as BenchResult;
  const pos = (v: number, what: string): void => {
    t.true(Number.isFinite(v) && v > 0, `${what}: ${v}`);
  };
  t.is(b.machine.cpus > 0, true);
  t.is(b.client.length, 2);
  for (const c of [...b.client, ...b.pair, b.latency!]) {
    pos(c.tpsRatio, `${c.what} ${c.close} tps ratio`);
    pos(c.tpsPerCpuRatio, `${c.what} ${c.close} tps/CPU ratio`);
    pos(c.native.tps, 'native tps');
    pos(c.sockspike.tps, 'sockspike tps');
    t.is(c.failed, 0);
    t.true(c.command.startsWith('npm run bench -- --only'));
    t.is(c.runs.length, c.reps);
    // the native engine side by side, where it is built
    if (b.engineMissing === null) {
      pos(c.engine!.tpsRatio, `${c.what} ${c.close} engine tps ratio`);
      pos(c.engine!.tpsPerCpuRatio, `${c.what} ${c.close} engine tps/CPU ratio`);
      t.true(c.runs.every((r) => r.engine !== undefined));
    } else t.is(c.engine, null);
  }
  t.deepEqual(
    b.client.map((c) => [c.close, c.concurrency, c.target]),
    [
      ['client-fin', 16, 0.6],
      ['client-rst', 16, 0.6],
    ],
  );
  t.true(b.pair.length >= 1);
  t.true(Number.isFinite(b.latency!.addedP50Us) && Number.isFinite(b.latency!.addedP99Us));
  pos(b.recording!.nsPerRecord, 'recording ns');
  t.true(b.recording!.heapBytesPerRecord >= 0);
  t.deepEqual(
    b.probes!.map((p) => p.intervalMs),
    [20, 10],
  );
  for (const p of b.probes!) {
    pos(p.cpuPct, `probe CPU at ${p.intervalMs} ms`);
    t.true(Number.isFinite(p.nativeCpuPct) && p.nativeCpuPct >= 0, `C reader CPU at ${p.intervalMs} ms`);
    t.true(Number.isFinite(p.idleNodeCpuPct));
  }
  // sockspike's own processes besides the client and server: a default run and a client-rst run, each with its figure
  t.deepEqual(
    b.own!.map((o) => o.flags),
    [[], ['--close', 'client-rst', '--concurrency', '8']],
  );
  for (const o of b.own!) {
    pos(o.ownPct!, `own CPU ${o.flags.join(' ')}`);
    t.true(o.byProcess.some((p) => p.role === 'probes') && o.byProcess.some((p) => p.role === 'orchestrator'), JSON.stringify(o.byProcess));
    t.is(o.met, null, 'quick: no verdict on 3 s runs');
    t.true(o.command.startsWith('sockspike run --duration 3s'));
  }
  pos(b.analysis!.s, 'analysis s');
  pos(b.analysis!.peakRssMiB, 'analysis RSS');
  t.is(b.analysis!.transactions, 50_000);
  const s = b.startup!;
  for (const [v, what] of [
    [s.helpS, '--help s'],
    [s.scenariosS, 'scenarios s'],
    [s.firstTxnMs, 'first transaction ms'],
    [s.wrapUpMs, 'wrap-up ms'],
    [s.totalS, 'run s'],
  ] as const)
    pos(v, what);
  t.true(s.firstTxnMs < s.totalS * 1000 && s.wrapUpMs < s.totalS * 1000, JSON.stringify(s));
  t.is(s.durationS, 2);
  t.is(s.met.total, null, 'quick: not the 20 s npm start run');
});
