// The probe process: samples /proc on its own schedule, so that reading
// /proc never stalls a client's event loop. Started by run-probes.ts with an
// IPC channel (config in a 'start' message, then 'addProcess',
// 'setListener', 'stop'); exits by itself when the parent goes away.
//
// Without an IPC channel (debugging, or wrapped by hand in `ip netns exec`)
// it takes the config as JSON in argv[2], samples until SIGTERM/SIGINT, and
// prints the result as JSON on stdout.
import type { FromSampler, SamplerConfig, ToSampler } from './messages.ts';
import type { JitterStats } from './probe-files.ts';
import { Sampler } from './sampler.ts';
import { Lateness, Ticker } from './ticker.ts';

/** With the addon's read thread, the JS side wakes this often to parse the samples it read (its ring holds ~1.5 s). */
const TAKE_MS = 500;

let sampler: Sampler | null = null;
// One of the two schedules: the read thread's (parsed every TAKE_MS), or the JS ticker's.
let taking: { timer: NodeJS.Timeout; lateness: Lateness; onSample: (scheduledNs: number, tNs: number) => void } | null = null;
let ticker: Ticker | null = null;
let stopping = false;

const send = (msg: FromSampler): void => {
  if (process.send && process.connected) process.send(msg);
};

const firstLine = (err: unknown): string => (err instanceof Error ? err.message : String(err)).split('\n')[0];

async function start(config: SamplerConfig): Promise<void> {
  sampler = await Sampler.create({
    runDir: config.runDir,
    t0: BigInt(config.t0),
    intervalNs: config.intervalNs,
    ...(config.slowPeriodNs !== undefined ? { slowPeriodNs: config.slowPeriodNs } : {}),
    processes: config.processes,
    listener: config.listener,
    netns: config.netns ?? null,
    procRoot: config.procRoot,
    perCpu: config.perCpu,
    sources: config.sources,
  });
  const s = sampler;
  const baselineNs = s.now();
  // SOCKSPIKE_PROBE_THREAD=0: the JS ticker reads for itself (a comparison; the fallback without the addon)
  const why = process.env.SOCKSPIKE_PROBE_THREAD === '0' ? 'turned off with SOCKSPIKE_PROBE_THREAD=0' : s.startCapture();
  if (why === null) {
    const lateness = new Lateness();
    const onSample = (scheduled: number, t: number): void => lateness.record(t > scheduled ? t - scheduled : 0);
    taking = { timer: setInterval(() => s.takeCaptured(onSample), TAKE_MS), lateness, onSample };
  } else {
    s.notes.push(`reads made by the probe process's JavaScript, not the addon's read thread (${why}): it costs about 1.7 times the CPU`);
    ticker = new Ticker(config.intervalNs, s.now, (scheduled) => s.sample(scheduled));
    ticker.start(baselineNs);
  }
  send({ type: 'ready', skipped: s.skipped, columns: s.columns.outputs.length, baselineNs });
}

function stop(reason: string): void {
  if (stopping) return;
  stopping = true;
  if (!sampler || (!ticker && !taking)) {
    // nothing started (or it failed: fatal() set the exit code)
    process.exit();
  }
  const jitter = endSchedule(sampler);
  // One last sample, so the end of the run is covered up to now; not if the
  // last one is very recent (a tiny dt makes rates and CPU shares meaningless).
  if (reason === 'stop' && sampler.now() - sampler.lastSampleNs >= sampler.intervalNs / 2) sampler.sample(sampler.now(), true);
  const result = sampler.finish(reason, jitter);
  if (process.send && process.connected) {
    send({ type: 'stopped', result });
    process.disconnect();
  } else if (!process.send) {
    process.stdout.write(JSON.stringify(result) + '\n');
  }
}

if (process.send) {
  // Ctrl-C reaches the whole process group: the parent decides when we stop.
  process.on('SIGINT', () => {});
  process.on('SIGTERM', () => stop('terminated'));
  process.on('disconnect', () => stop(stopping ? 'stop' : 'parent-gone'));
  process.on('message', (msg: ToSampler) => {
    try {
      if (msg.type === 'start') start(msg.config).catch((err) => fatal(err));
      else if (msg.type === 'addProcess') sampler?.addProcess(msg.role, msg.pid, msg.own === true);
      else if (msg.type === 'setListener') sampler?.setListener(msg.listener).catch((err) => fatal(err));
      else if (msg.type === 'stop') stop('stop');
    } catch (err) {
      fatal(err);
    }
  });
} else {
  let config: SamplerConfig;
  try {
    config = JSON.parse(process.argv[2] ?? '') as SamplerConfig;
  } catch {
    process.stderr.write('sampler-process: pass the config as JSON in the first argument (see probes/messages.ts)\n');
    process.exit(2);
  }
  process.on('SIGINT', () => stop('stop'));
  process.on('SIGTERM', () => stop('stop'));
  start(config).catch((err) => fatal(err));
}

/** Stop the schedule (the read thread's slots parsed first); its lateness. */
function endSchedule(s: Sampler): JitterStats {
  if (taking !== null) {
    clearInterval(taking.timer);
    s.stopCapture(taking.onSample);
    return taking.lateness.stats(s.captureMissed);
  }
  ticker?.stop();
  return ticker?.stats() ?? { meanNs: 0, p50Ns: 0, p99Ns: 0, maxNs: 0, missedSlots: 0 };
}

function fatal(err: unknown): void {
  const message = firstLine(err);
  send({ type: 'error', message });
  if (!process.send) process.stderr.write(`sampler-process: ${message}\n`);
  if (sampler && (ticker || taking) && !stopping) {
    stopping = true;
    sampler.finish(`error: ${message}`, endSchedule(sampler));
  }
  process.exitCode = 1;
  if (process.connected) process.disconnect();
}
