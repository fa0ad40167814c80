import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { decodeFromCompressedBase64 } from 'hdr-histogram-js';
import { formatCount, formatCountOf, formatNs, formatPercent, formatRate, formatSeconds, formatShare, formatUs } from '../lib/format.ts';
import { FILES, readSummary, type RunManifest } from '../lib/run-files.ts';
import { OUTCOMES, type CauseWindow, type PhaseStats, type RunConfig, type Summary } from '../lib/types.ts';
import { TXN_FLAG_REUSED } from '../lib/records.ts';
import { loadStartNs, readManifest, readServer, readTransactions, type TxnColumns } from '../analysis/read-run.ts';
import { joinServer } from '../analysis/joins/server.ts';
import { totalUs } from '../analysis/summarize.ts';
import { code, details, table } from './markdown.ts';
import { renderProbeSection } from './probe-section.ts';
import { kernelSection } from './kernel-section.ts';
import { redactText } from './redact.ts';
import { TIMELINE_FILE } from './timeline-chart.ts';
import { LATENCY_FILE } from './latency-chart.ts';
import { META_FILE, PROBES_DIR } from '../probes/probe-files.ts';
import { formatEnvironment, readEnvironment } from '../probes/environment.ts';
import { KERNEL_EVENTS_FILE, KERNEL_EVENTS_FILE_V1 } from '../probes/kernel-events/events-file.ts';
import { CATALOGUE, MIN_CONFIDENCE } from '../analysis/causes/index.ts';
import { readProbes } from '../probes/read.ts';
import { UserError } from '../lib/errors.ts';
import { hostCounters, hostCountersLine } from './host-counters.ts';
import { warmupOf } from '../analysis/warmup.ts';

// report.md of one run: what happened first, then the evidence, then how
// to reproduce it. Built from the run directory alone.

const SLOWEST = 10;
/** Metrics of "System state around the outliers" shown; the rest folded. */
const METRICS_SHOWN = 8;
/** Fewer rows than this are not worth folding. */
const FOLD_AT_LEAST = 4;

export interface ReportOptions {
  /** Replace the host name and non-loopback addresses (a report for a ticket). */
  redact?: boolean;
}

export function writeReport(dir: string, opts: ReportOptions = {}): string {
  const m = readManifest(dir);
  const s = readSummary(dir);
  const c = readTransactions(dir, m);
  const picture = existsSync(join(dir, TIMELINE_FILE)) ? TIMELINE_FILE : null;
  const latencyPicture = existsSync(join(dir, LATENCY_FILE)) ? LATENCY_FILE : null;
  const server = readServer(dir, m);
  const accepted = server === null ? null : joinServer(c, server).acceptAfterStartUs;
  const hostWide = existsSync(join(dir, PROBES_DIR, META_FILE)) ? hostCountersOf(dir, m, s, c) : null;
  let md = renderReport(
    m,
    s,
    c,
    observerSections(dir, m, outlierStarts(c, s.outliers.thresholdUs, warmupOf(c, m.config).mask), opts.redact === true, loadStartNs(m, c)),
    picture,
    latencyPicture,
    accepted,
    hostWide === null ? [] : [hostWide],
  );
  if (opts.redact) md = redactText(md, hostNames(dir));
  writeFileSync(join(dir, FILES.report), md);
  return md;
}

/** The verdict's line on host-wide counters that moved beyond the run's own traffic (null: none; unreadable probes: none). */
function hostCountersOf(dir: string, m: RunManifest, s: Summary, c: TxnColumns): string | null {
  try {
    return hostCountersLine(hostCounters(readProbes(dir), m, s, loadStartNs(m, c)), m);
  } catch (err) {
    if (err instanceof UserError) return null; // the probe section says what is wrong with the files
    throw err;
  }
}

/** The host's names as the run recorded them (environment.json), for --redact. */
function hostNames(dir: string): string[] {
  const host = readEnvironment(dir).env?.os.hostname;
  return typeof host === 'string' && host !== '' ? [host, host.split('.')[0]] : [];
}

