// The data types every stage shares. One place, so the harness, probes,
// analysis and reports agree on names and units.

export const CLOSE_MODES = ['client-fin', 'server-fin', 'client-rst', 'server-rst', 'linger', 'keepalive'] as const;
export type CloseMode = (typeof CLOSE_MODES)[number];

/** The resolved configuration of a run, as written to run.json. Durations in ns. */
export interface RunConfig {
  host: string;
  port: number;
  /** Stop after this many attempted transactions (null: no count limit). */
  transactions: number | null;
  /** Stop after this long (null: no time limit). */
  durationNs: number | null;
  concurrency: number;
  requestBytes: number;
  responseBytes: number;
  exchanges: number;
  /** The built-in server closes after this many exchanges (a server that answers fewer than the client sends). */
  serverExchanges: number;
  thinkTimeNs: number;
  connectTimeoutNs: number;
  ioTimeoutNs: number;
  /** Open loop: transactions started per second (null: closed loop). */
  rate: number | null;
  arrivals: 'uniform' | 'poisson';
  /** Open loop: most transactions in flight at once. */
  maxInflight: number;
  close: CloseMode;
  /** For close = linger: SO_LINGER {1, lingerSeconds} on the client. */
  lingerSeconds: number;
  /** For close = keepalive: transactions carried by one connection. */
  perConnection: number;
  backlog: number;
  nodelay: boolean;
  splitWrites: number;
  acceptDelayNs: number;
  /** Absolute outlier threshold (null: derived from the distribution). */
  outlierUs: number | null;
  /** --warmup: transactions starting this long into the load are warm-up (null or absent: the first few of each worker; analysis/warmup.ts). */
  warmupNs?: number | null;
  probeIntervalNs: number;
  /** --probe-slow-interval: how often what is not read every sample is read (absent in older runs: 100 ms). */
  probeSlowIntervalNs?: number;
  /** Kernel events: which inet_sock_set_state transitions to record. */
  kernelStates: 'off' | 'handshake' | 'all';
  seed: number;
  /** Client processes sharing the load, each recording its own transactions file. */
  clientProcesses: number;
  /** Run server, client and network probes in a network namespace of the run's own. */
  netns: boolean;
  /** --sysctl KEY=VALUE, in the order given (where each went: run.json `kernel`). */
  sysctls: { key: string; value: string }[];
  /** Host-wide sysctls may be changed (journalled and restored). */
  hostSysctl: boolean;
  /** Injected faults, each in an optional window of the workload's time. */
  faults: FaultSpec[];
  /** The named preset this run started from (null: none). */
  scenario: string | null;
  /** Bring your own server (--server-cmd, --target); absent or null: the built-in server. */
  external?: ExternalServer | null;
  /** Protocol template (--request, --response-until); absent or null: the built-in echo pattern, checked byte for byte. */
  template?: ProtocolTemplate | null;
  /** What ran the built-in client and server (--engine): the native engine (native/engine/) or Node; absent in older runs: node. */
  engine?: 'native' | 'node';
}

export const FAULT_KINDS = ['syn-drop', 'data-drop', 'cpu-hog', 'accept-delay'] as const;
export type FaultKind = (typeof FAULT_KINDS)[number];

/** The catalogue cause each fault should show as: how a user learns to trust the diagnosis. */
export const EXPECTED_CAUSE: Record<FaultKind, string> = {
  'syn-drop': 'syn-loss',
  'data-drop': 'data-retransmit',
  'cpu-hog': 'cpu-saturation',
  'accept-delay': 'accept-queue-overflow',
};

/** One --fault: what, how much, and when (ns after the workload's start). */
export interface FaultSpec {
  /** As typed, e.g. "syn-drop:5%@2s-6s". */
  text: string;
  kind: FaultKind;
  /** syn-drop, data-drop: percent of segments; cpu-hog: processes; accept-delay: ns. */
  amount: number;
  fromNs: number;
  /** null: until the workload ends. */
  toNs: number | null;
}

/** What a fault actually did, for run.json: when it was on, in ns since t0. */
export interface FaultRecord extends FaultSpec {
  startNs: number | null;
  stopNs: number | null;
  /** Segments dropped (nft counters), processes started, ... one line each. */
  detail: string[];
}

/** A sysctl the run changed, where, and what it was. */
export interface SysctlRecord {
  key: string;
  value: string;
  scope: 'netns' | 'host';
  before: string;
  /** As read back after writing (the kernel may normalise it). */
  after: string;
}

/** A server that is not the built-in one: started from the user's command, or already running. */
export type ExternalServer =
  | {
      kind: 'command';
      /** The command as given, with {port} still in it. */
      command: string;
      /** How long to wait for the port to accept connections. */
      waitNs: number;
    }
  | { kind: 'target'; allowRemote: boolean };

/** When a response is complete: at the peer's FIN, after N bytes, or at a delimiter. */
export type ResponseUntil = { kind: 'close' } | { kind: 'bytes'; bytes: number } | { kind: 'delimiter'; delimiterBase64: string; text: string };

/** Each exchange sends this request; a response is complete per `until` (its bytes are not checked). */
export interface ProtocolTemplate {
  requestBase64: string;
  /** Where the request came from: --request "..." or --request-file PATH. */
  source: string;
  until: ResponseUntil;
}

/**
 * Outcome of a transaction (and of a server connection). The index is what
 * the binary records store; append only, never reorder.
 */
