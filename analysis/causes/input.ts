import { OUTCOMES, OUTCOME_OK, type RunConfig, type Summary } from '../../lib/types.ts';
import type { KernelEventsRead } from '../../probes/kernel-events/events-file.ts';
import type { ProbeData, StallMonitorData } from '../../probes/read.ts';
import type { OtherProcessesSample } from '../../probes/other-processes.ts';
import { countedResetChance, joinKernelEvents, type KernelJoin } from '../joins/kernel.ts';
import { joinServer } from '../joins/server.ts';
import type { ServerColumns, TxnColumns } from '../read-run.ts';
import { comparisonWindows, workloadSpan } from '../windows.ts';
import { cpuContention } from './contention.ts';
import { cpuOwners, type CpuOwners } from './cpu-owners.ts';
import { selfCheck } from './harness-check.ts';
import type { CauseInput, MetricNear, Modes, Phases } from './types.ts';
import { RECLAIM } from './memory-reclaim.ts';

// Build a CauseInput from what analyze-run has read: the self-check first,
// then every other piece of evidence over the outliers it leaves.

/** The probe metrics the cause modules read. */
export const CAUSE_METRICS = [
  'cpu.user',
  'cpu.system',
  'cpu.softirq',
  'cpu.steal',
  'pressure.cpu.some',
  'pressure.memory.some',
  'Tcp.RetransSegs',
  'Tcp.OutRsts',
  'Tcp.EstabResets',
  'TcpExt.TCPTimeouts',
  'TcpExt.TCPSynRetrans',
  'TcpExt.ListenOverflows',
  'TcpExt.ListenDrops',
  'TcpExt.DelayedACKs',
  'sockstat.TCP.tw',
  ...RECLAIM,
  'listen.limit', // the kernel's backlog of the listener: an external server's own
  'proc.server.wait_ns', // the server's main thread waiting for a CPU (server-processing)
];

export interface InputSources {
  config: RunConfig;
  summary: Summary;
  sysctls: Record<string, string>;
  c: TxnColumns;
  s: ServerColumns | null;
  /** Outlier transactions (indices into c). */
  outliers: Uint32Array;
  probes: ProbeData | null;
  /** The busiest other processes' walks (probes/others.ndjson; [] when none). */
  others?: OtherProcessesSample[];
  /** Self-monitor files (probes.self when probes were read). */
  self: StallMonitorData[];
  /** Kernel events (probes/kernel-events/events-file.ts readKernelEventsFile) and from when they were recorded. */
  events: Pick<KernelEventsRead, 'events' | 'counts' | 'fromNs' | 'total'> | null;
  /** Modes and phases of a subset of the outliers (for when the self-check takes some away). */
  describe: (outliers: Uint32Array) => { modes: Modes; phases: Phases | null };
}

