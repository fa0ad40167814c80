import { execa, type ResultPromise } from 'execa';
import { existsSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { formatSeconds, formatUs } from '../lib/format.ts';
import { UserError } from '../lib/errors.ts';
import { trapStopSignals } from '../lib/signals.ts';
import { packageFile } from '../lib/paths.ts';
import { prng } from '../lib/prng.ts';
import { FILES, readSummaryIfAny, writeJson } from '../lib/run-files.ts';

// sockspike matrix: every combination of the --vary values, N times each,
// each as a normal run directory made by a child `sockspike run` (so every
// run flag passes through unchanged and one crashing run does not take the
// matrix down). The order is shuffled in each repetition block (seeded) or
// interleaved, so slow drift of the machine does not favour one variant.
// matrix.json records the plan and each run's outcome as it goes.

export const MATRIX_FILE = 'matrix.json';
export const MATRIX_FORMAT = 'sockspike-matrix';
export const MATRIX_VERSION = 1;
export const RUNS_SUBDIR = 'runs';

const BIN = packageFile('bin/sockspike.js');

/** How a run flag is written: with a value (--backlog 1), a switch (--redact), or a negated switch (--no-probes). */
export type FlagKind = 'value' | 'switch' | 'negated';

export interface VarySpec {
  key: string;
  values: string[];
}

export interface MatrixVariant {
  name: string;
  settings: Record<string, string>;
  /** The run flags that make this variant. */
  flags: string[];
  /** Directory of its runs, relative to the matrix directory. */
  dir: string;
}

export interface ScheduledRun {
  position: number;
  block: number;
  variant: string;
  rep: number;
  /** Run directory, relative to the matrix directory. */
  dir: string;
  exit: number | string | null;
  seconds: number;
  startedAt: string | null;
  /** The run's last error line when it did not complete. */
  error?: string;
  /** The matrix was stopped (Ctrl-C, SIGTERM) while this run was going. */
  interrupted?: boolean;
}

export interface MatrixManifest {
  format: typeof MATRIX_FORMAT;
  version: number;
  command: string;
  vary: VarySpec[];
  repeat: number;
  order: 'random' | 'interleaved';
  seed: number;
  baseline: string;
  /** Run flags every run gets. */
  runFlags: string[];
  variants: MatrixVariant[];
  schedule: ScheduledRun[];
  status: 'running' | 'complete' | 'interrupted';
}

const TRUE = new Set(['on', 'true', 'yes', '1']);
const FALSE = new Set(['off', 'false', 'no', '0']);

/**
 * Parse --vary KEY=V1,V2 texts. `flagKind(key)` says how the run command
 * takes that flag (undefined: no such flag). sysctl.KEY maps to --sysctl KEY=VALUE.
 */
export function parseVary(texts: string[], flagKind: (key: string) => FlagKind | undefined): VarySpec[] {
  const out: VarySpec[] = [];
  for (const text of texts) {
    const m = /^([A-Za-z0-9][A-Za-z0-9._-]*)=(.*)$/s.exec(text);
    if (!m) throw new UserError(`--vary ${text}: expected KEY=V1,V2 (e.g. backlog=1,128 or sysctl.net.ipv4.tcp_tw_reuse=0,1)`);
    const key = m[1].replace(/^-+/, '');
    const values = m[2].split(',').map((v) => v.trim());
    if (values.some((v) => v === '')) throw new UserError(`--vary ${text}: an empty value (values are separated by commas)`);
    if (new Set(values).size !== values.length) throw new UserError(`--vary ${text}: a value appears twice`);
    if (out.some((v) => v.key === key)) throw new UserError(`--vary ${key} is given twice: put all its values in one --vary`);
    if (key === 'out' || key === 'json') throw new UserError(`--vary ${key}: not a setting a matrix can vary`);
    if (key.startsWith('sysctl.')) {
      if (key.length <= 7) throw new UserError(`--vary ${text}: sysctl.KEY needs a sysctl name, e.g. sysctl.net.ipv4.tcp_tw_reuse`);
      if (flagKind('sysctl') !== 'value') throw new UserError(`--vary ${key}: this sockspike's run has no --sysctl flag`);
    } else {
      const kind = flagKind(key);
      if (kind === undefined) throw new UserError(`--vary ${key}: sockspike run has no --${key} flag (see sockspike run --help)`);
      if (kind !== 'value')
        for (const v of values) if (!TRUE.has(v) && !FALSE.has(v)) throw new UserError(`--vary ${key}=${v}: --${key} is a switch; vary it with on,off`);
    }
    out.push({ key, values });
  }
  return out;
}

/** The run flags of one setting. */
export function flagsOf(key: string, value: string, kind: FlagKind | undefined): string[] {
  if (key.startsWith('sysctl.')) return ['--sysctl', `${key.slice(7)}=${value}`];
  if (kind === 'switch') return TRUE.has(value) ? [`--${key}`] : [];
  if (kind === 'negated') return FALSE.has(value) ? [`--no-${key}`] : [];
  return [`--${key}`, value];
}

/** A variant's name as a directory name (spaces and slashes of sysctl values replaced). */
export const dirNameOf = (name: string): string => name.replace(/[^A-Za-z0-9._=,:+-]/g, '_');

/** Every combination of the values, the first --vary varying slowest; names list keys sorted. */
export function variantsOf(vary: VarySpec[], flagKind: (key: string) => FlagKind | undefined): MatrixVariant[] {
  let combos: Record<string, string>[] = [{}];
  for (const v of vary) combos = combos.flatMap((c) => v.values.map((x) => ({ ...c, [v.key]: x })));
  return combos.map((settings) => {
    const name = Object.keys(settings)
      .sort()
      .map((k) => `${k}=${settings[k]}`)
      .join(',');
    return {
      name,
      settings,
      flags: vary.flatMap((v) => flagsOf(v.key, settings[v.key], v.key.startsWith('sysctl.') ? 'value' : flagKind(v.key))),
      dir: join(RUNS_SUBDIR, dirNameOf(name)),
    };
  });
}

/** The order of runs: `repeat` blocks, each holding every variant once, shuffled per block (random) or as listed (interleaved). */
export function scheduleOf(variants: MatrixVariant[], repeat: number, order: 'random' | 'interleaved', seed: number): ScheduledRun[] {
  const rand = prng(seed);
  const out: ScheduledRun[] = [];
  for (let b = 0; b < repeat; b++) {
    const idx = variants.map((_, i) => i);
    if (order === 'random')
      for (let i = idx.length - 1; i > 0; i--) {
        const j = Math.floor(rand() * (i + 1));
        [idx[i], idx[j]] = [idx[j], idx[i]];
      }
    for (const i of idx)
      out.push({
        position: out.length + 1,
        block: b + 1,
        variant: variants[i].name,
        rep: b + 1,
        dir: join(variants[i].dir, `r${b + 1}`),
        exit: null,
        seconds: 0,
        startedAt: null,
      });
  }
  return out;
}

export interface RunMatrixOptions {
  dir: string;
  manifest: MatrixManifest;
  /** Show a line per run on stderr (only when it is a terminal). */
  progress: boolean;
}

/** Runs the schedule, one child at a time; stops cleanly on SIGINT/SIGTERM (signalling only its own child). */
export async function runMatrix(o: RunMatrixOptions): Promise<{ manifest: MatrixManifest; signal: NodeJS.Signals | null }> {
  const m = o.manifest;
  const save = (): void => writeJson(join(o.dir, MATRIX_FILE), m);
  const tty = o.progress && process.stderr.isTTY === true;
  let child: ResultPromise | null = null;
  // first signal: let the running run stop cleanly (it writes its report); again: stop it now
  const signals = trapStopSignals((_sig, count) => {
    if (child?.pid !== undefined) child.kill(count > 1 ? 'SIGTERM' : 'SIGINT');
  });
  save();
  try {
    for (const s of m.schedule) {
      if (signals.first !== null) break;
      const variant = m.variants.find((v) => v.name === s.variant)!;
      const runDir = join(o.dir, s.dir);
      s.startedAt = new Date().toISOString();
      const t0 = Date.now();
      if (tty) process.stderr.write(`\r\x1b[K[${s.position}/${m.schedule.length}] ${s.variant} r${s.rep} ...`);
      // its own process group: a Ctrl-C on the terminal reaches the matrix only, which passes it on once
      child = execa('node', [BIN, 'run', ...m.runFlags, ...variant.flags, '--out', runDir], {
        reject: false,
        stdin: 'ignore',
        detached: true,
        env: { NO_COLOR: '1' },
      });
      const r = await child;
      child = null;
      s.seconds = (Date.now() - t0) / 1000;
      s.exit = r.exitCode ?? r.signal ?? 'unknown';
      // stopped by the matrix's own Ctrl-C / SIGTERM: interrupted, whatever the child's exit says
      if (signals.first !== null) s.interrupted = true;
      if (s.exit !== 0) {
        const lines = String(r.stderr ?? '')
          .trim()
          .split('\n')
          .filter(Boolean);
        s.error = (lines[lines.length - 1] ?? `exit ${String(s.exit)}`).slice(0, 500);
      }
      save();
      if (tty) process.stderr.write(`\r\x1b[K[${s.position}/${m.schedule.length}] ${s.variant} r${s.rep}: ${describe(runDir, s)}\n`);
    }
  } finally {
    signals.release();
  }
  m.status = signals.first !== null ? 'interrupted' : 'complete';
  save();
  return { manifest: m, signal: signals.first };
}

function describe(runDir: string, s: ScheduledRun): string {
  const x = s.exit === 0 ? readSummaryIfAny(runDir) : null;
  if (s.exit !== 0) return `exit ${String(s.exit)}${s.error ? `: ${s.error}` : ''}`;
  if (x === null) return `done (${formatSeconds(s.seconds * 1e9, 1)})`;
  return `${x.transactions.attempted} transactions, p99 ${formatUs(x.latencyUs.total.p99)}, ${x.outliers.count} outliers (${formatSeconds(s.seconds * 1e9, 1)})`;
}

/** Read a matrix directory's matrix.json (null when the directory has none). */
export function readMatrix(dir: string): MatrixManifest | null {
  const path = join(dir, MATRIX_FILE);
  if (!existsSync(path)) return null;
  let m: MatrixManifest;
  try {
    m = JSON.parse(readFileSync(path, 'utf8')) as MatrixManifest;
  } catch {
    throw new UserError(`corrupt matrix directory: ${path} is not valid JSON`);
  }
  if (m.format !== MATRIX_FORMAT) throw new UserError(`${path} is not a sockspike matrix file`);
  if (m.version > MATRIX_VERSION) throw new UserError(`${path} has version ${m.version}; this sockspike reads up to ${MATRIX_VERSION}: upgrade sockspike`);
  return m;
}

/** The finished runs of a matrix (exit 0 and a run.json), with their variant's settings. */
export function matrixRuns(dir: string, m: MatrixManifest): { dir: string; variant: string; settings: Record<string, string> }[] {
  const settings = new Map(m.variants.map((v) => [v.name, v.settings]));
  return m.schedule
    .filter((s) => s.exit === 0 && existsSync(join(dir, s.dir, FILES.manifest)))
    .map((s) => ({ dir: join(dir, s.dir), variant: s.variant, settings: settings.get(s.variant) ?? {} }));
}

export const relativeTo = (base: string, p: string): string => relative(base, p) || '.';
