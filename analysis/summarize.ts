import { encodeIntoCompressedBase64 } from 'hdr-histogram-js';
import { OUTCOMES, OUTCOME_OK, OUTCOME_TIMEOUT, type Summary } from '../lib/types.ts';
import { SCHEMA_VERSION, type RunManifest } from '../lib/run-files.ts';
import { SRV_FLAG_RESET, TXN_FLAG_REUSED } from '../lib/records.ts';
import { LatencyRecorder, phaseStats } from './latency.ts';
import { formatUs } from '../lib/format.ts';
import { warmupOf } from './warmup.ts';
import type { ServerColumns, TxnColumns } from './read-run.ts';

// summary.json from the records: accounting, throughput, latency per phase,
// outliers. Latencies are of completed (ok) transactions, measured from the
// intended start (coordinated omission: a late start counts against it).

/** A start later than this behind its schedule counts as late (open loop). */
export const LATE_START_US = 1000;

/** Without --outlier: 10 x the median total latency, and never under 1 ms. */
export function derivedThreshold(p50Us: number): { thresholdUs: number; how: string } {
  const t = Math.max(1000, 10 * p50Us);
  return { thresholdUs: t, how: t === 1000 ? '10 x the median latency, raised to the 1 ms floor' : '10 x the median latency' };
}

/** A gap at least this wide (factor between neighbouring latencies) in the top percent separates a tail from the body. */
export const TAIL_GAP = 4;

/**
 * Without --outlier, on a run's latencies: where the tail separates from
 * the body. Among the latencies above p99 (and p99 itself, the body's
 * edge), the widest gap between neighbours; when it is at least TAIL_GAP
 * wide and its middle (geometric) lies above 10 x the median, the threshold
 * is that middle: the transactions beyond it stand apart, and the ordinary
 * scheduling jitter below it is not counted. Otherwise (a tail that runs on
 * from the body, or more than 1 % slow, which puts p99 in the tail itself)
 * 10 x the median, at least 1 ms. O(n) over the latencies, O(k log k) over
 * the k above p99.
 */
export function tailThreshold(latencyUs: (i: number) => number, n: number, p50Us: number, p99Us: number): { thresholdUs: number; how: string } {
  const base = derivedThreshold(p50Us);
  const tail: number[] = [];
  for (let i = 0; i < n; i++) {
    const v = latencyUs(i);
    if (v > p99Us) tail.push(v);
  }
  if (tail.length === 0) return base;
  tail.sort((a, b) => a - b);
  let lo = Math.max(1, p99Us);
  let best = { ratio: 0, lo: 0, hi: 0 };
  for (const v of tail) {
    if (v / lo > best.ratio) best = { ratio: v / lo, lo, hi: v };
    lo = v;
  }
  const middle = Math.sqrt(best.lo * best.hi);
  if (best.ratio < TAIL_GAP || middle <= base.thresholdUs) return base;
  return {
    thresholdUs: Math.round(middle),
    how: `where the tail separates from the body: no latency between ${formatUs(best.lo)} and ${formatUs(best.hi)} (a gap of ${best.ratio.toFixed(0)} x), above p99; 10 x the median would be ${formatUs(base.thresholdUs)}`,
  };
}

export const totalUs = (c: TxnColumns, i: number): number => c.lateUs[i] + c.endUs[i];

/** Actual start, ns since t0: the intended start plus how late it began. */
export const txnStartNs = (c: Pick<TxnColumns, 'intendedNs' | 'lateUs'>, i: number): number => c.intendedNs[i] + c.lateUs[i] * 1e3;

