import type { Cause, CauseInput, CauseModule } from './types.ts';
import { clamp01, outlierSpan, phaseShare, isExchange, score } from './evidence.ts';
import { formatCores, formatNs, formatNumber, formatShare } from '../../lib/format.ts';
import { saturation } from './cpu-saturation.ts';

// The server's application was slow to answer: the outliers' excess sits in
// an exchange (after the request went out, before the whole answer came
// back) and nothing in the network or the kernel accounts for it: no kernel
// timer matches it (a retransmission, a delayed ACK would), the outlier
// connections saw no retransmission or reset, the CPUs were not saturated,
// and Nagle's trap is not set. What the server's process did meanwhile (on
// CPU or not, waiting for a CPU) is said when it was sampled.
//
// Scoring (see score()):
//   0.35  excess in an exchange (strength: the exchanges' share of the outliers)
//   0.30  no kernel timer explains it (strength: share of the outliers in modes named for no timer)
//   0.20  no retransmission on the outlier connections (TCP_INFO, or kernel events; strength 1 - share with one); left out when neither was recorded
//   0.15  the server process was not starved of CPU around the outliers (its main thread's run-queue wait no higher than otherwise); left out when not sampled
// Required: the server is the user's (--server-cmd or --target): sockspike's own
// built-in server answers at once, and its scheduling delays on a busy machine
// are the harness's (found in clean runs by `npm run validate`); exchanges hold at least half of the outliers' excess; at least
// half of the outliers in modes no timer explains; under a fifth of the
// outliers retransmitted; no errors among them; the CPUs not saturated; not
// Nagle's trap (split writes with TCP_NODELAY off).

export const serverProcessing: CauseModule = {
  id: 'server-processing',
  title: "The server's application was slow to answer",
  needs: ['outlier phases', 'outlier modes', 'TCP_INFO retransmissions or kernel events', 'CPU samples', "the server process's CPU (optional)"],
  match(input: CauseInput): Cause | null {
    const o = input.outliers;
    if (o.count === 0 || input.config.external == null) return null;
    const ex = phaseShare(input, isExchange);
    if (ex.share < 0.5) return null;
    const c = input.config;
    if (c.splitWrites > 1 && !c.nodelay) return null;
    if (Object.keys(o.errors).length > 0) return null;
    let timed = 0;
    for (const m of o.modes) if (m.timer !== null) timed += m.share;
    const untimed = o.modes.length > 0 ? 1 - timed : 1;
    if (untimed < 0.5) return null;
    const retrans = retransShare(input);
    if (retrans !== null && retrans.share >= 0.2) return null;
    if (saturation(input) !== null) return null;
    const proc = serverProcess(input);
    const { confidence, evidence } = score([
      {
        weight: 0.35,
        strength: ex.share,
        text: `${formatShare(ex.share)} of the outliers spent their extra time in an exchange (mostly ${ex.phase}), between request and answer`,
      },
      { weight: 0.3, strength: untimed, text: `${formatShare(untimed)} of the outliers match no kernel timer (no retransmission, delayed ACK or SYN timeout)` },
      {
        weight: 0.2,
        strength: retrans === null ? null : clamp01(1 - retrans.share * 5),
        text: retrans === null ? '' : `${formatNumber(retrans.with)} of ${formatNumber(retrans.of)} outlier connections retransmitted (${retrans.source})`,
      },
      { weight: 0.15, strength: proc === null ? null : proc.starved ? 0 : 1, text: proc?.text ?? '' },
    ]);
    return {
      id: this.id,
      confidence,
      summary:
        `${outlierSpan(input)}: the server took longer to answer (${formatShare(ex.share)} waited in an exchange, mostly ${ex.phase}), ` +
        'with no retransmission, reset, kernel timer or CPU shortage to account for it: the time went in the server application.' +
        (proc !== null ? ` Meanwhile its process ${proc.summary}.` : ''),
      evidence,
      tryNext: [
        "Look inside the server: its own request timing or logs around the outliers' times, a profiler (`perf top -p PID`, `py-spy`), lock and I/O waits (`offcputime`, `strace -T -p PID`).",
        'Check what the server waits on per request (a database, a lock, a downstream call, garbage collection).',
      ],
    };
  },
};

/** Outlier connections with a retransmission, from TCP_INFO or else kernel events. */
function retransShare(input: CauseInput): { share: number; with: number; of: number; source: string } | null {
  const ti = input.txn.tcpInfo;
  if (ti !== null && ti.outliers > 0)
    return { share: ti.outliersRetrans / ti.outliers, with: ti.outliersRetrans, of: ti.outliers, source: 'TCP_INFO before close' };
  const k = input.txn.kernel;
  if (k !== null && k.outliers > 0) {
    const n = Math.max(k.outliersWithRetrans, k.outliersWithSynRetrans);
    return { share: n / k.outliers, with: n, of: k.outliers, source: 'kernel events' };
  }
  return null;
}

/** The server process around the outliers: its CPU (whole process) and its main thread's wait for a CPU. */
function serverProcess(input: CauseInput): { starved: boolean; text: string; summary: string } | null {
  const server = input.cpu?.owners.server.processes.length ? input.cpu.owners.server : null;
  const builtin = input.cpu?.owners.sockspike.processes.find((p) => p.key === 'server') ?? null;
  const cores = server?.near ?? builtin?.near ?? null;
  const wait = input.metrics['proc.server.wait_ns'];
  if (cores === null && wait === undefined) return null;
  const perRow = (total: number, rows: number): number => (rows > 0 ? total / rows : 0);
  const waitNear = wait === undefined ? null : perRow(wait.near, wait.nearRows);
  const waitOther = wait === undefined ? null : perRow(wait.otherwise, wait.otherRows);
  const starved = waitNear !== null && waitOther !== null && waitNear > 2 * waitOther + 2e6;
  const state =
    cores === null ? null : cores >= 0.5 ? `was on a CPU (${formatCores(cores)})` : `was mostly off CPU, sleeping or waiting (${formatCores(cores)})`;
  const waited = waitNear === null ? null : `its main thread waited for a CPU ${formatNs(waitNear)} per sample (${formatNs(waitOther ?? 0)} otherwise)`;
  const parts = [state, waited].filter((x): x is string => x !== null);
  return { starved, text: `the server process around the outliers: ${parts.join('; ')}`, summary: parts.join(', and ') };
}
