import test from 'ava';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { analyzeRun } from '../analysis/analyze-run.ts';
import { writeReport } from '../reports/run-report.ts';
import { copyFixture } from './helpers/fixture-copy.ts';

// The analysis and report stages on a recorded run with a known answer:
// fixtures/runs/backlog1-rst (backlog 1, SO_LINGER {1,0} on the listener,
// 4 clients): its outliers are connects that waited for the first SYN
// retransmission after the accept queue overflowed.

test('outliers of the backlog-1 run: a SYN retransmission mode, in connect, with the listen-queue counters as evidence', (t) => {
  const dir = copyFixture(t);
  const s = analyzeRun(dir, { outlierUs: 100_000 });
  t.true(s.outliers.count > 0);
  const modes = s.outliers.modes ?? [];
  const biggest = [...modes].sort((a, b) => b.count - a.count)[0];
  t.is(biggest?.timer, 'syn-retransmit-1', JSON.stringify(modes));
  t.is(s.outliers.phases?.dominant, 'connect');
  const names = (s.systemState?.metrics ?? []).map((m) => m.metric);
  t.true(
    names.some((n) => /ListenOverflows|ListenDrops|TCPSynRetrans/.test(n)),
    `strongest metrics: ${names.join(', ')}`,
  );
  const md = writeReport(dir);
  t.regex(md, /## Outliers: modes and phases/);
  t.regex(md, /SYN retransmission #1 \(1 s\)/);
  t.regex(md, /## System state around the outliers/);
  t.regex(md, /Of the outliers: .*connect/);
});

test('a threshold above every latency: no outliers, no modes, no system-state comparison, and the report says nothing unusual', (t) => {
  const dir = copyFixture(t);
  const s = analyzeRun(dir, { outlierUs: 3_600_000_000 });
  t.is(s.outliers.count, 0);
  t.deepEqual(s.outliers.modes, []);
  t.is(s.outliers.phases?.dominant, null);
  t.is(s.systemState, undefined);
  const md = writeReport(dir);
  t.regex(md, /nothing unusual seen/);
  t.notRegex(md, /## System state around the outliers/);
  t.is(JSON.parse(readFileSync(join(dir, 'summary.json'), 'utf8')).outliers.count, 0);
});
