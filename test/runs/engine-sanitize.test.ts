// The native engine built with AddressSanitizer and UBSan
// (SOCKSPIKE_ENGINE_SANITIZE=1 node native/build.js, into
// native/build/engine-sanitize/) runs short client + server workloads that
// go through its paths: partial writes of large requests, split writes,
// every close variant's path, keep-alive, the open loop, two client
// processes, a stop in the middle. Any sanitizer report fails the test.
// Skipped, with the reason, where the compiler has no sanitizer runtime.
import test from 'ava';
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { ENGINE_SANITIZED_BINARY } from '../../harness/engine.ts';
import { assertAccounting, readSummaryFile, ROOT, sockspike, tempDir } from '../helpers/cli.ts';

const SOURCES = join(ROOT, 'native', 'engine');

/** Build the sanitized engine when missing or older than a source; null when built, else why not. */
function buildSanitized(): string | null {
  const newest = Math.max(...readdirSync(SOURCES).map((f) => statSync(join(SOURCES, f)).mtimeMs));
  if (existsSync(ENGINE_SANITIZED_BINARY) && statSync(ENGINE_SANITIZED_BINARY).mtimeMs >= newest) return null;
  const r = spawnSync(process.execPath, [join(ROOT, 'native', 'build.js')], {
    env: { ...process.env, SOCKSPIKE_ENGINE_SANITIZE: '1' },
    encoding: 'utf8',
    timeout: 120_000,
  });
  if (r.status === 0 && existsSync(ENGINE_SANITIZED_BINARY)) return null;
  return (r.stderr || r.stdout || `exit ${r.status}`).trim().split('\n')[0];
}

const WORKLOADS: string[][] = [
  ['--transactions', '1500', '--concurrency', '4', '--close', 'server-fin', '--split-writes', '3'],
  ['--transactions', '300', '--concurrency', '3', '--close', 'client-rst', '--request-bytes', '300000', '--response-bytes', '7', '--exchanges', '3'],
  ['--transactions', '600', '--concurrency', '2', '--close', 'server-rst', '--server-exchanges', '1'],
  ['--rate', '800', '--arrivals', 'poisson', '--duration', '1s', '--close', 'keepalive', '--per-connection', '7'],
  ['--transactions', '600', '--client-processes', '2', '--concurrency', '4', '--close', 'linger:1', '--think-time', '1ms'],
];

const REPORT = /ERROR: AddressSanitizer|ERROR: LeakSanitizer|runtime error:|SUMMARY: (Address|Undefined|Leak)/;

test('the engine under AddressSanitizer and UBSan: every workload runs clean', async (t) => {
  const why = buildSanitized();
  if (why !== null) {
    // gcc without libasan (Debian: it comes with gcc; .ci/apt-packages.txt installs gcc)
    t.log(`skipped: the sanitized engine could not be built (${why})`);
    t.pass();
    return;
  }
  const env = {
    NO_COLOR: '1',
    SOCKSPIKE_ENGINE_BIN: ENGINE_SANITIZED_BINARY,
    ASAN_OPTIONS: 'detect_leaks=1:abort_on_error=0:exitcode=86',
    UBSAN_OPTIONS: 'print_stacktrace=1:halt_on_error=1:exitcode=87',
  };
  for (const args of WORKLOADS) {
    const dir = join(tempDir(t), 'run');
    const r = await sockspike(['run', ...args, '--engine', 'native', '--no-probes', '--no-progress', '--out', dir], { env, timeout: 120_000 });
    const logs = readdirSync(dir)
      .filter((f) => f.endsWith('.log'))
      .map((f) => `${f}:\n${readFileSync(join(dir, f), 'utf8')}`)
      .join('\n');
    t.notRegex(logs, REPORT, `sanitizer report with ${args.join(' ')}`);
    t.is(r.exitCode, 0, `${args.join(' ')}: ${String(r.stderr)}\n${logs.slice(0, 4000)}`);
    const s = readSummaryFile(dir);
    assertAccounting(t, s);
    t.true(s.transactions.attempted > 0);
    t.log(`${args.join(' ')}: ${JSON.stringify(s.transactions)}`);
  }
  // a stop in the middle: Ctrl-C's path, transactions in flight aborted
  const dir = join(tempDir(t), 'stopped');
  const cli = sockspike(['run', '--duration', '30s', '--concurrency', '3', '--engine', 'native', '--no-probes', '--out', dir], { env, timeout: 60_000 });
  await new Promise((r) => setTimeout(r, 2500));
  cli.kill('SIGINT');
  const r = await cli;
  t.is(r.exitCode, 130, String(r.stderr));
  const logs = ['client.log', 'server.log'].map((f) => readFileSync(join(dir, f), 'utf8')).join('\n');
  t.notRegex(logs, REPORT);
  assertAccounting(t, readSummaryFile(dir));
});
