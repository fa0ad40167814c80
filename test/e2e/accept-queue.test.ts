import test from 'ava';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { readSummaryFile, sockspike, tempDir } from '../helpers/cli.ts';

// End to end: the built-in server with a listen backlog of 1 and a slow
// accept loop, four clients. The accept queue overflows, the kernel drops
// SYNs, and connect() waits for the SYN retransmission timer. The report
// must name accept-queue-overflow first, with the listen counters as evidence.

test('backlog 1 + slow accept: connect stalls at SYN retransmission times and the report names accept-queue-overflow', async (t) => {
  const dir = join(tempDir(t), 'run');
  const r = await sockspike(
    ['run', '--duration', '3s', '--concurrency', '4', '--backlog', '1', '--accept-delay', '1ms', '--outlier', '100ms', '--connect-timeout', '8s', '--out', dir],
    { timeout: 120_000 },
  );
  t.is(r.exitCode, 0, String(r.stderr));
  const s = readSummaryFile(dir);
  t.true(s.outliers.count > 0, 'the overflowing queue made connect() stall');
  const modes = s.outliers.modes ?? [];
  t.true(
    modes.some((m) => m.timer !== null && m.timer.startsWith('syn-retransmit')),
    `modes: ${modes.map((m) => m.label).join('; ')}`,
  );
  t.is(s.outliers.phases?.dominant, 'connect');
  const causes = s.causes ?? [];
  t.is(causes[0]?.id, 'accept-queue-overflow', JSON.stringify(causes.map((c) => [c.id, c.confidence])));
  t.true(
    causes[0].evidence.some((e) => /ListenOverflows|ListenDrops|listen overflow/i.test(e)),
    causes[0].evidence.join(' | '),
  );
  const md = readFileSync(join(dir, 'report.md'), 'utf8');
  t.regex(md.split('\n').slice(0, 4).join('\n'), /accept-queue-overflow/, 'the verdict comes first');
  t.true(existsSync(join(dir, 'timeline.svg')));
});
