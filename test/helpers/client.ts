// Drive the harness's client process on its own (no run, no built-in
// server): the engine the config names, as harness/children.ts starts it:
// the native engine's program (native/build/engine/sockspike-engine), or
// the compiled Node client (dist/harness/workload/client-main.js, built by
// `npm test` before the tests); send it a StartMessage, wait for its
// DoneMessage and its exit, then read back what it recorded.
import type { ExecutionContext } from 'ava';
import { fork, spawn } from 'node:child_process';
import { closeSync, existsSync, openSync } from 'node:fs';
import { join } from 'node:path';
import { DEFAULTS, resolveConfig, type RunOptions } from '../../harness/config.ts';
import { engineArgs, engineBinary } from '../../harness/engine.ts';
import type { DoneMessage, FromChild, StartMessage } from '../../harness/messages.ts';
import { readTransactions, type TxnColumns } from '../../analysis/read-run.ts';
import { summarize } from '../../analysis/summarize.ts';
import { monoNs } from '../../lib/clock.ts';
import { SCHEMA_VERSION, type RunManifest } from '../../lib/run-files.ts';
import type { RunConfig, Summary } from '../../lib/types.ts';

import { ROOT } from './cli.ts';

const CLIENT = join(ROOT, 'dist', 'harness', 'workload', 'client-main.js');

/** A validated config as the CLI would make it: DEFAULTS, then the given flags (no --duration unless given). */
export function clientConfig(flags: Partial<RunOptions>): RunConfig {
  return resolveConfig({ ...DEFAULTS, duration: undefined, ...flags } as RunOptions);
}

export interface ClientRun {
  done: DoneMessage | null;
  exit: { code: number | null; signal: NodeJS.Signals | null };
  txns: TxnColumns;
  summary: Summary;
  manifest: RunManifest;
  /** Date.now() when the stop was sent (stopAfterMs), and when the process exited. */
  stopSentAt: number | null;
  exitedAt: number;
}

/**
 * Run the client process with `config` into `dir`; it must finish within
 * timeoutMs (then it is killed, by pid, and the test fails). With
 * stopAfterMs, it is told to stop that long after it reports its first
 * transactions (its start-up is not counted).
 */
export async function runClient(
  t: ExecutionContext,
  config: RunConfig,
  dir: string,
  timeoutMs = 60_000,
  opts: { stopAfterMs?: number } = {},
): Promise<ClientRun> {
  const native = config.engine === 'native';
  if (!native && !existsSync(CLIENT)) throw new Error(`${CLIENT} is missing: run \`npm run build\` (npm test does)`);
  const t0 = monoNs();
  const log = openSync(join(dir, 'client.log'), 'a');
  const child = native
    ? spawn(engineBinary(), ['client'], { stdio: ['ignore', log, log, 'ipc'], serialization: 'json' })
    : fork(CLIENT, [], { execArgv: [], stdio: ['ignore', log, log, 'ipc'], serialization: 'json' });
  closeSync(log);
  t.teardown(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  });
  let done: DoneMessage | null = null;
  let stopSentAt: number | null = null;
  let stopTimer: NodeJS.Timeout | undefined;
  // as the run does on Ctrl-C: ask the client to stop
  const stop = (): void => {
    stopSentAt = Date.now();
    if (child.connected) child.send({ type: 'stop', reason: 'test' });
  };
  child.on('message', (m: FromChild) => {
    if (m.type === 'done') done = m;
    if (m.type === 'started' && opts.stopAfterMs !== undefined) stopTimer = setTimeout(stop, opts.stopAfterMs);
  });
  child.on('error', () => {});
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.once('exit', (code, signal) => resolve({ code, signal })),
  );
  const start: StartMessage = { type: 'start', config, t0: t0.toString(), runDir: dir, file: 'transactions.bin', progress: false };
  child.send(native ? { ...start, engineArgs: engineArgs(start) } : start);
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<null>((resolve) => (timer = setTimeout(() => resolve(null), timeoutMs)));
  const exit = await Promise.race([exited, timeout]);
  const exitedAt = Date.now();
  clearTimeout(timer);
  clearTimeout(stopTimer);
  if (exit === null) {
    child.kill('SIGKILL');
    throw new Error(`the client process did not finish within ${timeoutMs} ms`);
  }
  const manifest = {
    schemaVersion: SCHEMA_VERSION,
    tool: 'sockspike',
    status: 'complete',
    stopReason: null,
    config,
    files: { transactions: ['transactions.bin'], server: [] },
    workload: null,
  } as unknown as RunManifest;
  const txns = readTransactions(dir, manifest);
  return { done, exit, txns, summary: summarize(manifest, txns, null), manifest, stopSentAt, exitedAt };
}