export function renderReport(
  m: RunManifest,
  s: Summary,
  c: TxnColumns,
  extra: string[],
  timeline: string | null = null,
  latencyPicture: string | null = null,
  accepted: Float32Array | null = null,
  verdictNotes: string[] = [],
): string {
  if (m.files.transactions.length === 0) return renderProbeOnly(m, extra);
  const out: string[] = [];
  // what a ticket needs first: the verdict with the key figures, then the
  // picture; the evidence after, long tables folded or left to the files
  out.push(`# sockspike run report`, '');
  out.push(verdict(m, s, c, verdictNotes), '');
  if (timeline !== null)
    out.push(
      '## Timeline',
      '',
      `![Transaction latency with outliers marked, CPU breakdown and the counters that moved, on one time axis](${timeline})`,
      '',
      `Time 0 is the load's start (the first transaction's intended start, ${formatNs(loadStartNs(m, c))} after sockspike started); start-up before it is left out. ` +
        `Every outlier and failure is drawn; normal transactions are thinned on long runs. The tables under "System state" below hold the same numbers.`,
      '',
    );
  out.push('## Latency', '', latency(s, m.config), '');
  if (latencyPicture !== null) out.push('![Latency distribution: latency by percentile, with the outlier threshold](' + latencyPicture + ')', '');
  out.push('## Outcomes', '', outcomes(s), '');
  if (s.outliers.count > 0 && s.outliers.modes !== undefined) out.push('## Outliers: modes and phases', '', outlierShape(s), '');
  const likely = likelyCause(s, loadStartNs(m, c));
  if (likely !== null) out.push('## Likely cause', '', likely, '');
  const kernel = kernelSection(m, s);
  if (kernel !== null) out.push('## Namespace, sysctls and injected faults', '', kernel, '');
  if (s.systemState !== undefined) out.push('## System state around the outliers', '', systemStateSection(s.systemState), '');
  out.push('## Slowest transactions', '', slowest(c, m, accepted, loadStartNs(m, c)), '');
  if (s.openLoop !== null) out.push('## Open-loop schedule', '', openLoop(s), '');
  if (s.server !== null) out.push('## Server', '', server(s), '');
  else if (m.config.external) out.push('## Server', '', externalServer(m.config), '');
  out.push(...extra.slice(0, -1).flatMap((x) => [x, '']));
  out.push('## Latency distribution (HdrHistogram)', '', hdr(s), '');
  out.push(...extra.slice(-1).flatMap((x) => [x, '']));
  const imported = importedLog(m);
  out.push('## Configuration', '', imported === null ? config(m.config) : imported.table, '');
  out.push('## Reproduce', '', code(imported === null ? m.reproduce : `${m.reproduce}\n${imported.command}`, 'sh'), '');
  if (m.notes.length > 0) out.push('## Notes', '', ...m.notes.map((n) => `- ${n}`), '');
  out.push('## Files', '', files(m), '');
  return out.join('\n');
}

function verdict(m: RunManifest, s: Summary, c: TxnColumns, notes: string[]): string {
  const t = s.transactions;
  const lines: string[] = [];
  if (m.status !== 'complete') lines.push(`**Run ${m.status}: ${m.stopReason ?? 'no reason recorded'}.** What follows is what it saw.`, '');
  if (t.unrecorded > 0)
    lines.push(`**${formatCount(t.unrecorded)} transactions the client counted are missing from the records**: the figures below undercount.`, '');
  const cause = causeLine(s, loadStartNs(m, c));
  if (cause !== null) lines.push(cause, '');
  const probes = probeStatus(m);
  if (probes !== null) lines.push(probes, '');
  for (const n of notes) lines.push(n, '');
  for (const f of s.faults ?? []) lines.push(`**Injected fault:** ${f.verdict}`, '');
  const okRate = t.attempted > 0 ? t.ok / t.attempted : 0;
  lines.push(
    `**${formatCount(t.attempted)} transactions in ${s.durationS.toFixed(1)} s** (${formatRate(s.throughput.tps)}, ${s.throughput.mibps.toFixed(2)} MiB/s); ` +
      `${formatPercent(okRate)} succeeded` +
      (t.attempted - t.ok > 0 ? `, ${formatCount(t.failed)} failed and ${formatCount(t.timedOut)} timed out` : '') +
      '.',
  );
  const L = s.latencyUs.total;
  if (L.count > 0)
    lines.push(
      `Latency p50 ${formatUs(L.p50)}, p99 ${formatUs(L.p99)}, p99.9 ${formatUs(L.p999)}, max ${formatUs(L.max)}. ` +
        (s.outliers.count === 0
          ? `No transaction exceeded the outlier threshold of ${formatUs(s.outliers.thresholdUs)}: nothing unusual seen.`
          : `${formatCountOf(s.outliers.count, 'outlier')} (${formatPercent(s.outliers.rate, 3)}) above ${formatUs(s.outliers.thresholdUs)} (${s.outliers.how}).`) +
        (s.warmup !== undefined && s.warmup.transactions > 0
          ? ` Warm-up, counted but kept out of the latencies and outliers: ${formatCountOf(s.warmup.transactions, 'transaction')} (${s.warmup.how}).`
          : ''),
    );
  const shape = outlierLine(s, c, loadStartNs(m, c), m.config);
  if (shape !== null) lines.push(shape);
  return lines.join('\n');
}

