import { Command, Option } from 'commander';
import { formatRate, formatUs } from '../lib/format.ts';
import { shellJoin } from '../lib/shell.ts';
import { DEFAULTS, resolveConfig, type RunOptions } from '../harness/config.ts';
import { BYO_DEFAULTS } from '../harness/external/options.ts';
import { scenarioNamed, SCENARIOS } from '../harness/scenarios.ts';
import { UserError } from '../lib/errors.ts';
import { signalExitCode } from '../lib/signals.ts';
import { planProgress, stage } from '../harness/progress.ts';

// sockspike run: one workload run into a run directory, with its report.

export function register(program: Command): void {
  program
    .command('run')
    .description('run the connection-per-transaction workload (built-in server and client, or your server) and write a report')
    .option('--transactions <n>', 'stop after N transactions (with --duration: whichever comes first; default: no count limit)')
    .option('--duration <d>', `stop after this long; a bare number is seconds (default ${DEFAULTS.duration} when neither limit is given)`)
    .option('--concurrency <c>', 'closed loop: concurrent clients', DEFAULTS.concurrency)
    .option('--request-bytes <q>', 'bytes the client writes per exchange', DEFAULTS.requestBytes)
    .option('--response-bytes <r>', 'bytes the server answers per exchange', DEFAULTS.responseBytes)
    .option('--exchanges <e>', 'request/response exchanges per transaction', DEFAULTS.exchanges)
    .option('--server-exchanges <n>', 'the built-in server closes after N exchanges, even if the client sends more (default: --exchanges)')
    .option('--think-time <d>', 'closed loop: pause between a transaction and the next', DEFAULTS.thinkTime)
    .option('--rate <r>', 'open loop: start R transactions per second regardless of completions (default: none, a closed loop)')
    .addOption(new Option('--arrivals <kind>', 'open loop: spacing of starts').choices(['uniform', 'poisson']).default(DEFAULTS.arrivals))
    .option('--max-inflight <n>', 'open loop: most transactions in flight at once', DEFAULTS.maxInflight)
    .option('--close <variant>', 'client-fin | server-fin | client-rst | server-rst | linger:N | keepalive', DEFAULTS.close)
    .option('--per-connection <k>', 'keepalive: transactions per connection', DEFAULTS.perConnection)
    .option('--backlog <n>', 'listen backlog of the built-in server', DEFAULTS.backlog)
    .addOption(new Option('--nodelay <on|off>', 'TCP_NODELAY on both sides').choices(['on', 'off']).default(DEFAULTS.nodelay))
    .option('--split-writes <k>', 'write each request in K writes (the Nagle / delayed-ACK trap)', DEFAULTS.splitWrites)
    .option('--accept-delay <d>', 'the server waits this long before each accept (a slow accept loop)', DEFAULTS.acceptDelay)
    .option('--host <addr>', 'loopback address to listen on and connect to', DEFAULTS.host)
    .option('--port <p>', 'server port (default: a free one)')
    .option('--connect-timeout <d>', 'give up on a connect after this long (recorded as timeout)', DEFAULTS.connectTimeout)
    .option('--io-timeout <d>', 'give up on an answer after this long (recorded as timeout)', DEFAULTS.ioTimeout)
    // bring your own server (issue 6)
    .option(
      '--server-cmd <command>',
      'start this server instead of the built-in one ({port}, {host} are replaced; SOCKSPIKE_PORT, SOCKSPIKE_HOST are set; default: the built-in server)',
    )
    .option('--server-wait <d>', `--server-cmd: how long to wait for the port to accept connections (default ${BYO_DEFAULTS.serverWait})`)
    .option('--target <host:port>', 'drive a server that is already running (loopback only unless --allow-remote; default: none)')
    .option('--allow-remote', '--target: allow an address that is not loopback')
    .option('--request <string>', 'send this as each request (escapes: \\r \\n \\t \\0 \\\\ \\xHH; default: the built-in echo pattern)')
    .option('--request-file <file>', "send this file's bytes as each request (default: none)")
    .option('--response-until <rule>', 'with a request template: close | bytes:N | delimiter:STR (default: none, required with a request)')
    .option('--outlier <d>', 'outlier threshold, e.g. 100ms (default: derived from the distribution)')
    .option(
      '--warmup <d>',
      'transactions starting this long into the load are warm-up, kept out of latencies and outliers (default: the first 2 of each client worker; 0: none)',
    )
    .option('--probe-interval <d>', 'system sampling interval (>= 10ms)', DEFAULTS.probeInterval)
    .option(
      '--probe-slow-interval <d>',
      'how often CPU times, TCP counters and the other /proc files are read (every sample: CPU and memory pressure, socket counts, the accept queue); equal to --probe-interval: everything every sample',
      DEFAULTS.probeSlowInterval,
    )
    .addOption(
      new Option('--kernel-states <which>', 'kernel events: TCP state changes to record (counted in the kernel; a few per 100 ms recorded one by one)')
        .choices(['off', 'handshake', 'all'])
        .default(DEFAULTS.kernelStates),
    )
    .option('--seed <n>', 'seed for poisson arrivals', DEFAULTS.seed)
    .option(
      '--client-processes <k>',
      'split the load over K client processes, each recording its own transactions file (more load on several cores)',
      DEFAULTS.clientProcesses,
    )
    .option(
      '--netns',
      "run server, client and network probes in a network namespace of the run's own, with the host's sysctls copied in (the default as root, but for --target)",
    )
    .option('--no-netns', "share the host's network namespace (its TCP counters are then host-wide)")
    .option('--sysctl <key=value>', "set a sysctl for the run, repeatable; per-namespace keys go into the run's namespace (implies --netns)", collect, [])
    .option('--host-sysctl', 'allow --sysctl keys that are not per namespace to change the host (journalled, restored afterwards)')
    .option(
      '--fault <spec>',
      'inject a fault, repeatable: syn-drop:P%, data-drop:P%, cpu-hog:N, accept-delay:D, each optionally @FROM-TO (e.g. syn-drop:5%@2s-6s)',
      collect,
      [],
    )
    .addOption(
      new Option(
        '--engine <kind>',
        'what runs the built-in client and server: the native engine (C) or Node (default: native where it is built, else node)',
      ).choices(['native', 'node']),
    )
    .option('--scenario <name>', 'start from a named preset (see `sockspike scenarios`); other flags override it (default: none)')
    .option('--out <dir>', 'run directory (default: runs/<timestamp>-<close>)')
    .option('--json', 'print summary.json on stdout instead of the short text summary')
    .option('--no-progress', 'no progress line, even on a terminal')
    .option('--no-probes', 'do not sample /proc or record kernel events (the workload alone)')
    .option('--redact', 'report.md without the host name or non-loopback addresses')
    .action(async (o: RunOptions & { out?: string; json?: boolean; progress: boolean; probes: boolean; redact?: boolean }, cmd: Command) => {
      if (o.scenario !== undefined) applyScenario(o, cmd);
      const config = resolveConfig(o);
      const args = process.argv.slice(2);
      // loaded here, not at start: `sockspike --help` and the rest need none of it
      const wantFeedback = o.progress && !o.json;
      planProgress(wantFeedback, { durationNs: config.durationNs, transactions: config.transactions });
      stage('starting: run directory, server, client' + (config.netns ? ', network namespace' : '') + (o.probes ? ', probes' : '') + ' ...');
      // the analysis and report load after the run: ~0.1 s of CPU not taken from the start
      const { runWorkload } = await import('../harness/run.ts');
      const result = await runWorkload({
        config,
        out: o.out,
        argv: process.argv.slice(1),
        reproduce: shellJoin(['sockspike', ...withoutOut(args)]),
        progress: o.progress && !o.json,
        probes: o.probes,
      });
      const { analyzeAndReport } = await import('./pipeline.ts');
      const s = await analyzeAndReport(result.dir, { redact: o.redact === true, onStage: stage });
      if (o.json) process.stdout.write(JSON.stringify(s, null, 2) + '\n');
      else {
        const t = s.transactions;
        const L = s.latencyUs.total;
        process.stdout.write(
          `${t.attempted} transactions (${t.ok} ok, ${t.failed} failed, ${t.timedOut} timed out), ${formatRate(s.throughput.tps)}; ` +
            (L.count > 0 ? `p50 ${formatUs(L.p50)} p99 ${formatUs(L.p99)} max ${formatUs(L.max)}; ` : '') +
            `${s.outliers.count} outliers > ${formatUs(s.outliers.thresholdUs)}\n` +
            `report: ${result.dir}/report.md\n`,
        );
      }
      if (result.manifest.status === 'interrupted') process.exitCode = signalExitCode(result.signal ?? 'SIGINT');
      else if (result.manifest.status === 'failed') {
        process.stderr.write(`sockspike: ${result.manifest.stopReason}\n`);
        process.exitCode = 1;
      }
    });
}

const collect = (v: string, prev: string[]): string[] => [...prev, v];

/** A scenario's flags fill in every option the command line left at its default. */
function applyScenario(o: RunOptions, cmd: Command): void {
  const sc = scenarioNamed(o.scenario as string);
  if (sc === undefined)
    throw new UserError(`--scenario: unknown scenario "${o.scenario}" (one of ${SCENARIOS.map((s) => s.name).join(', ')}; see sockspike scenarios)`);
  const opts = o as unknown as Record<string, unknown>;
  for (const [key, value] of Object.entries(sc.flags)) {
    const given = cmd.getOptionValueSource(key) === 'cli';
    // sysctls add up (the command line's win per key); faults given replace the scenario's
    if (key === 'sysctl' && Array.isArray(value)) opts[key] = [...value, ...(o.sysctl ?? [])];
    else if (!given) opts[key] = value;
  }
}

/** The reproducing command leaves out where this run's files went. */
function withoutOut(args: string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < args.length; i++) {
    if (args[i] === '--out') i++;
    else if (!args[i].startsWith('--out=')) out.push(args[i]);
  }
  return out;
}