export function buildCauseInput(src: InputSources): CauseInput {
  const { c, summary } = src;
  const p50 = summary.outliers.referenceUs ?? summary.latencyUs.total.p50;
  const starved = src.probes === null ? undefined : cpuContention(src.probes);
  const check = src.self.length > 0 ? selfCheck(src.self, c, src.outliers, p50, starved, spanOf(c).fromNs) : null;
  let kept = src.outliers;
  if (check !== null && check.check.stalled > 0) {
    kept = new Uint32Array(src.outliers.length - check.check.stalled);
    for (let k = 0, j = 0; k < src.outliers.length; k++) if (check.stalled[k] === 0) kept[j++] = src.outliers[k];
  }
  let modes: Modes = summary.outliers.modes ?? [];
  let phases: Phases | null = summary.outliers.phases ?? null;
  if (kept.length !== src.outliers.length) ({ modes, phases } = src.describe(kept));

  const errors: Record<string, number> = {};
  let firstNs = Infinity;
  let lastNs = -Infinity;
  for (const i of kept) {
    if (c.outcome[i] !== OUTCOME_OK) {
      const name = OUTCOMES[c.outcome[i]] ?? 'EOTHER';
      errors[name] = (errors[name] ?? 0) + 1;
    }
    const t = c.intendedNs[i];
    if (t < firstNs) firstNs = t;
    if (t > lastNs) lastNs = t;
  }

  // TCP_INFO (tcpiState 0: not read). The normal transactions' figures are
  // the run's, once per run (this runs for every spell of outliers), less the outliers'.
  let tiO = 0;
  let tiOR = 0;
  for (const i of kept) {
    if (c.tcpiState[i] === 0) continue;
    tiO++;
    if (c.tcpiTotalRetrans[i] > 0) tiOR++;
  }
  const all = tcpInfoTotals(c);
  let tiN = all.readOk;
  let tiNR = all.readOkRetrans;
  for (const i of src.outliers) {
    if (c.tcpiState[i] === 0 || c.outcome[i] !== OUTCOME_OK) continue;
    tiN--;
    if (c.tcpiTotalRetrans[i] > 0) tiNR--;
  }

  let kernel: CauseInput['txn']['kernel'] = null;
  if (src.events !== null) {
    const j = joinKernelEvents(c, src.config.port, src.events.events);
    // resets only counted in the kernel (one with every connection): estimated per bucket
    const chance = countedResetChance(c, src.config.port, j, src.events.events, src.events.counts);
    // only transactions that began once bpftrace was attached can show events
    const from = src.events.fromNs;
    let covered = 0;
    let syn = 0;
    let re = 0;
    let rst = 0;
    let rstEstimated = 0;
    let spurious = 0;
    let estimatedFrom = 0;
    for (const i of kept) {
      if (c.intendedNs[i] < from) continue;
      covered++;
      if (j.synRetransmits[i] > 0) syn++;
      if (j.retransmits[i] > 0) re++;
      else if (j.spuriousRetransmits[i] > 0) spurious++;
      if (j.resetsSent[i] + j.resetsReceived[i] > 0) rst++;
      else if (chance[i] > 0) {
        rstEstimated += chance[i];
        estimatedFrom++;
      }
    }
    const since = kernelTotals(c, j, from);
    let normal = since.started;
    let normalSyn = since.synRetransmitted;
    for (const i of src.outliers) {
      if (c.intendedNs[i] < from) continue;
      normal--;
      if (j.synRetransmits[i] > 0) normalSyn--;
    }
    const estimated = Math.round(rstEstimated);
    kernel = {
      events: src.events.total,
      outliers: covered,
      fromNs: from,
      outliersWithSynRetrans: syn,
      outliersWithRetrans: re,
      outliersWithSpuriousRetrans: spurious,
      outliersWithReset: rst + estimated,
      outliersWithResetEstimated: estimatedFrom > 0 ? { outliers: estimatedFrom, withReset: estimated } : null,
      normalWithSynRetrans: normalSyn,
      normal,
    };
  }

  let server: CauseInput['txn']['server'] = null;
  if (src.s !== null && src.s.n > 0) {
    const j = joinServer(c, src.s);
    const waits: number[] = [];
    for (const i of kept) if (j.serverIndex[i] >= 0 && Number.isFinite(j.acceptAfterStartUs[i])) waits.push(j.acceptAfterStartUs[i]);
    waits.sort((a, b) => a - b);
    server = { outliersMatched: waits.length, medianAcceptAfterStartUs: waits.length > 0 ? Math.round(waits[waits.length >> 1]) : null };
  }

  const { metrics, intervalNs, cpu } =
    src.probes !== null && kept.length > 0
      ? metricsNear(src.probes, c, kept, src.config.external == null, src.others ?? [])
      : { metrics: {}, intervalNs: 0, cpu: null };

  return {
    config: src.config,
    sysctls: src.sysctls,
    transactions: {
      attempted: summary.transactions.attempted,
      failed: summary.transactions.failed + summary.transactions.timedOut,
      errors: summary.transactions.errors,
    },
    latencyP50Us: p50,
    loadStartNs: spanOf(c).fromNs,
    outliers: {
      thresholdUs: summary.outliers.thresholdUs,
      total: src.outliers.length,
      count: kept.length,
      modes,
      phases,
      errors,
      firstNs: kept.length > 0 ? firstNs : NaN,
      lastNs: kept.length > 0 ? lastNs : NaN,
    },
    metrics,
    probeIntervalNs: intervalNs,
    cpu,
    txn: { tcpInfo: tiO + tiN > 0 ? { outliers: tiO, outliersRetrans: tiOR, normal: tiN, normalRetrans: tiNR } : null, kernel, server },
    harness: check?.check ?? null,
  };
}

const spanCache = new WeakMap<TxnColumns, { fromNs: number; toNs: number }>();