function outcomes(s: Summary): string {
  const t = s.transactions;
  const rows: (string | number)[][] = [
    ['attempted', formatCount(t.attempted), ''],
    ['ok', formatCount(t.ok), t.attempted ? formatPercent(t.ok / t.attempted) : ''],
    ['failed', formatCount(t.failed), t.attempted ? formatPercent(t.failed / t.attempted) : ''],
    ['timed out', formatCount(t.timedOut), t.attempted ? formatPercent(t.timedOut / t.attempted) : ''],
  ];
  const out = [
    table(['transactions', 'count', 'share'], rows),
    '',
    `Throughput: **${s.throughput.tps.toFixed(1)} transactions/s**, ${s.throughput.mibps.toFixed(3)} MiB/s (request and response bytes of successful transactions) over ${s.durationS.toFixed(3)} s.`,
  ];
  const errs = Object.entries(t.errors).sort((a, b) => b[1] - a[1]);
  if (errs.length > 0)
    out.push(
      '',
      table(
        ['outcome', 'count'],
        errs.map(([k, v]) => [`\`${k}\``, formatCount(v)]),
      ),
    );
  out.push(
    '',
    `Accounting: attempted ${formatCount(t.attempted)} = ok ${formatCount(t.ok)} + failed ${formatCount(t.failed)} + timed out ${formatCount(t.timedOut)}.`,
  );
  return out.join('\n');
}

const row = (name: string, p: PhaseStats): (string | number)[] => [
  name,
  formatCount(p.count),
  formatUs(p.p50),
  formatUs(p.p90),
  formatUs(p.p99),
  formatUs(p.p999),
  formatUs(p.max),
  formatUs(p.mean),
];

function latency(s: Summary, cfg: RunConfig): string {
  const L = s.latencyUs;
  const rows = [row('total', L.total), row('connect', L.connect)];
  L.exchanges.forEach((p, k) => rows.push(row(`exchange ${k + 1}`, p)));
  if (cfg.close !== 'keepalive') rows.push(row('close', L.close));
  return [
    table(['phase', 'count', 'p50', 'p90', 'p99', 'p99.9', 'max', 'mean'], rows),
    '',
    'Successful transactions only. Total is measured from the intended start' +
      (cfg.rate !== null ? ' (the open-loop schedule), so a late start counts against the transaction' : '') +
      '; connect, each exchange and close are the time each phase took' +
      (cfg.close === 'keepalive' ? ' (connect counts new connections only)' : '') +
      '.',
  ].join('\n');
}

function slowest(c: TxnColumns, m: RunManifest, accepted: Float32Array | null, originNs: number): string {
  if (c.n === 0) return 'No transaction was recorded.';
  // a partial selection: keep the SLOWEST largest indices without sorting everything
  const top: number[] = [];
  for (let i = 0; i < c.n; i++) {
    const v = totalUs(c, i);
    if (top.length < SLOWEST || v > totalUs(c, top[top.length - 1])) {
      top.push(i);
      top.sort((a, b) => totalUs(c, b) - totalUs(c, a));
      if (top.length > SLOWEST) top.pop();
    }
  }
  const phase = (us: number): string => (Number.isNaN(us) ? '-' : formatUs(us));
  const rows = top.map((i) => {
    let prev = c.connectUs[i];
    const ex = c.exchangeUs.map((a) => {
      const d = a[i] - prev;
      prev = a[i];
      return phase(d);
    });
    const close = m.config.close === 'keepalive' || Number.isNaN(prev) ? '-' : phase(c.endUs[i] - prev);
    return [
      formatSeconds(c.intendedNs[i] - originNs),
      formatUs(totalUs(c, i)),
      (c.flags[i] & TXN_FLAG_REUSED) !== 0 ? 'reused' : phase(c.connectUs[i]),
      ex.join(' / '),
      close,
      `\`${OUTCOMES[c.outcome[i]] ?? 'EOTHER'}\``,
      c.localPort[i] || '-',
      c.tcpiTotalRetrans[i] || c.tcpiState[i] ? String(c.tcpiTotalRetrans[i]) : '-',
      accepted === null ? '-' : phase(accepted[i]),
    ];
  });
  return [
    table(['start', 'total', 'connect', 'exchanges', 'close', 'outcome', 'local port', 'retrans', 'server accept'], rows),
    '',
    "Start: seconds into the load (from the first transaction's intended start). `-`: phase not reached (or TCP_INFO not read, or no server record). Retrans: TCP_INFO total retransmissions on the client socket before close. Server accept: when the server accepted this connection (joined by client port and time), after the transaction started; far above connect, the connection waited in the accept queue.",
  ].join('\n');
}

