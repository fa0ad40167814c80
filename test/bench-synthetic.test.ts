import test from 'ava';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { analyzeRun } from '../analysis/analyze-run.ts';
import { writeReport } from '../reports/run-report.ts';
import { readProbes } from '../probes/read.ts';
import { makeSyntheticRun } from '../bench/synthetic-run.ts';

// The synthetic run of bench/analysis-speed.ts at a small size: a valid run
// directory whose analysis finds exactly what was planted.

test('synthetic run (10 000 transactions, 30 s of 20 ms samples): analysed, counts and the SYN retransmission mode right', (t) => {
  const dir = join(mkdtempSync(join(tmpdir(), 'sockspike-synthetic-')), 'run');
  t.teardown(() => rmSync(dirname(dir), { recursive: true, force: true }));
  const r = makeSyntheticRun(dir, { transactions: 10_000, durationS: 30, intervalMs: 20, outlierEvery: 1000, seed: 7 });
  t.is(r.outliers, 10);
  t.is(r.sampleRows, 1500);
  t.true(r.failures > 0);

  const p = readProbes(dir);
  t.is(p.rows, 1500);
  t.true(p.columns.length > 300, `${p.columns.length} columns`);
  const overflows = p.get('TcpExt.ListenOverflows')!;
  let sum = 0;
  for (let i = 0; i < p.rows; i++) if (Number.isFinite(overflows[i])) sum += overflows[i];
  t.is(sum, 10);

  const s = analyzeRun(dir, { outlierUs: 100_000 });
  t.is(s.transactions.attempted, 10_000);
  t.is(s.transactions.ok + s.transactions.failed + s.transactions.timedOut, 10_000);
  t.is(s.transactions.failed, r.failures);
  t.is(s.transactions.unrecorded, 0);
  t.is(s.server?.connections, 10_000);
  t.is(s.outliers.count, r.outliers);
  t.true(s.latencyUs.total.p50 > 300 && s.latencyUs.total.p50 < 550, `p50 ${s.latencyUs.total.p50}`);
  const modes = s.outliers.modes ?? [];
  t.true(
    modes.some((m) => m.timer === 'syn-retransmit-1' && m.count === r.outliers),
    JSON.stringify(modes),
  );
  t.is(s.outliers.phases?.dominant, 'connect');

  const md = writeReport(dir);
  t.regex(md, /SYN retransmission #1/);
  t.true(existsSync(join(dir, 'summary.json')));
});

test('synthetic client-rst run with kernel events as the tracer stores them: SYN and data retransmits joined, resets estimated from the counts', (t) => {
  const dir = join(mkdtempSync(join(tmpdir(), 'sockspike-synthetic-')), 'run');
  t.teardown(() => rmSync(dirname(dir), { recursive: true, force: true }));
  const r = makeSyntheticRun(dir, {
    transactions: 20_000,
    durationS: 30,
    intervalMs: 20,
    outlierEvery: 1000,
    exchangeOutlierEvery: 1000,
    kernelEvents: true,
    seed: 7,
  });
  t.is(r.connectOutliers, 20);
  t.is(r.exchangeOutliers, 20);
  t.is(r.kernelEvents, 2 * 20_000 + 40, 'a reset each way per transaction, a retransmit per outlier');
  t.true(r.kernelEventsRecorded < r.kernelEvents / 5, `${r.kernelEventsRecorded} recorded one by one`);

  const s = analyzeRun(dir, { outlierUs: 100_000 });
  t.is(s.outliers.count, 40);
  const modes = s.outliers.modes ?? [];
  t.true(
    modes.some((m) => m.timer === 'syn-retransmit-1' && m.count === 20) && modes.some((m) => m.timer?.startsWith('rto') && m.count === 20),
    JSON.stringify(modes),
  );
  const causes = s.causes ?? [];
  const ev = (id: string): string => causes.find((c) => c.id === id)?.evidence.find((e) => e.startsWith('kernel events:')) ?? `(no ${id})`;
  t.regex(ev('accept-queue-overflow'), /^kernel events: 20 of 40 outlier connections retransmitted their SYN/);
  t.regex(ev('data-retransmit'), /^kernel events: 20 of 40 outlier connections had a data\/FIN retransmit/);
  // every connection was reset, most of them only counted in the kernel: the outliers' resets are estimated, and all had one
  t.regex(
    ev('abortive-close-reset'),
    /^kernel events: 40 of 40 outlier connections saw a reset \(\d+ of them estimated: for \d+, resets came with every connection/,
  );
  t.regex(writeReport(dir), /recorded one by one, the rest counted in the kernel per 100 ms/);
});
