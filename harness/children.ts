import { fork, spawn, type ChildProcess } from 'node:child_process';
import { openSync, closeSync } from 'node:fs';
import type { FromChild, ToChild } from './messages.ts';
import { moduleExecArgv, moduleFile } from '../lib/paths.ts';
import { systemBinary } from '../lib/system-binary.ts';
import { engineArgs, engineBinary, type EngineKind } from './engine.ts';

// Start the harness's own child processes (client, server): the native
// engine's program, or the Node modules compiled or from sources as this
// process runs; their output captured in a log file of the run directory.

export interface Child {
  proc: ChildProcess;
  role: string;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  send(m: ToChild): void;
}

/** The modules that run as the harness's child processes, by source path from the package root. */
export type ChildEntry = 'harness/workload/client-main.ts' | 'harness/workload/server-main.ts';

/** With `netns`, the child runs inside that network namespace (ip netns exec keeps the IPC fd and the PID). */
export function startChild(role: string, entry: ChildEntry, logPath: string, onMessage: (m: FromChild) => void, netns: string | null = null): Child {
  const log = openSync(logPath, 'a');
  const node = moduleExecArgv();
  const proc = fork(moduleFile(entry), [], {
    ...(netns === null ? { execArgv: node } : { execPath: systemBinary('ip'), execArgv: ['netns', 'exec', netns, process.execPath, ...node] }),
    stdio: ['ignore', log, log, 'ipc'],
    serialization: 'json',
  });
  closeSync(log);
  return wrap(proc, role, onMessage);
}

/**
 * The engine's program (native/engine/) as a client or server process. It
 * speaks the same messages over Node's IPC channel (NODE_CHANNEL_FD, one
 * JSON object per line); its start message also carries `engineArgs`.
 */
export function startEngineChild(
  role: string,
  kind: 'client' | 'server',
  logPath: string,
  onMessage: (m: FromChild) => void,
  netns: string | null = null,
): Child {
  const log = openSync(logPath, 'a');
  const bin = engineBinary();
  const proc =
    netns === null
      ? spawn(bin, [kind], { stdio: ['ignore', log, log, 'ipc'], serialization: 'json' })
      : spawn(systemBinary('ip'), ['netns', 'exec', netns, bin, kind], { stdio: ['ignore', log, log, 'ipc'], serialization: 'json' });
  closeSync(log);
  const child = wrap(proc, role, onMessage);
  return { ...child, send: (m: ToChild) => child.send(m.type === 'start' ? { ...m, engineArgs: engineArgs(m) } : m) };
}

/** The built-in client or server on the run's engine. */
export function startWorkloadChild(
  role: string,
  kind: 'client' | 'server',
  engine: EngineKind,
  logPath: string,
  onMessage: (m: FromChild) => void,
  netns: string | null = null,
): Child {
  if (engine === 'native') return startEngineChild(role, kind, logPath, onMessage, netns);
  return startChild(role, kind === 'client' ? 'harness/workload/client-main.ts' : 'harness/workload/server-main.ts', logPath, onMessage, netns);
}

function wrap(proc: ChildProcess, role: string, onMessage: (m: FromChild) => void): Child {
  proc.on('message', (m) => onMessage(m as FromChild));
  // a child that has just gone (EPIPE on send) is seen through 'close'
  proc.on('error', () => {});
  // 'close', not 'exit': it comes once the IPC channel is drained too, so a
  // 'done' the child sent just before exiting is never lost to the race
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    proc.once('close', (code, signal) => resolve({ code, signal })),
  );
  return {
    proc,
    role,
    exited,
    send(m: ToChild) {
      if (proc.connected) proc.send(m, () => {});
    },
  };
}

/** Wait for a child that was asked to stop; SIGKILL it after the grace period. */
export async function endChild(c: Child, graceMs: number): Promise<void> {
  if (c.proc.exitCode !== null || c.proc.signalCode !== null) return;
  const timer = setTimeout(() => c.proc.kill('SIGKILL'), graceMs);
  await c.exited;
  clearTimeout(timer);
}

export function exitText(e: { code: number | null; signal: NodeJS.Signals | null }): number | string {
  return e.signal ?? e.code ?? 'unknown';
}
