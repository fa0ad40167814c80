import type { RunConfig } from '../lib/types.ts';

// IPC between the run (parent) and its client and server processes.

export interface StartMessage {
  type: 'start';
  config: RunConfig;
  /** CLOCK_MONOTONIC ns at the run's start, as a decimal string. */
  t0: string;
  runDir: string;
  /** File this process records into (relative to runDir). */
  file: string;
  /** Send progress messages (the parent shows them on a terminal). */
  progress: boolean;
  /** Client process `index` of `of` (--client-processes): it runs its share of the load. */
  part?: { index: number; of: number };
  /** To the native engine only: the configuration as k=v pairs (harness/engine.ts engineArgs). */
  engineArgs?: string;
}

export interface StopMessage {
  type: 'stop';
  reason: string;
}

/** A fault window: the built-in server's accept delay from now on. */
export interface AcceptDelayMessage {
  type: 'accept-delay';
  ns: number;
}

export type ToChild = StartMessage | StopMessage | AcceptDelayMessage;

export interface ListeningMessage {
  type: 'listening';
  port: number;
  /** fd of the listening socket in the server process (for the listen-queue probe). */
  fd: number;
  notes: string[];
}

export interface ProgressMessage {
  type: 'progress';
  attempted: number;
  ok: number;
  failed: number;
  timedOut: number;
  inflight: number;
  p99Us: number;
}

export interface DoneMessage {
  type: 'done';
  attempted: number;
  ok: number;
  failed: number;
  timedOut: number;
  /** Open loop: intended starts that never began before the run ended. */
  missedStarts: number;
  /** ns since t0 of the first start and of the last end. */
  firstStartNs: number;
  lastEndNs: number;
  notes: string[];
  /** The process's own CPU (utime + stime, s) at its end; the native engine sends it (the bench reads it when the process is already gone). */
  cpuS?: number;
}

export interface FailedMessage {
  type: 'failed';
  /** One line for the user. */
  message: string;
  code?: string;
}

/** The client began its first transactions. */
export interface StartedMessage {
  type: 'started';
}

export type FromChild = ListeningMessage | ProgressMessage | DoneMessage | FailedMessage | StartedMessage;
