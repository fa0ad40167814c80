import { constants } from 'node:os';

/** The exit code of a command stopped by `sig`, as a shell reports it: 128 + the signal's number (SIGINT 130, SIGTERM 143). */
export function signalExitCode(sig: NodeJS.Signals): number {
  return 128 + (constants.signals[sig] ?? 0);
}

export interface StopSignals {
  /** The first SIGINT or SIGTERM received (null: none yet). */
  readonly first: NodeJS.Signals | null;
  /** Take the handlers off again. */
  release(): void;
}

/**
 * Ctrl-C and SIGTERM as every long command of sockspike takes them:
 * `onSignal(sig, count)` for each one (count 1: stop cleanly and write what
 * there is; 2 and more: stop now), the first one remembered for the exit
 * code (signalExitCode).
 */
export function trapStopSignals(onSignal: (sig: NodeJS.Signals, count: number) => void = () => {}): StopSignals {
  let first: NodeJS.Signals | null = null;
  let count = 0;
  const handler = (sig: NodeJS.Signals): void => {
    first ??= sig;
    onSignal(sig, ++count);
  };
  process.on('SIGINT', handler);
  process.on('SIGTERM', handler);
  return {
    get first() {
      return first;
    },
    release() {
      process.off('SIGINT', handler);
      process.off('SIGTERM', handler);
    },
  };
}
