import type { Cause, HarnessCheck, RunConfig, Summary } from '../../lib/types.ts';
import type { CpuOwners } from './cpu-owners.ts';

export type { Cause, HarnessCheck };

// What every cause module reads (CauseInput, built by input.ts from a run
// directory, or by hand in tests) and what it returns (Cause).

export type Modes = NonNullable<Summary['outliers']['modes']>;
export type Phases = NonNullable<Summary['outliers']['phases']>;

/** One probe metric around the outliers against the rest of the load. */
export interface MetricNear {
  unit: string;
  /** counter: a delta per sample; gauge / fraction: a level. */
  kind: string;
  /** Counters: total over the rows near outliers; others: mean over them. */
  near: number;
  /** Counters: total over the other rows of the load; others: mean over them. */
  otherwise: number;
  /** Largest single-row value near outliers. */
  nearMax: number;
  /** Largest single-row value over the whole load. */
  max: number;
  nearRows: number;
  otherRows: number;
  /** Time (ns since t0) of the row near outliers with the largest value (NaN: none). */
  nearMaxAtNs: number;
}

/** Per-transaction evidence on the outliers (those not put down to the harness), from the joins. */
export interface TxnEvidence {
  /** TCP_INFO before close: outliers / normal transactions read, and how many had total_retrans > 0 (null: not recorded). */
  tcpInfo: { outliers: number; outliersRetrans: number; normal: number; normalRetrans: number } | null;
  /** Kernel events joined to transactions (null: no events file). */
  kernel: {
    events: number;
    /** Outliers (of those kept) that started once kernel events were recorded: the denominator of the counts below. */
    outliers: number;
    /** ns since t0 from which kernel events were recorded (bpftrace attached). */
    fromNs: number;
    outliersWithSynRetrans: number;
    outliersWithRetrans: number;
    /** Outliers whose only data/FIN retransmits were spurious (the peer dropped them as data it already had): not counted above. */
    outliersWithSpuriousRetrans?: number;
    /** Recorded, plus those estimated from the kernel's counts (outliersWithResetEstimated). */
    outliersWithReset: number;
    /**
     * Outliers whose resets were only counted in the kernel (resets came with
     * every connection): how many, and how many of them are estimated to have
     * had one (included in outliersWithReset); null when every reset was recorded.
     */
    outliersWithResetEstimated?: { outliers: number; withReset: number } | null;
    normalWithSynRetrans: number;
    normal: number;
  } | null;
  /** Server accept records joined by port and time (null: no server records). */
  server: { outliersMatched: number; medianAcceptAfterStartUs: number | null } | null;
}

export interface CauseInput {
  config: Pick<RunConfig, 'close' | 'nodelay' | 'splitWrites' | 'backlog' | 'exchanges' | 'concurrency' | 'acceptDelayNs'> & Partial<RunConfig>;
  sysctls: Record<string, string>;
  transactions: { attempted: number; failed: number; errors: Record<string, number> };
  latencyP50Us: number;
  outliers: {
    thresholdUs: number;
    /** Every outlier. */
    total: number;
    /** Outliers left after those put down to the harness. */
    count: number;
    /** Modes and phases of the outliers left (the summary's when none were excluded). */
    modes: Modes;
    phases: Phases | null;
    /** Outcomes other than ok among the outliers left. */
    errors: Record<string, number>;
    firstNs: number;
    lastNs: number;
  };
  /** The load's start (the first transaction's intended start), ns since t0: times in the texts count from it (absent: from t0). */
  loadStartNs?: number;
  /** Probe metrics near the outliers left (empty: no probes). */
  metrics: Record<string, MetricNear>;
  /** Mean interval between probe samples, ns (0: no probes). */
  probeIntervalNs: number;
  /** Whose CPU: busy cores around the outliers by owner (null: no CPU samples). */
  cpu?: CpuOwners | null;
  txn: TxnEvidence;
  harness: HarnessCheck | null;
}

export interface CauseModule {
  id: string;
  title: string;
  /** The evidence it uses, for people. */
  needs: string[];
  match(input: CauseInput): Cause | null;
}
