import type { ChildProcess } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { createServer, connect } from 'node:net';
import { execa, type Options } from 'execa';
import { formatNs } from '../../lib/format.ts';
import { UserError } from '../../lib/errors.ts';
import type { RunConfig } from '../../lib/types.ts';
import { dyingWithUs } from '../../lib/parent-death.ts';
import { systemBinary } from '../../lib/system-binary.ts';
import { listeningInodes } from '../../probes/listen-queue.ts';
import type { Child } from '../children.ts';
import type { FromChild, ToChild } from '../messages.ts';

// --server-cmd: the user's own server as a child process. It gets the run's
// port ({port} in the command, SOCKSPIKE_PORT in its environment), its
// output goes to a log file of the run directory, and it runs in a process
// group of its own so that stopping it (SIGTERM, then SIGKILL after a
// grace period) also stops whatever it forked (nginx's workers, say).
// It looks like the built-in server to the run: a Child that reports
// 'listening' once the port accepts connections, or 'failed' after the
// bounded wait.

/** Between SIGTERM and SIGKILL when the run stops the server. */
export const STOP_GRACE_MS = 3000;
const POLL_MS = 50;

/** A free TCP port on host (the kernel's choice), for a server that is told its port. */
export function freePort(host: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', (err) => reject(new UserError(`cannot find a free port on ${host}: ${err.message}`)));
    s.listen({ host, port: 0, exclusive: true }, () => {
      const a = s.address();
      const port = typeof a === 'object' && a !== null ? a.port : 0;
      s.close(() => resolve(port));
    });
  });
}

/** Nothing listens on host:port yet, or the server we start would not be the one we measure. */
export function checkPortFree(host: string, port: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', (err: NodeJS.ErrnoException) =>
      reject(new UserError(`--port ${port}: ${err.code === 'EADDRINUSE' ? 'already in use on ' + host : err.message}: pick another port or leave --port out`)),
    );
    s.listen({ host, port, exclusive: true }, () => s.close(() => resolve()));
  });
}

/** One connect attempt: true if host:port accepted it. */
export function accepts(host: string, port: number, timeoutMs = 1000): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect({ host, port });
    const done = (ok: boolean): void => {
      clearTimeout(timer);
      s.removeAllListeners();
      s.on('error', () => {});
      s.destroy();
      resolve(ok);
    };
    const timer = setTimeout(() => done(false), timeoutMs);
    s.once('connect', () => done(true));
    s.once('error', () => done(false));
  });
}

/** A socket listening on `port` in the network namespace of process `pid`. */
function listensIn(pid: number | undefined, port: number): boolean {
  if (pid === undefined) return false;
  try {
    return listeningInodes(port, `/proc/${pid}`).length > 0;
  } catch {
    return false;
  }
}

/** The command with {port} and {host} filled in. */
export const fillCommand = (command: string, host: string, port: number): string => command.replaceAll('{port}', String(port)).replaceAll('{host}', host);

/** The command to give /bin/sh: `exec` in front where it is one simple command, so the server itself has the PID we probe. */
export function commandLine(command: string, host: string, port: number): string {
  const filled = fillCommand(command, host, port);
  return /[;&|\n]/.test(filled) ? filled : `exec ${filled}`;
}

const alive = (p: ChildProcess): boolean => p.exitCode === null && p.signalCode === null;

/** Signal the server's whole process group (ours: it was started in a session of its own). */
function signalGroup(pid: number | undefined, sig: NodeJS.Signals): void {
  if (pid === undefined) return;
  try {
    process.kill(-pid, sig);
  } catch {
    // the group is gone already
  }
}

