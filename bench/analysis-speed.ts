import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { makeSyntheticRun } from './synthetic-run.ts';

// How fast `sockspike analyze` is on a big run (issue 4 "Speed", targets in
// issue 7: <= 5 s and <= 1 GiB for 1e6 transactions + 10 min of 20 ms
// samples). Writes a synthetic run directory (unless given one), then
// analyses it in a child process, so the peak RSS is the analysis's own
// (plus Node and tsx: the child's RSS before the analysis is printed too).
//
//   npx tsx bench/analysis-speed.ts [--dir DIR] [--transactions 1000000] [--duration 600] [--json] [--keep] [--cpu-prof DIR]
//
// --dir DIR: analyse DIR (written first if it has no run.json).
// --keep: keep the temporary run directory.
// --cpu-prof DIR: the child writes a V8 CPU profile into DIR.

const SELF = fileURLToPath(import.meta.url);
const TARGET_S = 5;
const TARGET_MIB = 1024;

interface ChildResult {
  baseRssMiB: number;
  analysis: { s: number; peakRssMiB: number };
  report: { s: number; peakRssMiB: number };
  summary: { attempted: number; outliers: number; modes: string[]; metrics: string[] };
}

const mib = (kib: number): number => Math.round(kib / 1024);

async function child(dir: string): Promise<void> {
  // Loaded here, not at the top: the parent needs none of it.
  const { analyzeRun } = await import('../analysis/analyze-run.ts');
  const { writeReport } = await import('../reports/run-report.ts');
  const base = process.resourceUsage().maxRSS;
  let t = performance.now();
  const s = analyzeRun(dir, { outlierUs: 100_000 });
  const analysisS = (performance.now() - t) / 1000;
  const analysisRss = process.resourceUsage().maxRSS;
  t = performance.now();
  writeReport(dir);
  const reportS = (performance.now() - t) / 1000;
  const reportRss = process.resourceUsage().maxRSS;
  const out: ChildResult = {
    baseRssMiB: mib(base),
    analysis: { s: round(analysisS), peakRssMiB: mib(analysisRss) },
    report: { s: round(reportS), peakRssMiB: mib(reportRss) },
    summary: {
      attempted: s.transactions.attempted,
      outliers: s.outliers.count,
      modes: (s.outliers.modes ?? []).map((m) => `${m.count} x ${m.timer ?? m.label}`),
      metrics: (s.systemState?.metrics ?? []).slice(0, 5).map((m) => m.metric),
    },
  };
  process.stdout.write(JSON.stringify(out) + '\n');
}

const round = (v: number): number => Math.round(v * 1000) / 1000;

function arg(args: string[], name: string): string | undefined {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : undefined;
}

function main(args: string[]): void {
  const json = args.includes('--json');
  const transactions = Number(arg(args, '--transactions') ?? 1_000_000);
  const durationS = Number(arg(args, '--duration') ?? 600);
  const given = arg(args, '--dir');
  const dir = given ?? join(mkdtempSync(join(tmpdir(), 'sockspike-bench-')), 'run');
  let generated: ReturnType<typeof makeSyntheticRun> | null = null;
  let genS = 0;
  if (!existsSync(join(dir, 'run.json'))) {
    const t = performance.now();
    generated = makeSyntheticRun(dir, { transactions, durationS, intervalMs: 20, outlierEvery: 1000, seed: 1 });
    genS = (performance.now() - t) / 1000;
  }
  const profDir = arg(args, '--cpu-prof');
  const profile = profDir === undefined ? [] : ['--cpu-prof', '--cpu-prof-dir', profDir];
  try {
    const r = spawnSync(process.execPath, [...profile, '--import', 'tsx', SELF, '--child', dir], {
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'inherit'],
      maxBuffer: 1 << 24,
    });
    if (r.status !== 0) throw new Error(`analysis child failed (${r.status ?? r.signal})`);
    const c = JSON.parse(r.stdout.trim().split('\n').pop()!) as ChildResult;
    const samples = generated?.sampleRows ?? null;
    const what = `${c.summary.attempted} transactions + ${samples ?? '?'} samples`;
    const totalS = round(c.analysis.s + c.report.s);
    const peak = Math.max(c.analysis.peakRssMiB, c.report.peakRssMiB);
    const met = totalS <= TARGET_S && peak <= TARGET_MIB;
    if (json) {
      console.log(
        JSON.stringify({
          dir,
          transactions: c.summary.attempted,
          samples,
          columns: generated?.columns ?? null,
          generateS: round(genS),
          ...c,
          total: { s: totalS, peakRssMiB: peak },
          target: { s: TARGET_S, rssMiB: TARGET_MIB, met },
        }),
      );
    } else {
      if (generated !== null)
        console.log(
          `synthetic run: ${generated.transactions} transactions (${generated.outliers} outliers, ${generated.failures} failures), ` +
            `${generated.sampleRows} samples x ${generated.columns} columns, written in ${genS.toFixed(1)} s to ${dir}`,
        );
      console.log(`child process before analysis: peak RSS ${c.baseRssMiB} MiB (node + tsx)`);
      console.log(`analysis of ${what}: ${c.analysis.s.toFixed(2)} s, peak RSS ${c.analysis.peakRssMiB} MiB`);
      console.log(`report of ${what}: ${c.report.s.toFixed(2)} s, peak RSS ${c.report.peakRssMiB} MiB`);
      console.log(`analysis + report: ${totalS.toFixed(2)} s, peak RSS ${peak} MiB (target <= ${TARGET_S} s, <= ${TARGET_MIB} MiB: ${met ? 'met' : 'MISSED'})`);
      console.log(
        `found: ${c.summary.outliers} outliers; modes ${c.summary.modes.join(', ') || 'none'}; strongest metrics ${c.summary.metrics.join(', ') || 'none'}`,
      );
    }
  } finally {
    if (given === undefined && !args.includes('--keep')) rmSync(join(dir, '..'), { recursive: true, force: true });
  }
}

if (process.argv[2] === '--child') await child(process.argv[3]);
else main(process.argv.slice(2));
