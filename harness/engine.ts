// The native workload engine (native/engine/, issue 11): where its program
// is, whether a run can use it, and the start message's `engineArgs`, the
// run's configuration as `k=v` pairs the C side reads without a JSON parser
// (strings hex-encoded, so nothing in it needs escaping). The messages are
// otherwise those of harness/messages.ts: the engine speaks Node's IPC
// (newline-delimited JSON on NODE_CHANNEL_FD).
import { existsSync } from 'node:fs';
import { relative } from 'node:path';
import { packageFile, ROOT } from '../lib/paths.ts';
import { UserError } from '../lib/errors.ts';
import type { RunConfig } from '../lib/types.ts';
import type { StartMessage } from './messages.ts';
import { shareOf } from './workload/client-share.ts';

export type EngineKind = 'native' | 'node';

/** Built by `node native/build.js` (npm install). */
export const ENGINE_BINARY = packageFile('native/build/engine/sockspike-engine');
/** Built by `SOCKSPIKE_ENGINE_SANITIZE=1 node native/build.js`: AddressSanitizer and UBSan. */
export const ENGINE_SANITIZED_BINARY = packageFile('native/build/engine-sanitize/sockspike-engine');

/** The engine program this process starts: SOCKSPIKE_ENGINE_BIN (tests: the sanitized build), else the normal build. */
export const engineBinary = (): string => process.env.SOCKSPIKE_ENGINE_BIN ?? ENGINE_BINARY;

/** Why the native engine cannot run here (null: it can). */
export function engineUnavailable(): string | null {
  if (process.env.SOCKSPIKE_NO_ENGINE === '1') return 'SOCKSPIKE_NO_ENGINE=1';
  if (process.platform !== 'linux') return `the engine is Linux-only; this is ${process.platform}`;
  const bin = engineBinary();
  if (!existsSync(bin)) return `${relative(ROOT, bin) || bin} is not built: npm install builds it, with a C compiler`;
  return null;
}

/** Requests above this go to the Node client: the engine gets its request inside one IPC line. */
const MAX_TEMPLATE_BYTES = 4 << 20;

/** A feature of this configuration the engine does not support (null: none). */
export function engineCannot(cfg: RunConfig): string | null {
  const t = cfg.template;
  if (t && Buffer.byteLength(t.requestBase64, 'base64') > MAX_TEMPLATE_BYTES) return `a request template above ${MAX_TEMPLATE_BYTES >> 20} MiB`;
  return null;
}

/** --engine: native (default where it is built and supports the run), or node. */
export function resolveEngine(flag: string | undefined, cfg: RunConfig): EngineKind {
  if (flag === 'node') return 'node';
  if (flag !== undefined && flag !== 'native') throw new UserError(`--engine: "${flag}" must be native or node`);
  const why = engineUnavailable() ?? engineCannot(cfg);
  if (why === null) return 'native';
  if (flag === 'native') throw new UserError(`--engine native: the native engine cannot run this (${why}); use --engine node`);
  return 'node';
}

/** The one line a run on Node says, on stderr and in the report; null when the engine runs or Node was asked for. */
export function engineFallbackNote(cfg: RunConfig): string | null {
  if (cfg.engine !== 'node') return null;
  const why = engineUnavailable() ?? engineCannot(cfg);
  return why === null ? null : `native engine not used (${why}): the built-in client and server ran on Node, which adds its own latency`;
}

const hex = (s: string | Buffer): string => Buffer.from(s).toString('hex');
const int = (n: number): string => String(Math.round(n));

/** The configuration of one engine process, from its start message (a client gets its --client-processes share). */
export function engineArgs(m: StartMessage): string {
  const share = shareOf(m.config, m.part?.index ?? 0, m.part?.of ?? 1);
  const c = share.config;
  const kv: Record<string, string> = {
    t0: m.t0,
    dir: hex(m.runDir),
    file: hex(m.file),
    host: hex(c.host),
    progress: m.progress ? '1' : '0',
    port: int(c.port),
    exchanges: int(c.exchanges),
    sx: int(c.serverExchanges),
    q: int(c.requestBytes),
    r: int(c.responseBytes),
    conc: int(c.concurrency),
    txns: c.transactions === null ? '-1' : int(c.transactions),
    dur: c.durationNs === null ? '-1' : int(c.durationNs),
    think: int(c.thinkTimeNs),
    cto: int(c.connectTimeoutNs),
    ito: int(c.ioTimeoutNs),
    rate: c.rate === null ? '-1' : String(c.rate),
    poisson: c.arrivals === 'poisson' ? '1' : '0',
    seed: int(c.seed),
    maxinf: int(c.maxInflight),
    close: c.close,
    linger: int(c.lingerSeconds),
    perconn: int(c.perConnection),
    backlog: int(c.backlog),
    nodelay: c.nodelay ? '1' : '0',
    split: int(c.splitWrites),
    adelay: int(c.acceptDelayNs),
    fw: int(share.firstWorker),
    probe: int(c.probeIntervalNs),
  };
  const t = c.template;
  if (t) {
    kv.tmpl = Buffer.from(t.requestBase64, 'base64').toString('hex');
    const u = t.until;
    kv.until = u.kind === 'close' ? '1' : u.kind === 'bytes' ? '2' : '3';
    if (u.kind === 'bytes') kv.ubytes = int(u.bytes);
    if (u.kind === 'delimiter') kv.udelim = Buffer.from(u.delimiterBase64, 'base64').toString('hex');
  }
  return Object.entries(kv)
    .map(([k, v]) => `${k}=${v}`)
    .join(' ');
}
