import { constants } from 'node:os';

/** The exit code of a command stopped by `sig`, as a shell reports it: 128 + the signal's number (SIGINT 130, SIGTERM 143). */
export function signalExitCode(sig: NodeJS.Signals): number {
  return 128 + (constants.signals[sig] ?? 0);
}
