// `npm run validate`: does the catalogue name the right cause on runs it was
// not tuned to? Runs every scenario (harness/scenarios.ts) and a set of clean
// runs (concurrency 1 to 16, every close variant, keepalive, the defaults),
// one at a time, and prints a confusion table: each run, the cause expected,
// the cause named first and the expected cause's rank and confidence. A
// clean run passes when it names no system cause (no cause, or only the
// harness's own: harness-stall, harness-cpu).
//
//   npm run validate [-- --quick] [--json] [--only NAME,...] [--keep DIR] [--from DIR]
//
// --keep DIR keeps the run directories; --from DIR analyses the ones a
// --keep left there again (sockspike analyze) instead of running anything:
// the same recorded runs through the current analysis.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SCENARIOS } from '../harness/scenarios.ts';
import { UserError } from '../lib/errors.ts';
import { formatSeconds } from '../lib/format.ts';
import { packageFile } from '../lib/paths.ts';
import { readSummary } from '../lib/run-files.ts';
import { table } from '../reports/markdown.ts';

interface Case {
  name: string;
  /** Causes any of which may come first; each must be named. [] : a clean run (no system cause). */
  expect: string[];
  args: string[];
}

export interface Row {
  name: string;
  expect: string;
  first: string;
  /** Rank of the expected cause (1: first), or of the worst-ranked of several; null: not named. */
  rank: number | null;
  confidence: number | null;
  pass: boolean;
  seconds: number;
}

const BIN = packageFile('bin/sockspike.js');
const HARNESS = new Set(['harness-stall', 'harness-cpu']);

function cases(quick: boolean): Case[] {
  const out: Case[] = SCENARIOS.map((s) => ({
    name: `scenario ${s.name}`,
    expect: s.cause === null ? [] : [s.cause, ...(s.also ?? [])],
    // the reported case's single client rarely overflows backlog 1 on a current kernel: with 4 clients it does
    args: ['--scenario', s.name, ...(s.name.startsWith('reported-case') ? ['--concurrency', '4'] : [])],
  }));
  const levels = quick ? ['1', '8'] : ['1', '4', '16'];
  const closes = quick ? ['client-fin', 'server-rst', 'keepalive'] : ['client-fin', 'server-fin', 'client-rst', 'server-rst', 'linger:1', 'keepalive'];
  for (const close of closes)
    for (const c of levels)
      out.push({ name: `clean ${close} concurrency ${c}`, expect: [], args: ['--netns', '--close', close, '--concurrency', c, '--duration', '3s'] });
  out.push({ name: 'clean defaults', expect: [], args: ['--netns', '--duration', '5s'] });
  return out;
}

function runCase(c: Case, dir: string, reanalyse: boolean): Row {
  const started = Date.now();
  const out = join(dir, c.name.replace(/[^a-z0-9]+/gi, '-'));
  try {
    const args = reanalyse ? ['analyze', out] : ['run', ...c.args, '--out', out, '--no-progress'];
    execFileSync(process.execPath, [BIN, ...args], { stdio: ['ignore', 'ignore', 'pipe'], timeout: 180_000 });
  } catch (e) {
    const err = e as { stderr?: Buffer; status?: number };
    const why = err.stderr?.toString().trim().split('\n')[0] ?? String(e);
    return {
      name: c.name,
      expect: c.expect.join(' + ') || 'no system cause',
      first: `run failed: ${why}`,
      rank: null,
      confidence: null,
      pass: false,
      seconds: secondsSince(started),
    };
  }
  const causes = readSummary(out).causes ?? [];
  const ids = causes.map((x) => x.id);
  const first = causes[0] === undefined ? 'none' : `${causes[0].id} (${Math.round(causes[0].confidence * 100)}%)`;
  if (c.expect.length === 0) {
    const system = causes.filter((x) => !HARNESS.has(x.id));
    return { name: c.name, expect: 'no system cause', first, rank: null, confidence: null, pass: system.length === 0, seconds: secondsSince(started) };
  }
  const ranks = c.expect.map((id) => ids.indexOf(id));
  const named = ranks.every((r) => r >= 0);
  const worst = Math.max(...ranks);
  const top = causes.find((x) => x.id === c.expect[0]);
  return {
    name: c.name,
    expect: c.expect.join(' + '),
    first,
    rank: named ? worst + 1 : null,
    confidence: top === undefined ? null : top.confidence,
    pass: named && c.expect.includes(ids[0]) && worst < c.expect.length,
    seconds: secondsSince(started),
  };
}

const secondsSince = (ms: number): number => (Date.now() - ms) / 1000;

export function confusionTable(rows: Row[]): string {
  const head = ['run', 'expected', 'named first', 'rank of expected', 'its confidence', 'pass'];
  const body = rows.map((r) => [
    r.name,
    r.expect,
    r.first,
    r.rank === null ? '-' : String(r.rank),
    r.confidence === null ? '-' : `${Math.round(r.confidence * 100)}%`,
    r.pass ? 'yes' : '**no**',
  ]);
  return table(head, body, ['l', 'l', 'l', 'r', 'r', 'l']);
}

export async function main(argv: string[]): Promise<void> {
  let quick = false;
  let json = false;
  let only: string[] | null = null;
  let keep: string | null = null;
  let from: string | null = null;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--quick') quick = true;
    else if (a === '--json') json = true;
    else if (a === '--only') only = (argv[++i] ?? '').split(',').filter(Boolean);
    else if (a === '--keep') keep = argv[++i] ?? null;
    else if (a === '--from') from = argv[++i] ?? null;
    else throw new UserError(`unknown option ${a} (use --quick, --json, --only NAME,..., --keep DIR, --from DIR)`);
  }
  const all = cases(quick).filter((c) => only === null || only.some((o) => c.name.includes(o)));
  if (all.length === 0) throw new UserError(`--only ${only?.join(',')}: no run matches`);
  if (from !== null && !existsSync(from)) throw new UserError(`--from ${from}: no such directory (a --keep DIR of an earlier validation)`);
  const dir = from ?? keep ?? mkdtempSync(join(tmpdir(), 'sockspike-validate-'));
  const rows: Row[] = [];
  try {
    for (const c of all) {
      const r = runCase(c, dir, from !== null);
      rows.push(r);
      if (process.stderr.isTTY && !json) process.stderr.write(`${r.pass ? 'ok  ' : 'FAIL'} ${r.name}: ${r.first} (${formatSeconds(r.seconds * 1e9, 0)})\n`);
    }
  } finally {
    if (keep === null && from === null) rmSync(dir, { recursive: true, force: true });
  }
  if (json) process.stdout.write(JSON.stringify(rows, null, 2) + '\n');
  else {
    const passed = rows.filter((r) => r.pass).length;
    const how = from !== null ? `npm run validate -- --from ${from} (runs recorded earlier, analysed again)` : `npm run validate${quick ? ' -- --quick' : ''}`;
    process.stdout.write(`${confusionTable(rows)}\n\n${passed} of ${rows.length} runs as expected; command: ${how}\n`);
  }
  if (rows.some((r) => !r.pass)) process.exitCode = 1;
}