function openLoop(s: Summary): string {
  const o = s.openLoop!;
  return [
    `Target rate ${o.rate}/s. Latency is measured from each intended start, so a stalled client does not hide the stall.`,
    '',
    `- late starts (more than ${formatUs(o.lateThresholdUs)} behind schedule): **${formatCount(o.lateStarts)}** of ${formatCount(s.transactions.attempted)}` +
      ` (lateness p50 ${formatUs(o.lateUs.p50)}, p99 ${formatUs(o.lateUs.p99)}, max ${formatUs(o.lateUs.max)})`,
    `- intended starts that never began before the run ended (all workers busy): **${formatCount(o.missedStarts)}**`,
  ].join('\n');
}

function server(s: Summary): string {
  const v = s.server!;
  const errs = Object.entries(v.errors);
  return (
    `${formatCount(v.connections)} connections accepted; ${formatCount(v.resets)} ended with a reset.` +
    (errs.length > 0 ? ` Connection outcomes other than ok: ${errs.map(([k, n]) => `\`${k}\` ${formatCount(n)}`).join(', ')}.` : '')
  );
}

/** Bring your own server: what the run knows of it (no server.bin). */
function externalServer(cfg: RunConfig): string {
  const ext = cfg.external!;
  const what = ext.kind === 'command' ? `started with \`${ext.command}\`` : `already running at ${cfg.host}:${cfg.port} (--target)`;
  return `An external server, ${what}. Server events: not recorded (external server); its accepts are not joined to the transactions.`;
}

/** The target row of the configuration table. */
function targetText(cfg: RunConfig): string {
  const ext = cfg.external;
  if (!ext) return `${cfg.host}:${cfg.port} (built-in server)`;
  if (ext.kind === 'target') return `${cfg.host}:${cfg.port} (already running server, --target${ext.allowRemote ? ', --allow-remote' : ''})`;
  return `${cfg.host}:${cfg.port} (\`${ext.command}\`, waited up to ${formatNs(ext.waitNs)})`;
}

/** The transaction row: the built-in echo, or the protocol template and its completeness rule. */
function transactionText(cfg: RunConfig): string {
  const t = cfg.template;
  const writes = cfg.splitWrites > 1 ? ` in ${cfg.splitWrites} writes` : '';
  if (!t) return `connect, ${cfg.exchanges} x (request ${cfg.requestBytes} B${writes}, response ${cfg.responseBytes} B, checked byte for byte), close`;
  const until = t.until.kind === 'close' ? 'the server closes' : t.until.kind === 'bytes' ? `${t.until.bytes} B` : `delimiter "${t.until.text}"`;
  return `connect, ${cfg.exchanges} x (request ${cfg.requestBytes} B from ${t.source}${writes}, response complete at ${until}; not checked byte for byte), close`;
}

