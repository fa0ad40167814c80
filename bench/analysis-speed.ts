import { spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { makeSyntheticRun } from './synthetic-run.ts';

// How fast `sockspike analyze` is on a big run (issue 12: <= 5 s and
// <= 1 GiB for a real 1 000 000-transaction client-rst run with probes and
// kernel events; aim 1 s). Writes a synthetic run directory shaped like a
// real one (bench/synthetic-run.ts: probe samples over the whole run, kernel
// events at two per transaction as the tracer stores them, outliers of two
// kinds), unless given a run directory, then runs what `sockspike analyze`
// runs (cli/pipeline.ts analyzeAndReport: summary.json, report.md and the
// pictures) in a child process of the compiled JavaScript, as the command
// does. The wall time is the child's, from spawn to exit (Node's start and
// module loading included); the peak RSS is the child's own.
//
//   npx tsx bench/analysis-speed.ts [--dir DIR] [--transactions 1000000] [--duration 1680] [--json] [--keep] [--cpu-prof DIR]
//
// --dir DIR: analyse DIR (written first if it has no run.json), e.g. a real
//   run: `sockspike run --transactions 1000000 --concurrency 8 --close client-rst --out /tmp/big1m`;
//   it is copied first, so the run's own summary and report stay as they were.
// --duration: the run's length in seconds (samples every 20 ms over all of
//   it); 1680 s is the 28 minutes of the 917 504-transaction run of issue 12.
// --keep: keep the temporary run directory.
// --cpu-prof DIR: the child writes a V8 CPU profile into DIR.

const SELF = fileURLToPath(import.meta.url);
const ROOT = join(dirname(SELF), '..');
const TARGET_S = 5;
const TARGET_MIB = 1024;

interface ChildResult {
  baseRssMiB: number;
  analysisS: number;
  reportS: number;
  peakRssMiB: number;
  summary: {
    attempted: number;
    outliers: number;
    modes: string[];
    causes: string[];
    metrics: string[];
    kernelEvents: number | null;
  };
}

const mib = (kib: number): number => Math.round(kib / 1024);

async function child(dir: string): Promise<void> {
  const base = process.resourceUsage().maxRSS;
  const { analyzeAndReport } = await import('../cli/pipeline.ts');
  let analysisAt = 0;
  const t = performance.now();
  const s = await analyzeAndReport(dir, {
    onStage: (text) => {
      if (text.startsWith('rendering')) analysisAt = performance.now();
    },
  });
  const end = performance.now();
  const out: ChildResult = {
    baseRssMiB: mib(base),
    analysisS: round((analysisAt - t) / 1000),
    reportS: round((end - analysisAt) / 1000),
    peakRssMiB: mib(process.resourceUsage().maxRSS),
    summary: {
      attempted: s.transactions.attempted,
      outliers: s.outliers.count,
      modes: (s.outliers.modes ?? []).map((m) => `${m.count} x ${m.timer ?? m.label}`),
      causes: (s.causes ?? []).map((c) => `${c.id} ${c.confidence}`),
      metrics: (s.systemState?.metrics ?? []).slice(0, 5).map((m) => m.metric),
      kernelEvents: typeof s.probes?.kernelEvents === 'number' ? s.probes.kernelEvents : null,
    },
  };
  process.stdout.write(JSON.stringify(out) + '\n');
}

const round = (v: number): number => Math.round(v * 1000) / 1000;

function arg(args: string[], name: string): string | undefined {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : undefined;
}

/** The child: the compiled JavaScript when built (what `sockspike analyze` runs), else the sources through tsx. */
function childCommand(dir: string, profile: string[]): string[] {
  const compiled = join(ROOT, 'dist', 'bench', 'analysis-speed.js');
  return existsSync(compiled) ? [...profile, compiled, '--child', dir] : [...profile, '--import', 'tsx', SELF, '--child', dir];
}

function main(args: string[]): void {
  const json = args.includes('--json');
  const transactions = Number(arg(args, '--transactions') ?? 1_000_000);
  const durationS = Number(arg(args, '--duration') ?? 1680);
  const given = arg(args, '--dir');
  const tmp = mkdtempSync(join(tmpdir(), 'sockspike-bench-'));
  const dir = join(tmp, 'run');
  let generated: ReturnType<typeof makeSyntheticRun> | null = null;
  let genS = 0;
  if (given !== undefined && existsSync(join(given, 'run.json'))) cpSync(given, dir, { recursive: true });
  else {
    const t = performance.now();
    generated = makeSyntheticRun(given ?? dir, {
      transactions,
      durationS,
      intervalMs: 20,
      outlierEvery: 1000,
      exchangeOutlierEvery: 1000,
      kernelEvents: true,
      seed: 1,
    });
    if (given !== undefined) cpSync(given, dir, { recursive: true });
    genS = (performance.now() - t) / 1000;
  }
  const profDir = arg(args, '--cpu-prof');
  const profile = profDir === undefined ? [] : ['--cpu-prof', '--cpu-prof-dir', profDir];
  try {
    const t = performance.now();
    const r = spawnSync(process.execPath, childCommand(dir, profile), { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'], maxBuffer: 1 << 24 });
    const wallS = round((performance.now() - t) / 1000);
    if (r.status !== 0) throw new Error(`analysis child failed (${r.status ?? r.signal})`);
    const c = JSON.parse(r.stdout.trim().split('\n').pop()!) as ChildResult;
    const samples = generated?.sampleRows ?? null;
    const what = `${c.summary.attempted} transactions${samples === null ? '' : ` + ${samples} samples`}${c.summary.kernelEvents === null ? '' : ` + ${c.summary.kernelEvents} kernel events`}`;
    const met = wallS <= TARGET_S && c.peakRssMiB <= TARGET_MIB;
    if (json) {
      console.log(
        JSON.stringify({
          dir: given ?? null,
          transactions: c.summary.attempted,
          samples,
          kernelEvents: c.summary.kernelEvents,
          kernelEventsRecorded: generated?.kernelEventsRecorded ?? null,
          outliers: c.summary.outliers,
          columns: generated?.columns ?? null,
          generateS: round(genS),
          ...c,
          total: { s: wallS, peakRssMiB: c.peakRssMiB },
          target: { s: TARGET_S, rssMiB: TARGET_MIB, met },
        }),
      );
    } else {
      if (generated !== null)
        console.log(
          `synthetic run: ${generated.transactions} transactions (${generated.connectOutliers} ~1 s connect and ${generated.exchangeOutliers} ~200 ms exchange outliers, ` +
            `${generated.failures} failures), ${generated.sampleRows} samples x ${generated.columns} columns, ${generated.kernelEvents} kernel events ` +
            `(${generated.kernelEventsRecorded} recorded one by one), written in ${genS.toFixed(1)} s`,
        );
      console.log(`sockspike analyze (summary, report and pictures) of ${what}: ${wallS.toFixed(2)} s wall, peak RSS ${c.peakRssMiB} MiB`);
      console.log(
        `  of which analysis ${c.analysisS.toFixed(2)} s, report and pictures ${c.reportS.toFixed(2)} s; Node and the modules: the rest (RSS before: ${c.baseRssMiB} MiB)`,
      );
      console.log(`  target <= ${TARGET_S} s, <= ${TARGET_MIB} MiB: ${met ? 'met' : 'MISSED'}`);
      console.log(
        `found: ${c.summary.outliers} outliers; modes ${c.summary.modes.join(', ') || 'none'}; causes ${c.summary.causes.join(', ') || 'none'}; ` +
          `strongest metrics ${c.summary.metrics.join(', ') || 'none'}`,
      );
    }
  } finally {
    if (!args.includes('--keep')) rmSync(tmp, { recursive: true, force: true });
    else console.error(`kept ${dir}`);
  }
}

if (process.argv[2] === '--child') await child(process.argv[3]);
else main(process.argv.slice(2));
