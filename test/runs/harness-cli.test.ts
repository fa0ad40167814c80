// The command line: bad input gets one line and exit code 2 (never a stack
// trace), `analyze` refuses a corrupt run directory the same way, `--json`
// prints the documented summary, `--help` lists every flag with its default.
import test, { type ExecutionContext } from 'ava';
import { Command } from 'commander';
import { cpSync, existsSync, readFileSync, truncateSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { DEFAULTS } from '../../harness/config.ts';
import { register as registerRun } from '../../cli/run.ts';
import type { PhaseStats, Summary } from '../../lib/types.ts';
import { assertAccounting, killLeftoversOnTeardown, leftoverProcesses, lines, readManifestFile, readSummaryFile, sockspike, tempDir } from '../helpers/cli.ts';

/** One line on stderr, exit 2, no stack trace. */
function assertUserError(t: ExecutionContext, r: { exitCode?: number; stderr: unknown; stdout: unknown }, what: RegExp, label: string): void {
  const err = String(r.stderr);
  t.is(r.exitCode, 2, `${label}: exit ${r.exitCode}; stderr: ${err}`);
  t.is(lines(err).length, 1, `${label}: stderr has ${lines(err).length} lines: ${err}`);
  t.false(err.includes('    at '), `${label}: stack trace on stderr`);
  t.false(String(r.stdout).includes('    at '), `${label}: stack trace on stdout`);
  t.regex(err, what, label);
}

const BAD_INPUT: Array<{ label: string; args: string[]; what: RegExp }> = [
  { label: 'unknown flag', args: ['--frobnicate', '3'], what: /unknown option '--frobnicate'/ },
  { label: 'negative count', args: ['--transactions', '-5'], what: /--transactions/ },
  { label: 'zero concurrency', args: ['--concurrency', '0'], what: /--concurrency/ },
  { label: 'unknown close variant', args: ['--close', 'client-fim'], what: /--close.*client-fim/ },
  { label: 'linger without a timeout', args: ['--close', 'linger'], what: /linger:N/ },
  { label: 'non-loopback host', args: ['--host', '192.0.2.1'], what: /--host 192\.0\.2\.1.*loopback/ },
  { label: 'wildcard host', args: ['--host', '0.0.0.0'], what: /loopback/ },
  { label: 'bad duration', args: ['--duration', 'forever'], what: /--duration.*forever/ },
  { label: 'bad rate', args: ['--rate', '-100'], what: /--rate/ },
  { label: 'bad arrivals', args: ['--rate', '10', '--arrivals', 'burst'], what: /--arrivals|burst/ },
  { label: 'split writes above request size', args: ['--request-bytes', '4', '--split-writes', '8'], what: /--split-writes/ },
];

test('bad input: exit 2, one line, no stack trace, no run directory', async (t) => {
  const base = tempDir(t);
  const results = await Promise.all(
    BAD_INPUT.map((c, i) => {
      const limit = c.args.includes('--transactions') ? [] : ['--transactions', '1'];
      return sockspike(['run', ...limit, ...c.args, '--out', join(base, `r${i}`)]);
    }),
  );
  results.forEach((r, i) => {
    assertUserError(t, r, BAD_INPUT[i].what, BAD_INPUT[i].label);
    t.false(existsSync(join(base, `r${i}`)), `${BAD_INPUT[i].label}: nothing should start`);
  });
});

test('port in use: exit 2, one line that names the port, no process left', async (t) => {
  const holder = createServer();
  await new Promise<void>((r) => holder.listen(0, '127.0.0.1', r));
  t.teardown(() => holder.close());
  const port = (holder.address() as { port: number }).port;
  const dir = join(tempDir(t), 'run');
  killLeftoversOnTeardown(t, dir);
  // in the host's namespace, where the port is taken (a namespace of the run's own has it free)
  const r = await sockspike(['run', '--no-netns', '--transactions', '5', '--port', String(port), '--out', dir]);
  assertUserError(t, r, new RegExp(`port ${port} is in use`), 'port in use');
  // the run directory says what happened, and the server it started is gone
  const m = readManifestFile(dir);
  t.is(m.status, 'failed');
  t.deepEqual(leftoverProcesses(m), []);
});

test('unwritable --out: exit 2, one line naming the directory', async (t) => {
  const base = tempDir(t);
  const file = join(base, 'a-file');
  writeFileSync(file, 'not a directory\n');
  const r = await sockspike(['run', '--transactions', '1', '--out', join(file, 'sub', 'run')]);
  assertUserError(t, r, /cannot write the run directory .*a-file\/sub\/run.*--out/, 'out under a regular file');
  t.is(readFileSync(file, 'utf8'), 'not a directory\n');
});

/** A small complete run, reused by the analyze and --json tests. */
async function smallRun(t: ExecutionContext, extra: string[] = []): Promise<{ dir: string; stdout: string }> {
  const dir = join(tempDir(t), 'run');
  killLeftoversOnTeardown(t, dir);
  const r = await sockspike(['run', '--transactions', '40', ...extra, '--out', dir]);
  t.is(r.exitCode, 0, String(r.stderr));
  return { dir, stdout: String(r.stdout) };
}

test('analyze: rebuilds the same summary from the directory; refuses corrupt directories with one line', async (t) => {
  const { dir } = await smallRun(t);
  const original = readSummaryFile(dir);
  const again = await sockspike(['analyze', dir, '--json']);
  t.is(again.exitCode, 0, String(again.stderr));
  t.deepEqual(JSON.parse(String(again.stdout)), original, "analyze gives back the run's own summary");
  t.true(existsSync(join(dir, 'report.md')));

  const variants: Array<{ label: string; spoil: (d: string) => void; what: RegExp }> = [
    { label: 'transactions.bin header cut', spoil: (d) => truncateSync(join(d, 'transactions.bin'), 10), what: /corrupt run directory.*transactions\.bin/ },
    { label: 'transactions.bin wrong magic', spoil: (d) => writeFileSync(join(d, 'transactions.bin'), Buffer.alloc(64, 0x41)), what: /corrupt run directory/ },
    {
      label: 'run.json garbled',
      spoil: (d) => writeFileSync(join(d, 'run.json'), '{"schemaVersion": 1, "tool": "socks'),
      what: /corrupt run directory.*run\.json/,
    },
    { label: 'run.json of another tool', spoil: (d) => writeFileSync(join(d, 'run.json'), '{"hello": "world"}\n'), what: /corrupt run directory.*run\.json/ },
    { label: 'server.bin header cut', spoil: (d) => truncateSync(join(d, 'server.bin'), 3), what: /corrupt run directory.*server\.bin/ },
  ];
  const base = tempDir(t);
  const results = await Promise.all(
    variants.map((v, i) => {
      const copy = join(base, `c${i}`);
      cpSync(dir, copy, { recursive: true });
      v.spoil(copy);
      return sockspike(['analyze', copy]);
    }),
  );
  results.forEach((r, i) => assertUserError(t, r, variants[i].what, variants[i].label));
  assertUserError(t, await sockspike(['analyze', join(base, 'nowhere')]), /not a run directory/, 'missing directory');
  assertUserError(t, await sockspike(['export', join(base, 'c0')]), /corrupt run directory/, 'export of a corrupt directory');
});

const isInt = (v: unknown): boolean => typeof v === 'number' && Number.isInteger(v);

function assertPhase(t: ExecutionContext, name: string, p: PhaseStats, count: number): void {
  for (const k of ['count', 'p50', 'p90', 'p99', 'p999', 'max'] as const) t.true(isInt(p[k]), `latencyUs.${name}.${k} = ${p[k]} is not an integer`);
  t.is(p.count, count, `latencyUs.${name}.count`);
  t.true(p.p50 > 0, `latencyUs.${name}.p50 = ${p.p50}`);
  t.true(p.p50 <= p.p90 && p.p90 <= p.p99 && p.p99 <= p.p999 && p.p999 <= p.max, `latencyUs.${name} percentiles out of order: ${JSON.stringify(p)}`);
}

test('--json: stdout is summary.json with the documented fields', async (t) => {
  // --warmup 0: every transaction in the latencies, so their counts are the run's
  const { dir, stdout } = await smallRun(t, ['--json', '--warmup', '0', '--exchanges', '3', '--request-bytes', '1000', '--response-bytes', '2000']);
  let s: Summary;
  try {
    s = JSON.parse(stdout) as Summary;
  } catch {
    t.fail(`stdout is not JSON: ${stdout.slice(0, 200)}`);
    return;
  }
  t.deepEqual(s, readSummaryFile(dir), 'the same as summary.json');
  t.is(s.schemaVersion, 1);
  t.is(s.status, 'complete');
  const x = s.transactions;
  for (const k of ['attempted', 'ok', 'failed', 'timedOut'] as const) t.true(isInt(x[k]), `transactions.${k}`);
  t.is(typeof x.errors, 'object');
  assertAccounting(t, s);
  t.is(x.attempted, 40);
  t.is(x.ok, 40);
  t.deepEqual(x.errors, {});
  t.true(s.throughput.tps > 0 && s.throughput.mibps > 0, JSON.stringify(s.throughput));
  // consistent with the counts: 40 x 3 x (1000 + 2000) bytes over durationS
  t.true(s.durationS > 0);
  // durationS is rounded to ms: 40 transactions of the native engine take a few ms, so allow that rounding too
  const tol = 0.02 + 0.0005 / s.durationS;
  t.true(Math.abs(s.throughput.tps - x.ok / s.durationS) / s.throughput.tps < tol, `tps ${s.throughput.tps} vs ${x.ok}/${s.durationS}`);
  const mib = (x.ok * 3 * 3000) / 1048576 / s.durationS;
  t.true(Math.abs(s.throughput.mibps - mib) / mib < tol, `mibps ${s.throughput.mibps} vs ${mib}`);
  assertPhase(t, 'total', s.latencyUs.total, 40);
  assertPhase(t, 'connect', s.latencyUs.connect, 40);
  assertPhase(t, 'exchange', s.latencyUs.exchange, 120);
  assertPhase(t, 'close', s.latencyUs.close, 40);
  t.true(s.latencyUs.total.p50 >= s.latencyUs.connect.p50);
  t.true(isInt(s.outliers.thresholdUs) && s.outliers.thresholdUs > 0);
  t.true(isInt(s.outliers.count) && s.outliers.count >= 0 && s.outliers.count <= 40);
  t.false(stdout.includes('report:'), 'no text summary mixed into the JSON');
});

test('--outlier sets the threshold the summary counts against', async (t) => {
  const { dir } = await smallRun(t, ['--outlier', '1us', '--warmup', '0']);
  const s = readSummaryFile(dir);
  t.is(s.outliers.thresholdUs, 1);
  t.is(s.outliers.count, 40, 'every transaction takes longer than 1 us');
});

/** Help text as option blocks: the flag line plus its wrapped continuation lines, joined. */
function optionBlocks(help: string): Map<string, string> {
  const blocks = new Map<string, string>();
  let current: string | null = null;
  for (const line of help.split('\n')) {
    const m = /^\s{2}(?:-\w, )?(--[\w-]+)/.exec(line);
    if (m) {
      current = m[1];
      blocks.set(current, line.trim());
    } else if (current !== null && /^\s{4,}\S/.test(line)) blocks.set(current, `${blocks.get(current)} ${line.trim()}`);
    else current = null;
  }
  return blocks;
}

test('run --help lists every flag with its default', async (t) => {
  const r = await sockspike(['run', '--help']);
  t.is(r.exitCode, 0);
  const blocks = optionBlocks(String(r.stdout));
  // the flags as registered with commander
  const program = new Command();
  registerRun(program);
  const run = program.commands.find((c) => c.name() === 'run')!;
  const kebab = (k: string): string => '--' + k.replace(/[A-Z]/g, (c) => '-' + c.toLowerCase());
  for (const o of run.options) {
    const flag = o.long!;
    const block = blocks.get(flag);
    if (block === undefined) {
      t.fail(`${flag} is not in run --help`);
      continue;
    }
    if (o.required || o.optional) t.regex(block, /default/, `${flag} takes a value but its help gives no default: ${block}`);
  }
  for (const [key, value] of Object.entries(DEFAULTS)) {
    const block = blocks.get(kebab(key)) ?? '';
    t.true(block.includes(`default: "${value}"`) || block.includes(`default ${value}`), `${kebab(key)} does not show its default ${value}: ${block}`);
  }
  const top = await sockspike(['--help']);
  t.is(top.exitCode, 0);
  for (const sub of ['run', 'analyze', 'export']) t.regex(String(top.stdout), new RegExp(`^\\s+${sub} `, 'm'));
});