/** A latency log imported into a probe run (analyze --latency-log): what stands in for the configuration. */
function importedLog(m: RunManifest): { table: string; command: string } | null {
  const imp = m.files.imported as { from: string; format: string; clock: string; rows: number; outsideProbe: number } | undefined;
  if (imp === undefined) return null;
  const rows: [string, string][] = [
    [
      'transactions',
      `imported from \`${imp.from}\` (${imp.format}, ${imp.rows} rows${imp.outsideProbe > 0 ? `, ${imp.outsideProbe} outside the probe's time` : ''}): the client was not sockspike's`,
    ],
    ['clock', imp.clock],
    ['outlier threshold', m.config.outlierUs === null ? 'derived' : formatUs(m.config.outlierUs)],
    ['probe interval', formatNs(m.config.probeIntervalNs)],
  ];
  return { table: table(['setting', 'value'], rows, ['l', 'l']), command: `sockspike analyze DIR --latency-log ${imp.from} --log-format ${imp.format}` };
}

function hdr(s: Summary): string {
  if (s.latencyUs.total.count === 0) return 'No successful transaction.';
  const h = decodeFromCompressedBase64(s.hdr.total, 32, false);
  const dist = h.outputPercentileDistribution(5, 1);
  // folded: the percentiles that matter are in the latency table, the whole histogram is also in summary.json (hdr.total)
  return [
    `Total latency of successful transactions, microseconds; also in \`${FILES.summary}\` (\`hdr.total\`).`,
    '',
    details('Percentile distribution', code(dist)),
    '',
    details('Compressed HdrHistogram (base64; decode with any HdrHistogram library, values in microseconds)', code(s.hdr.total)),
  ].join('\n');
}

function config(cfg: RunConfig): string {
  const dur = (ns: number | null): string => (ns === null ? '-' : ns === 0 ? '0' : formatNs(ns));
  const rows: [string, string][] = [
    ['target', targetText(cfg)],
    [
      'load',
      cfg.rate === null ? `closed loop, concurrency ${cfg.concurrency}` : `open loop, ${cfg.rate}/s ${cfg.arrivals}, at most ${cfg.maxInflight} in flight`,
    ],
    [
      'limit',
      [cfg.transactions !== null ? `${cfg.transactions} transactions` : '', cfg.durationNs !== null ? dur(cfg.durationNs) : ''].filter(Boolean).join(' or '),
    ],
    ['transaction', transactionText(cfg)],
    [
      'close',
      cfg.close === 'linger' ? `linger:${cfg.lingerSeconds}` : cfg.close === 'keepalive' ? `keepalive, ${cfg.perConnection} per connection` : cfg.close,
    ],
    ['backlog', cfg.external ? "the server's own" : String(cfg.backlog)],
    ['TCP_NODELAY', cfg.nodelay ? 'on' : 'off'],
    ['think time', dur(cfg.thinkTimeNs)],
    ['accept delay', dur(cfg.acceptDelayNs)],
    ['timeouts', `connect ${dur(cfg.connectTimeoutNs)}, io ${dur(cfg.ioTimeoutNs)}`],
    ['outlier threshold', cfg.outlierUs === null ? 'derived' : formatUs(cfg.outlierUs)],
    ['probe interval', dur(cfg.probeIntervalNs)],
    ['kernel state events', cfg.kernelStates ?? 'off'],
  ];
  return table(['setting', 'value'], rows, ['l', 'l']);
}

function files(m: RunManifest): string {
  return [
    `- \`${FILES.manifest}\`: resolved configuration, command line, clock origin (t0 = ${m.t0Ns} ns CLOCK_MONOTONIC), processes`,
    `- \`${m.files.transactions.join('`, `')}\`: every transaction (binary; \`sockspike export DIR --what transactions\`)`,
    m.files.server.length > 0
      ? `- \`${m.files.server.join('`, `')}\`: every server connection (\`sockspike export DIR --what server\`)`
      : '- no server records: server events: not recorded (external server)',
    `- \`${FILES.summary}\`: the figures above, for machines`,
    `- \`${TIMELINE_FILE}\`, \`${LATENCY_FILE}\` (and PNGs of them where they could be rendered): the pictures`,
    `- \`${FILES.command}\`, \`${FILES.clientLog}\`` +
      (m.config.external?.kind === 'target' ? '' : `, \`${m.config.external?.kind === 'command' ? FILES.serverCommandLog : FILES.serverLog}\``),
  ].join('\n');
}

/** System state, kernel events, skipped probes, then (last) the environment. */
function observerSections(dir: string, m: RunManifest, highlightNs: number[], redact: boolean, originNs: number): string[] {
  const out: string[] = [];
  if (existsSync(join(dir, PROBES_DIR, META_FILE)))
    out.push(renderProbeSection(dir, { highlightNs, originNs: m.files.transactions.length > 0 ? originNs : undefined }));
  const p = m.probes;
  if (p !== undefined) {
    if (p.kernelEvents !== null) {
      const kinds = Object.entries(p.kernelEventsByKind).sort((a, b) => b[1] - a[1]);
      const file = existsSync(join(dir, KERNEL_EVENTS_FILE_V1)) ? KERNEL_EVENTS_FILE_V1 : KERNEL_EVENTS_FILE;
      out.push(
        [
          '## Kernel events (bpftrace)',
          '',
          `${formatCount(p.kernelEvents)} events on the run's ports (tcp and sock tracepoints), in \`${file}\`` +
            (p.kernelEventsRecorded !== undefined && p.kernelEventsRecorded < p.kernelEvents
              ? `: ${formatCount(p.kernelEventsRecorded)} recorded one by one, the rest counted in the kernel per 100 ms ` +
                '(resets and state changes beyond two of a kind per 100 ms are only counted: they can come with every connection, and printing ' +
                'each to user space costs bpftrace far more CPU than counting it; retransmits and drops are always recorded one by one).'
              : '.'),
          ...(kinds.length > 0
            ? [
                '',
                table(
                  ['event', 'count'],
                  kinds.map(([k, n]) => [k, formatCount(n)]),
                ),
              ]
            : []),
          ...(p.notes.length > 0 ? ['', ...p.notes.map((n) => `- ${n}`)] : []),
        ].join('\n'),
      );
    }
    if (p.skipped.length > 0) out.push(['## Probes skipped', '', ...p.skipped.map((k) => `- **${k.probe}**: ${k.reason}`)].join('\n'));
  }
  const { env, problem } = readEnvironment(dir);
  out.push(
    env !== null
      ? formatEnvironment(env, { redact })
      : `## Environment\n\n${problem === null ? 'No environment snapshot was taken.' : `The environment snapshot is damaged (${problem}); nothing above depends on it but the timer constants, taken from the kernel's defaults.`}`,
  );
  return out;
}

/** Start times (ns since t0) of the outliers, for marking them on the timeline. */
function outlierStarts(c: TxnColumns, thresholdUs: number, warm: Uint8Array): number[] {
  const out: number[] = [];
  for (let i = 0; i < c.n; i++) if (warm[i] === 0 && totalUs(c, i) > thresholdUs) out.push(c.intendedNs[i]);
  return out;
}

/** `sockspike probe` directories: no transactions of ours, only what the probes saw. */
function renderProbeOnly(m: RunManifest, extra: string[]): string {
  const span = m.endNs !== null ? ` for ${formatNs(m.endNs)}` : '';
  return [
    '# sockspike probe report',
    '',
    `**Probe-only run**: the system was sampled${span}; sockspike ran no workload of its own and recorded no transactions.` +
      (m.status !== 'complete' ? ` Run ${m.status}: ${m.stopReason ?? 'no reason recorded'}.` : ''),
    '',
    ...extra.flatMap((x) => [x, '']),
    '## Reproduce',
    '',
    code(m.reproduce, 'sh'),
    '',
    ...(m.notes.length > 0 ? ['## Notes', '', ...m.notes.map((n) => `- ${n}`), ''] : []),
  ].join('\n');
}

/** Where the outliers cluster (named after kernel timers) and which phase holds their time. */
function outlierShape(s: Summary): string {
  const o = s.outliers;
  const out: string[] = [];
  const modes = o.modes ?? [];
  if (modes.length > 0)
    out.push(
      `Outlier latencies cluster into ${modes.length} mode${modes.length > 1 ? 's' : ''}; a mode is named after the kernel timer whose delay (from this run's sysctls) matches its excess over the median, or after the timers that add up to it, one per phase that waited:`,
      '',
      table(
        ['mode', 'outliers', 'share', 'min', 'median', 'max'],
        modes.map((m) => [m.label, formatCount(m.count), formatPercent(m.share, 1), formatUs(m.minUs), formatUs(m.medianUs), formatUs(m.maxUs)]),
        ['l', 'r', 'r', 'r', 'r', 'r'],
      ),
    );
  const p = o.phases;
  if (p !== undefined && p.dominant !== null) {
    const rows = p.rows.filter((r) => r.outliers > 0);
    out.push(
      '',
      `The phase holding most of the excess time: **${p.dominant}**.`,
      '',
      table(
        ['phase', 'outliers', 'share', 'median excess', 'normal median', 'never finished'],
        rows.map((r) => [
          r.phase,
          formatCount(r.outliers),
          formatPercent(r.share, 1),
          formatUs(r.medianExcessUs),
          r.normalMedianUs === null ? '-' : formatUs(r.normalMedianUs),
          formatCount(r.unfinished),
        ]),
        ['l', 'r', 'r', 'r', 'r', 'r'],
      ),
    );
  }
  return out.join('\n');
}

function systemStateSection(st: NonNullable<Summary['systemState']>): string {
  const how =
    st.window === 'span'
      ? 'the probe samples each outlier overlaps, plus the one before it started'
      : "the samples at each outlier's start (and the one before) and at its end (outliers covered the whole load, leaving no normal time to compare with)";
  const head = `Every probe metric in ${how} (${formatCount(st.rows.outlier)} samples) against the rest of the load (${formatCount(st.rows.normal)} samples): rank-sum test, Benjamini-Hochberg q < 0.01, strongest effect first (Cliff's delta, -1..1). Samples are a time series, so read q as a filter and the counts as the evidence. A counter shows its total over those samples, a gauge its median.`;
  if (st.metrics.length === 0) return `${head}\n\nNo metric differed significantly between outlier windows and normal ones.`;
  const v = (x: number): string => (Math.abs(x) >= 100 ? x.toFixed(0) : Math.abs(x) >= 1 ? x.toFixed(2) : x.toPrecision(2));
  // five columns, to fit a code host's page: a counter by its totals (its median rate per sample is mostly 0), a gauge by its medians
  const metricTable = (metrics: typeof st.metrics): string =>
    table(
      ['metric', 'effect', 'q', 'near outliers', 'otherwise'],
      metrics.map((m) => [
        `\`${m.metric}\``,
        m.effect.toFixed(2),
        m.qValue === null ? '-' : m.qValue.toExponential(1),
        m.total === null ? `median ${v(m.outlierMedian)} ${m.unit}` : totalText(m.total.outlier, m.unit),
        m.total === null ? `median ${v(m.normalMedian)} ${m.unit}` : totalText(m.total.normal, m.unit),
      ]),
      ['l', 'r', 'r', 'r', 'r'],
    );
  // the strongest in sight, the rest folded (unless they are only a few)
  const shown = st.metrics.length <= METRICS_SHOWN + FOLD_AT_LEAST ? st.metrics.length : METRICS_SHOWN;
  const rest = st.metrics.slice(shown);
  return [
    head,
    '',
    metricTable(st.metrics.slice(0, shown)),
    ...(rest.length > 0 ? ['', details(`${formatCount(rest.length)} more metrics that differed`, metricTable(rest))] : []),
  ].join('\n');
}

/** One sentence on where the outliers sit and which phase holds their time (facts, not a cause). */
function outlierLine(s: Summary, c: TxnColumns, originNs: number, config: RunConfig): string | null {
  const o = s.outliers;
  if (o.count === 0) return null;
  const parts: string[] = [];
  let first = Infinity;
  let last = -Infinity;
  const warm = warmupOf(c, config).mask;
  for (let i = 0; i < c.n; i++)
    if (warm[i] === 0 && totalUs(c, i) > o.thresholdUs) {
      first = Math.min(first, c.intendedNs[i]);
      last = Math.max(last, c.intendedNs[i]);
    }
  if (Number.isFinite(first))
    parts.push(
      first === last
        ? `it started ${formatSeconds(first - originNs)} into the load`
        : `they started between ${formatSeconds(first - originNs)} and ${formatSeconds(last - originNs)} into the load`,
    );
  const top = [...(o.modes ?? [])].sort((a, b) => b.count - a.count)[0];
  if (top !== undefined && top.timer !== null) parts.push(`${formatPercent(top.share, 0)} sit at ${top.label.split(':')[0]}`);
  const dominant = o.phases?.rows.find((r) => r.phase === o.phases?.dominant);
  if (dominant !== undefined) parts.push(`${formatPercent(dominant.share, 0)} spent their excess time in ${dominant.phase}`);
  // the counter that moved *with* the outliers (more near them), or none: a
  // negative effect means it moved less near them, which explains nothing
  const ev = withOutliers(s)[0];
  if (ev !== undefined && ev.total !== null)
    parts.push(
      `\`${ev.metric}\` moved most near them (${totalText(ev.total.outlier, ev.unit)} near outliers, ${totalText(ev.total.normal, ev.unit)} otherwise)`,
    );
  return parts.length > 0 ? `${o.count === 1 ? 'The outlier' : 'Of the outliers'}: ${parts.join('; ')}.` : null;
}

/** Whether the system was sampled: a run without probes, or whose probes died, says so in its verdict (null: they ran). */
export function probeStatus(m: RunManifest): string | null {
  const skipped = m.probes?.skipped ?? [];
  const off = skipped.find((k) => k.probe === 'system probes and kernel events');
  if (off !== undefined)
    return `**No system data:** the probes were off (${off.reason}): CPU, pressure, TCP counters and kernel events were not recorded, so only the transactions speak here and the causes that need system evidence cannot show.`;
  const died = skipped.find((k) => k.probe === 'system probes');
  if (died !== undefined)
    return `**System data missing or cut short:** the system probes failed (${died.reason}): CPU, pressure and TCP counters are missing for the run or its end, and the causes that need them may not show.`;
  return null;
}

/** System-state metrics that rose near the outliers (positive effect), strongest first. */
const withOutliers = (s: Summary): NonNullable<Summary['systemState']>['metrics'] => (s.systemState?.metrics ?? []).filter((m) => m.effect > 0);

/** The catalogue's confidence floor, as the report states it. */
const FLOOR = `${Math.round(MIN_CONFIDENCE * 100)}%`;

const causeTitle = (id: string): string => CATALOGUE.find((m) => m.id === id)?.title ?? id;

/** Confidence in words a ticket reader understands. */
export function confidenceWords(c: number): string {
  if (c >= 0.8) return 'very likely';
  if (c >= 0.6) return 'likely';
  if (c >= 0.4) return 'possible';
  return 'weakly supported';
}

/** Something to explain: outliers, or failures. */
const unusual = (s: Summary): boolean => s.outliers.count > 0 || s.transactions.failed + s.transactions.timedOut > 0;

/** "the spell 2.01 s – 4.10 s into the load (45 % of the outliers)", one per window. */
function windowsText(windows: CauseWindow[], originNs: number): string {
  const one = (w: CauseWindow): string =>
    `${formatSeconds(w.fromNs - originNs)} – ${formatSeconds(w.toNs - originNs)} into the load (${formatShare(w.share)} of the outliers)`;
  return `${windows.length === 1 ? 'the spell' : 'the spells'} ${windows.map(one).join(' and ')}`;
}

/** The verdict's first line: the most likely cause and how sure we are (null: nothing to explain, or an old summary). */
function causeLine(s: Summary, originNs: number): string | null {
  if (s.causes === undefined || !unusual(s)) return null;
  const top = s.causes[0];
  if (top === undefined)
    return (
      '**No known cause matched.** The evidence fits none of the causes sockspike knows' +
      (s.systemState !== undefined ? '; see "System state around the outliers" for what moved with them.' : '.')
    );
  const pctc = `${Math.round(top.confidence * 100)}%`;
  const others =
    s.causes.length > 1
      ? ` Also possible: ${s.causes
          .slice(1)
          .map((c) => `${causeTitle(c.id)} (${Math.round(c.confidence * 100)}%${c.windows !== undefined ? `; ${windowsText(c.windows, originNs)}` : ''})`)
          .join(', ')}.`
      : '';
  const where = top.windows !== undefined ? ` It holds ${windowsText(top.windows, originNs)}.` : '';
  const spells = s.causes.filter((c) => c.windows !== undefined).length;
  const lead = spells > 1 ? `**${spells} problems in separate spells of the run**, each named below with its spell. ` : '';
  return `${lead}**Most likely cause: ${causeTitle(top.id)}** (\`${top.id}\`, ${confidenceWords(top.confidence)}: confidence ${pctc}). ${top.summary}${where}${others}`;
}

/** "## Likely cause": each cause with its evidence and what to try; the harness self-check; or that nothing matched. */
function likelyCause(s: Summary, originNs: number): string | null {
  if (s.causes === undefined || !unusual(s)) return null;
  const out: string[] = [];
  if (s.causes.length === 0) {
    out.push(
      `No known cause matched: none of the ${CATALOGUE.length} causes sockspike knows (${CATALOGUE.map((m) => m.title).join('; ')}) reached ${FLOOR} confidence.`,
    );
    const top = withOutliers(s).slice(0, 3);
    out.push(
      '',
      top.length > 0
        ? `The strongest correlations instead (full table under "System state around the outliers"): ${top
            .map(
              (m) =>
                `\`${m.metric}\` (effect ${m.effect.toFixed(2)}${m.total !== null ? `, ${totalText(m.total.outlier, m.unit)} near outliers, ${totalText(m.total.normal, m.unit)} otherwise` : ''})`,
            )
            .join('; ')}.`
        : s.systemState !== undefined
          ? 'No probe metric differed significantly around the outliers either (see "System state around the outliers").'
          : 'There are no probe samples to compare the outliers with (see the verdict).',
    );
  }
  s.causes.forEach((c, k) => {
    out.push(
      `### ${k + 1}. ${causeTitle(c.id)}: ${confidenceWords(c.confidence)} (${Math.round(c.confidence * 100)}%)`,
      '',
      `\`${c.id}\`. ${c.summary}`,
      '',
      ...(c.windows !== undefined ? [`The outliers came in separate spells; this cause ranks first in ${windowsText(c.windows, originNs)}.`, ''] : []),
      'Evidence:',
      '',
      ...c.evidence.map((e) => `- ${e}`),
      '',
      'What to try:',
      '',
      ...c.tryNext.map((e) => `- ${e}`),
      '',
    );
  });
  const h = s.selfCheck;
  out.push(
    h === undefined
      ? 'Harness self-check: no stall-monitor files, so stalls of sockspike itself could not be ruled out.'
      : h.stalled === 0
        ? `Harness self-check: ${h.outliers === 1 ? 'the outlier does not' : `none of the ${formatCount(h.outliers)} outliers`} coincide with an event-loop stall or GC pause of sockspike's own processes (${h.monitors} monitored).`
        : `Harness self-check: **${formatCount(h.stalled)} of ${formatCountOf(h.outliers, 'outlier')} ${h.stalled === 1 ? 'was' : 'were'} sockspike's own doing** (${formatCount(h.byLoopDelay)} event-loop stalls, ${formatCount(h.byGc)} GC pauses, the longest ${h.worstMs} ms); they are left out of the other causes' evidence.`,
  );
  out.push(
    '',
    `Confidence is the weighted share of a cause's evidence that holds (each cause's weights are in analysis/causes/); causes below ${FLOOR} are not listed.`,
  );
  return out.join('\n').replace(/\n{3,}/g, '\n\n');
}

/** A counter's total in its own unit: "12 events", "1.06 s of stall" (pressure counts microseconds). */
function totalText(total: number, rateUnit: string): string {
  const unit = rateUnit.replace(/\/s$/, '');
  if (unit === 'us') return `${formatUs(total)} of stall`;
  if (unit === 'ns') return formatNs(total); // e.g. a process's run-queue wait
  if (unit === 'count' || unit === '') return `${formatCount(total)} events`;
  return `${formatCount(total)} ${unit}`;
}
