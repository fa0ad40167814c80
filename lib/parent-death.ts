import { systemBinary } from './system-binary.ts';

// A child that must not outlive sockspike and cannot notice by itself that
// it is gone (bpftrace, a --server-cmd server: unlike our Node children they
// have no IPC channel to watch) runs under `setpriv --pdeathsig KILL`: the
// kernel then kills it when sockspike's process ends, even by SIGKILL. The
// setting survives setpriv's exec of the command, so the pid stays the
// command's. Without setpriv (util-linux), the command runs as it is.

const SETPRIV = systemBinary('setpriv');
const HAS_SETPRIV = SETPRIV.startsWith('/');

/** [file, args] that run `file args` so that it dies with this process. */
export function dyingWithUs(file: string, args: string[]): [string, string[]] {
  return HAS_SETPRIV ? [SETPRIV, ['--pdeathsig', 'KILL', '--', file, ...args]] : [file, args];
}
