// --client-processes K: the load split over K client processes, each with
// its own transactions file; accounting stays exact and worker ids unique.
import { ENGINES, engineFlag, onEngine } from '../helpers/engines.ts';
import test from 'ava';
import { join } from 'node:path';
import { shareOf, combineDone } from '../../harness/workload/client-share.ts';
import { defaultConfig } from '../../harness/config.ts';
import { readManifestFile, readSummaryFile, sockspike, tempDir } from '../helpers/cli.ts';
import { readManifest, readTransactions } from '../../analysis/read-run.ts';

test('shares: concurrency, count and rate split without loss; worker ids follow on', (t) => {
  const cfg = { ...defaultConfig(), concurrency: 5, transactions: 1001, clientProcesses: 2 };
  const a = shareOf(cfg, 0, 2);
  const b = shareOf(cfg, 1, 2);
  t.is(a.config.concurrency + b.config.concurrency, 5);
  t.is((a.config.transactions ?? 0) + (b.config.transactions ?? 0), 1001);
  t.is(a.firstWorker, 0);
  t.is(b.firstWorker, a.config.concurrency);
  const open = shareOf({ ...cfg, rate: 900, maxInflight: 7 }, 2, 3);
  t.is(open.config.rate, 300);
  t.is(open.firstWorker, 5); // 7 in flight over 3: 3, 2, 2
  t.is(open.config.maxInflight, 2);
  const d = combineDone([
    { type: 'done', attempted: 3, ok: 2, failed: 1, timedOut: 0, missedStarts: 0, firstStartNs: 5, lastEndNs: 90, notes: ['x'] },
    { type: 'done', attempted: 4, ok: 4, failed: 0, timedOut: 0, missedStarts: 1, firstStartNs: 3, lastEndNs: 80, notes: ['x', 'y'] },
  ]);
  t.deepEqual(d, { type: 'done', attempted: 7, ok: 6, failed: 1, timedOut: 0, missedStarts: 1, firstStartNs: 3, lastEndNs: 90, notes: ['x', 'y'] });
});

for (const engine of ENGINES)
  test(`run --client-processes 2: two transaction files, every transaction accounted for, unique worker ids${onEngine(engine)}`, async (t) => {
    const out = join(tempDir(t), 'run');
    const r = await sockspike([
      'run',
      '--client-processes',
      '2',
      '--concurrency',
      '3',
      '--transactions',
      '601',
      '--no-probes',
      ...engineFlag(engine),
      '--out',
      out,
    ]);
    t.is(r.exitCode, 0, String(r.stderr));
    const m = readManifestFile(out);
    t.deepEqual(m.files.transactions, ['transactions.bin', 'transactions-2.bin']);
    t.deepEqual(
      m.processes.filter((p) => p.role.startsWith('client')).map((p) => [p.role, p.exit]),
      [
        ['client', 0],
        ['client-2', 0],
      ],
    );
    const s = readSummaryFile(out);
    t.is(s.transactions.attempted, 601);
    t.is(s.transactions.ok, 601);
    t.is(s.transactions.unrecorded, 0);
    const c = readTransactions(out, readManifest(out));
    t.deepEqual([...new Set(c.worker)].sort(), [0, 1, 2]);
    const bad = await sockspike(['run', '--client-processes', '3', '--concurrency', '2']);
    t.is(bad.exitCode, 2);
    t.regex(String(bad.stderr), /^sockspike: --client-processes 3 exceeds --concurrency 2/);
  });
