import type { ProbeResult, SkippedProbe } from './probe-files.ts';
import type { ListenerTarget } from './listen-queue.ts';

// IPC between run-probes.ts (the run's process) and sampler-process.ts.

export interface SamplerConfig {
  runDir: string;
  /** The run's t0, CLOCK_MONOTONIC ns, decimal (a bigint does not survive JSON). */
  t0: string;
  intervalNs: number;
  /** How often what is not read every sample is read (default sampler.ts SLOW_PERIOD_NS). */
  slowPeriodNs?: number;
  /** own: one of sockspike's own processes (CPU only, read at the own rate). */
  processes: { role: string; pid: number; own?: boolean }[];
  listener?: ListenerTarget;
  netns?: string | null;
  procRoot?: string;
  perCpu?: boolean | 'auto';
  sources?: string[];
}

export type ToSampler =
  | { type: 'start'; config: SamplerConfig }
  | { type: 'addProcess'; role: string; pid: number; own?: boolean }
  | { type: 'setListener'; listener: ListenerTarget }
  | { type: 'stop' };

export type FromSampler =
  | { type: 'ready'; skipped: SkippedProbe[]; columns: number; baselineNs: number }
  | { type: 'stopped'; result: ProbeResult }
  | { type: 'error'; message: string };