export const OUTCOMES = [
  'ok',
  'timeout', // our own connect or io timeout
  'ECONNREFUSED',
  'ECONNRESET',
  'EADDRNOTAVAIL',
  'ETIMEDOUT',
  'EPIPE',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'EADDRINUSE',
  'EMFILE',
  'ENFILE',
  'ENOBUFS',
  'ECONNABORTED',
  'short-response', // peer closed before the whole answer came
  'bad-response', // wrong bytes, or more bytes than asked for
  'stopped', // in flight when the run was stopped
  'EOTHER', // any other error code
] as const;
export type Outcome = (typeof OUTCOMES)[number];
export const OUTCOME_INDEX: Record<string, number> = Object.fromEntries(OUTCOMES.map((o, i) => [o, i]));
export const outcomeIndex = (code: string | undefined): number => OUTCOME_INDEX[code ?? 'EOTHER'] ?? OUTCOME_INDEX.EOTHER;
export const OUTCOME_OK = 0;
export const OUTCOME_TIMEOUT = 1;
export const OUTCOME_STOPPED = OUTCOME_INDEX.stopped;

/** A likely cause of a run's outliers (summary.json causes; analysis/causes/ finds them). */
export interface Cause {
  id: string;
  /** 0..1 */
  confidence: number;
  summary: string;
  evidence: string[];
  tryNext: string[];
  /**
   * Where the outliers came in separate spells (analysis/cause-windows.ts): the spells in which this
   * cause ranked first. Absent when the run is one spell.
   */
  windows?: CauseWindow[];
}

/** A spell of a run's outliers (ns since t0, by intended start) and its share of all outliers. */
export interface CauseWindow {
  fromNs: number;
  toNs: number;
  outliers: number;
  share: number;
}

/** The harness's self-check: which outliers were sockspike's own doing (summary.json selfCheck). */
export interface HarnessCheck {
  /** Outliers looked at (all of them). */
  outliers: number;
  /** Outliers that coincide with a stall of the harness's own processes. */
  stalled: number;
  byLoopDelay: number;
  byGc: number;
  /** Outliers whose event-loop stall came while other processes held the CPUs (not counted in stalled). */
  starved?: number;
  /** Self-monitor files read (0: no self-check possible). */
  monitors: number;
  /** Largest stall found overlapping an outlier, ms. */
  worstMs: number;
  /** A few examples, for the evidence. */
  examples: string[];
}

/** A probe that could not run here, and why (run.json, probes/meta.json, summary.json, the kernel-events header). */
export interface SkippedProbe {
  probe: string;
  reason: string;
}

export interface PhaseStats {
  count: number;
  p50: number;
  p90: number;
  p99: number;
  p999: number;
  max: number;
  mean: number;
}

/** summary.json: what a machine reads. Integer microseconds for latencies. */
export interface Summary {
  schemaVersion: number;
  status: RunStatus;
  stopReason: string | null;
  durationS: number;
  transactions: {
    attempted: number;
    ok: number;
    failed: number;
    timedOut: number;
    errors: Record<string, number>;
    /** Transactions the client counted that are missing from the records (should be 0). */
    unrecorded: number;
  };
  throughput: { tps: number; mibps: number };
  latencyUs: { total: PhaseStats; connect: PhaseStats; exchange: PhaseStats; close: PhaseStats; exchanges: PhaseStats[] };
  outliers: {
    thresholdUs: number;
    how: string;
    count: number;
    rate: number;
    /** The latency outliers' excess is measured from: median of the normal transactions (0: nearly all are outliers). */
    referenceUs?: number;
    /** Clusters of outlier latency, named after the kernel timer they match (null: none). */
    modes?: { label: string; count: number; share: number; minUs: number; medianUs: number; maxUs: number; timer: string | null }[];
    /** Which phase holds the outliers' excess time. */
    phases?: {
      dominant: string | null;
      rows: { phase: string; outliers: number; share: number; medianExcessUs: number; normalMedianUs: number | null; unfinished: number }[];
    };
  };
  /** Warm-up transactions: attempted and counted, kept out of the latencies and outliers (analysis/warmup.ts); absent in older summaries. */
  warmup?: { transactions: number; how: string };
  openLoop: null | {
    rate: number;
    lateStarts: number;
    lateThresholdUs: number;
    lateUs: { p50: number; p99: number; max: number };
    missedStarts: number;
  };
  server: { connections: number; resets: number; errors: Record<string, number> } | null;
  hdr: { unit: 'us'; total: string };
  /** Probe metrics compared in outlier windows against normal ones, strongest first (only with outliers and probes). */
  systemState?: {
    /** span: every sample an outlier overlaps; edges: only the samples at its start and end (when spans leave no normal time). */
    window: 'span' | 'edges';
    rows: { outlier: number; normal: number };
    metrics: {
      metric: string;
      unit: string;
      effect: number;
      qValue: number | null;
      outlierMedian: number;
      normalMedian: number;
      total: { outlier: number; normal: number } | null;
    }[];
  };
  /**
   * Likely causes of the outliers (and failures), best first; [] when none
   * fits (or nothing unusual happened). ids are stable: see analysis/causes/.
   */
  causes?: Cause[];
  /** Each injected fault against the diagnosis (absent: no faults). */
  faults?: {
    text: string;
    kind: FaultKind;
    expectedCause: string;
    /** When it was on, s since t0 (null: never switched on). */
    onS: [number, number] | null;
    outliersWhileOn: number;
    outliers: number;
    /** Where the expected cause ranks in causes (1: first; null: absent). */
    rank: number | null;
    matched: boolean;
    verdict: string;
  }[];
  /** Outliers that coincide with stalls of sockspike's own processes (absent: no stall-monitor files). */
  selfCheck?: HarnessCheck;
  probes?: { skipped: SkippedProbe[] } & Record<string, unknown>;
}

export type RunStatus = 'running' | 'complete' | 'interrupted' | 'failed';