export function summarize(m: RunManifest, c: TxnColumns, s: ServerColumns | null): Summary {
  const E = c.exchanges;
  // counted per microsecond, then into HdrHistograms (latency.ts LatencyRecorder)
  const rTotal = new LatencyRecorder();
  const rConnect = new LatencyRecorder();
  const rExchange = new LatencyRecorder();
  const rClose = new LatencyRecorder();
  const rEach = Array.from({ length: E }, () => new LatencyRecorder());
  const rLate = new LatencyRecorder();
  const counts = new Float64Array(OUTCOMES.length);
  const warm = warmupOf(c, m.config);
  let bytes = 0;
  let lateStarts = 0;
  let first = Infinity;
  let last = -Infinity;
  for (let i = 0; i < c.n; i++) {
    const o = c.outcome[i];
    counts[o < OUTCOMES.length ? o : OUTCOMES.length - 1]++;
    const start = txnStartNs(c, i);
    if (c.intendedNs[i] < first) first = c.intendedNs[i];
    const end = start + c.endUs[i] * 1e3;
    if (end > last) last = end;
    if (c.lateUs[i] > LATE_START_US) lateStarts++;
    rLate.record(c.lateUs[i]);
    if (o !== OUTCOME_OK) continue;
    bytes += c.bytesIn[i] + c.bytesOut[i];
    if (warm.mask[i] === 1) continue; // warm-up: counted above, not in the latencies
    rTotal.record(totalUs(c, i));
    const reused = (c.flags[i] & TXN_FLAG_REUSED) !== 0;
    if (!reused) rConnect.record(c.connectUs[i]);
    let prev = c.connectUs[i];
    for (let e = 0; e < E; e++) {
      const d = c.exchangeUs[e][i] - prev;
      rEach[e].record(d);
      rExchange.record(d);
      prev = c.exchangeUs[e][i];
    }
    if (m.config.close !== 'keepalive') rClose.record(c.endUs[i] - prev);
  }
  const hTotal = rTotal.histogram();
  const hLate = rLate.histogram();
  const total = phaseStats(hTotal);
  const { thresholdUs, how } =
    m.config.outlierUs !== null
      ? { thresholdUs: m.config.outlierUs, how: 'given with --outlier' }
      : tailThreshold((i) => (c.outcome[i] === OUTCOME_OK && warm.mask[i] === 0 ? totalUs(c, i) : NaN), c.n, total.p50, total.p99);
  let outliers = 0;
  for (let i = 0; i < c.n; i++) if (warm.mask[i] === 0 && totalUs(c, i) > thresholdUs) outliers++;
  const counted = c.n - warm.transactions;

  const errors: Record<string, number> = {};
  let failed = 0;
  for (let k = 0; k < OUTCOMES.length; k++) {
    if (k === OUTCOME_OK || counts[k] === 0) continue;
    errors[OUTCOMES[k]] = counts[k];
    if (k !== OUTCOME_TIMEOUT) failed += counts[k];
  }
  const durationS = c.n > 0 ? Math.max(1e-9, (last - first) / 1e9) : 0;
  const ok = counts[OUTCOME_OK];
  const summary: Summary = {
    schemaVersion: SCHEMA_VERSION,
    status: m.status,
    stopReason: m.stopReason,
    durationS: round(durationS, 3),
    transactions: {
      attempted: c.n,
      ok,
      failed,
      timedOut: counts[OUTCOME_TIMEOUT],
      errors,
      unrecorded: m.workload !== null ? Math.max(0, m.workload.attempted - c.n) : 0,
    },
    throughput: {
      tps: durationS > 0 ? round(ok / durationS, 1) : 0,
      mibps: durationS > 0 ? round(bytes / durationS / 1048576, 3) : 0,
    },
    latencyUs: {
      total,
      connect: phaseStats(rConnect.histogram()),
      exchange: phaseStats(rExchange.histogram()),
      close: phaseStats(rClose.histogram()),
      exchanges: rEach.map((r) => phaseStats(r.histogram())),
    },
    outliers: { thresholdUs, how, count: outliers, rate: counted > 0 ? outliers / counted : 0 },
    warmup: { transactions: warm.transactions, how: warm.how },
    openLoop:
      m.config.rate === null
        ? null
        : {
            rate: m.config.rate,
            lateStarts,
            lateThresholdUs: LATE_START_US,
            lateUs: {
              p50: Math.min(hLate.getValueAtPercentile(50), hLate.maxValue),
              p99: Math.min(hLate.getValueAtPercentile(99), hLate.maxValue),
              max: hLate.maxValue,
            },
            missedStarts: m.workload?.missedStarts ?? 0,
          },
    server: s === null ? null : serverSummary(s),
    hdr: { unit: 'us', total: encodeIntoCompressedBase64(hTotal) },
    probes: {
      skipped: m.probes?.skipped ?? [],
      samples: m.probes?.samples ?? 0,
      kernelEvents: m.probes?.kernelEvents ?? null,
      overheadPct: m.probes?.overheadPct ?? null,
    },
  };
  return summary;
}

function serverSummary(s: ServerColumns): NonNullable<Summary['server']> {
  const errors: Record<string, number> = {};
  let resets = 0;
  for (let i = 0; i < s.n; i++) {
    if ((s.flags[i] & SRV_FLAG_RESET) !== 0) resets++;
    if (s.outcome[i] !== OUTCOME_OK) {
      const k = OUTCOMES[s.outcome[i]] ?? 'EOTHER';
      errors[k] = (errors[k] ?? 0) + 1;
    }
  }
  return { connections: s.n, resets, errors };
}

const round = (v: number, digits: number): number => Math.round(v * 10 ** digits) / 10 ** digits;
