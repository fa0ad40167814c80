// Each --close variant, run for real in a network namespace of the test's
// own, leaves its TIME_WAIT sockets on the side it claims (or none), and
// the server sees resets where the variant makes them.
import test, { type ExecutionContext } from 'ava';
import { join } from 'node:path';
import { nativeUnavailable } from '../../lib/native.ts';
import { assertAccounting, cmd, BIN, readManifestFile, readSummaryFile, tempDir, leftoverProcesses } from '../helpers/cli.ts';
import { createNetns, deleteNetns, netnsUnavailable, timeWaitSides } from '../helpers/netns.ts';
import { ENGINES, engineFlag, onEngine } from '../helpers/engines.ts';
import type { EngineKind } from '../../harness/engine.ts';

const N = 50;
const skip = netnsUnavailable();
let ns: string | null = null;

test.before(() => {
  if (skip === null) ns = createNetns();
});
test.after.always(() => {
  if (ns !== null) deleteNetns(ns);
});

interface Expect {
  variant: string;
  port: number;
  extra?: string[];
  /** TIME_WAIT sockets expected on each side: [min, max]. */
  client: [number, number];
  server: [number, number];
  connections: number;
  /** Server connections closed with (or by) RST. */
  resets: number;
  needsAddon?: boolean;
}

// TIME_WAIT lasts 60 s: each variant has its own server port, so one
// namespace holds them all without one run's sockets counting for another.
const CASES: Expect[] = [
  { variant: 'client-fin', port: 18080, client: [Math.ceil(0.9 * N), N], server: [0, 0], connections: N, resets: 0 },
  { variant: 'server-fin', port: 18081, client: [0, 0], server: [Math.ceil(0.9 * N), N], connections: N, resets: 0 },
  { variant: 'client-rst', port: 18082, client: [0, 0], server: [0, 0], connections: N, resets: N },
  // the listener's SO_LINGER {1,0} is inherited: the server's close is an RST, which ends the client's FIN_WAIT too
  { variant: 'server-rst', port: 18083, client: [0, 0], server: [0, 0], connections: N, resets: N },
  // a FIN close with a linger timeout: still an orderly close, TIME_WAIT on the client
  { variant: 'linger:1', port: 18084, client: [Math.ceil(0.9 * N), N], server: [0, 0], connections: N, resets: 0, needsAddon: true },
  // one connection per 10 transactions: a handful of TIME_WAITs, one per connection
  { variant: 'keepalive', port: 18085, extra: ['--per-connection', '10'], client: [1, N / 10], server: [0, 0], connections: N / 10, resets: 0 },
];

async function closeVariant(t: ExecutionContext, c: Expect, engine: EngineKind, port: number): Promise<void> {
  if (skip !== null) {
    t.log(`skipped: ${skip}`);
    t.pass();
    return;
  }
  if (c.needsAddon && nativeUnavailable !== null) {
    t.log(`skipped: ${c.variant} needs the native addon (${nativeUnavailable})`);
    t.pass();
    return;
  }
  const netns = ns!;
  const dir = join(tempDir(t), 'run');
  const args = [
    'netns',
    'exec',
    netns,
    'node',
    BIN,
    'run',
    // in the test's namespace, whose sockets it inspects after the run
    '--no-netns',
    '--transactions',
    String(N),
    '--close',
    c.variant,
    '--port',
    String(port),
    ...engineFlag(engine),
    ...(c.extra ?? []),
    '--out',
    dir,
  ];
  const r = await cmd('ip', args, { timeout: 90_000 });
  t.is(r.exitCode, 0, `run failed: ${String(r.stderr)}`);

  const tw = timeWaitSides(netns, port);
  t.log(`${c.variant}: TIME_WAIT client ${tw.client}, server ${tw.server}`);
  t.true(tw.client >= c.client[0] && tw.client <= c.client[1], `client-side TIME_WAIT ${tw.client} not in [${c.client}]`);
  t.true(tw.server >= c.server[0] && tw.server <= c.server[1], `server-side TIME_WAIT ${tw.server} not in [${c.server}]`);

  const s = readSummaryFile(dir);
  t.is(s.status, 'complete');
  assertAccounting(t, s);
  t.is(s.transactions.attempted, N);
  t.is(s.transactions.ok, N, `errors: ${JSON.stringify(s.transactions.errors)}`);
  t.truthy(s.server);
  t.is(s.server!.connections, c.connections);
  t.is(s.server!.resets, c.resets);
  t.deepEqual(s.server!.errors, {});
  const m = readManifestFile(dir);
  t.is(m.config.port, port);
  t.is(m.config.engine, engine);
  t.deepEqual(leftoverProcesses(m), []);
}

// every variant on each engine, each engine on ports of its own (TIME_WAIT outlives a test)
ENGINES.forEach((engine, i) => {
  for (const c of CASES)
    test.serial(`close ${c.variant}: TIME_WAIT where expected, accounting, resets${onEngine(engine)}`, closeVariant, c, engine, c.port + 100 * i);
});