/** With `netns`, the command runs inside the run's namespace, and readiness is its listening socket there. */
export function startServerCommand(cfg: RunConfig, logPath: string, onMessage: (m: FromChild) => void, netns: string | null = null): Child {
  const ext = cfg.external;
  if (ext?.kind !== 'command') throw new Error('startServerCommand needs --server-cmd');
  const options = {
    detached: true, // a process group of its own: stopped as one, and Ctrl-C on our terminal is ours to pass on
    stdin: 'ignore',
    stdout: { file: logPath, append: true },
    stderr: { file: logPath, append: true },
    env: { SOCKSPIKE_PORT: String(cfg.port), SOCKSPIKE_HOST: cfg.host },
    reject: false,
    buffer: false,
  } as const satisfies Options;
  const line = commandLine(ext.command, cfg.host, cfg.port);
  // ip netns exec execs the shell, which execs a simple command: the PID stays the server's
  // under setpriv --pdeathsig: the kernel kills it should sockspike die without stopping it (SIGKILL)
  const [file, args] = dyingWithUs(
    ...((netns === null ? ['/bin/sh', ['-c', line]] : [systemBinary('ip'), ['netns', 'exec', netns, '/bin/sh', '-c', line]]) as [string, string[]]),
  );
  const sub = execa(file, args, options);
  // execa's subprocess is a node ChildProcess at run time (its type hides some of the methods)
  const proc = sub as unknown as ChildProcess;
  // last resort: if sockspike itself exits without stopping the server (a crash), its group goes with it
  const onExit = (): void => signalGroup(proc.pid, 'SIGKILL');
  process.on('exit', onExit);
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    void sub.then((r) => {
      // the leader is gone: anything it left in its group is ours to end
      signalGroup(proc.pid, 'SIGKILL');
      process.off('exit', onExit);
      resolve({ code: r.exitCode ?? null, signal: (r.signal as NodeJS.Signals | undefined) ?? null });
    });
  });
  let stopping = false;
  const t0 = Date.now();
  void (async () => {
    const until = t0 + ext.waitNs / 1e6;
    while (!stopping && alive(proc)) {
      // in the run's namespace our own connect would miss it: look for the listening socket in the server's /proc/PID/net
      const ready = netns === null ? await accepts(cfg.host, cfg.port, Math.max(50, Math.min(1000, until - Date.now()))) : listensIn(proc.pid, cfg.port);
      if (ready) {
        if (alive(proc) && !stopping)
          onMessage({
            type: 'listening',
            port: cfg.port,
            fd: -1,
            notes: [
              `server: \`${fillCommand(ext.command, cfg.host, cfg.port)}\` (pid ${proc.pid}), accepting on ${cfg.host}:${cfg.port} after ${formatNs((Date.now() - t0) * 1e6)}`,
            ],
          });
        return;
      }
      if (Date.now() >= until) {
        onMessage({
          type: 'failed',
          message: `the server command did not accept connections on ${cfg.host}:${cfg.port} within ${formatNs(ext.waitNs)} (--server-wait); its output is in ${logPath}`,
        });
        return;
      }
      await new Promise((r) => setTimeout(r, POLL_MS));
    }
  })();
  return {
    proc,
    role: 'server',
    exited,
    send(m: ToChild) {
      if (m.type !== 'stop' || stopping || !alive(proc)) return;
      stopping = true;
      signalGroup(proc.pid, 'SIGTERM');
      setTimeout(() => signalGroup(proc.pid, 'SIGKILL'), STOP_GRACE_MS).unref();
    },
  };
}

/** The server's child processes right now (nginx's workers, say), to be probed beside it. */
export function childPids(pid: number | undefined): number[] {
  if (pid === undefined || pid <= 0) return [];
  const out: number[] = [];
  let tasks: string[] = [];
  try {
    tasks = readdirSync(`/proc/${pid}/task`);
  } catch {
    return out;
  }
  for (const tid of tasks) {
    try {
      for (const k of readFileSync(`/proc/${pid}/task/${tid}/children`, 'utf8').trim().split(/\s+/)) if (k !== '') out.push(Number(k));
    } catch {
      // the task ended
    }
  }
  return out;
}