/** workloadSpan(c), once per run (a pass over every transaction, asked for every spell of outliers). */
function spanOf(c: TxnColumns): { fromNs: number; toNs: number } {
  let span = spanCache.get(c);
  if (span === undefined) spanCache.set(c, (span = workloadSpan(c)));
  return span;
}

const tcpInfoCache = new WeakMap<TxnColumns, { readOk: number; readOkRetrans: number }>();

/** Of the run's ok transactions, those with TCP_INFO read, and those of them that retransmitted. */
function tcpInfoTotals(c: TxnColumns): { readOk: number; readOkRetrans: number } {
  let t = tcpInfoCache.get(c);
  if (t === undefined) {
    t = { readOk: 0, readOkRetrans: 0 };
    for (let i = 0; i < c.n; i++) {
      if (c.tcpiState[i] === 0 || c.outcome[i] !== OUTCOME_OK) continue;
      t.readOk++;
      if (c.tcpiTotalRetrans[i] > 0) t.readOkRetrans++;
    }
    tcpInfoCache.set(c, t);
  }
  return t;
}

const kernelCache = new WeakMap<KernelJoin, { c: TxnColumns; from: number; started: number; synRetransmitted: number }>();

/** The run's transactions that began once kernel events were recorded, and those of them with a SYN retransmission. */
function kernelTotals(c: TxnColumns, j: KernelJoin, from: number): { started: number; synRetransmitted: number } {
  const hit = kernelCache.get(j);
  if (hit !== undefined && hit.c === c && hit.from === from) return hit;
  const t = { c, from, started: 0, synRetransmitted: 0 };
  for (let i = 0; i < c.n; i++) {
    if (c.intendedNs[i] < from) continue;
    t.started++;
    if (j.synRetransmits[i] > 0) t.synRetransmitted++;
  }
  kernelCache.set(j, t);
  return t;
}

/**
 * The cause metrics in the samples around the outliers against the other
 * samples of the load, by the same windows as the system-state comparison
 * (windows.ts comparisonWindows).
 */
function metricsNear(
  probes: ProbeData,
  c: TxnColumns,
  outliers: Uint32Array,
  builtinServer: boolean,
  others: OtherProcessesSample[],
): { metrics: Record<string, MetricNear>; intervalNs: number; cpu: CpuOwners | null } {
  const { consider, windows: w } = comparisonWindows(probes, c, outliers, spanOf(c));
  let dtSum = 0;
  let dtN = 0;
  for (let r = 0; r < probes.rows; r++)
    if (consider[r] === 1 && probes.dt[r] > 0) {
      dtSum += probes.dt[r];
      dtN++;
    }
  const kinds = new Map(probes.columns.map((col) => [col.name, col]));
  const metrics: Record<string, MetricNear> = {};
  for (const name of CAUSE_METRICS) {
    const col = kinds.get(name);
    const v = probes.get(name);
    if (col === undefined || v === null) continue;
    const kind: string = col.kind;
    const unit = col.unit;
    let near = 0;
    let other = 0;
    let nearRows = 0;
    let otherRows = 0;
    let nearMax = -Infinity;
    let max = -Infinity;
    let nearMaxAtNs = NaN;
    for (let r = 0; r < probes.rows; r++) {
      if (consider[r] !== 1) continue;
      const x = v[r];
      if (!Number.isFinite(x)) continue;
      if (x > max) max = x;
      if (w.rows[r] === 1) {
        near += x;
        nearRows++;
        if (x > nearMax) {
          nearMax = x;
          nearMaxAtNs = probes.t[r];
        }
      } else {
        other += x;
        otherRows++;
      }
    }
    if (nearRows + otherRows === 0) continue;
    const counter = kind === 'counter';
    metrics[name] = {
      unit,
      kind,
      near: counter ? near : nearRows > 0 ? near / nearRows : 0,
      otherwise: counter ? other : otherRows > 0 ? other / otherRows : 0,
      nearMax: nearRows > 0 ? nearMax : 0,
      max: Number.isFinite(max) ? max : 0,
      nearRows,
      otherRows,
      nearMaxAtNs,
    };
  }
  return { metrics, intervalNs: dtN > 0 ? dtSum / dtN : 0, cpu: cpuOwners(probes, consider, w.rows, builtinServer, others) };
}
