import { join } from 'node:path';
import { FILES, writeJson } from '../lib/rundir.ts';
import type { Summary } from '../lib/types.ts';
import { readManifest, readServer, readTransactions } from './read-run.ts';
import { summarize } from './summarize.ts';

/**
 * Rebuild summary.json of a run directory from its files alone (any
 * machine, nothing re-run). `outlierUs` overrides the run's threshold.
 */
export function analyzeRun(dir: string, opts: { outlierUs?: number } = {}): Summary {
  const m = readManifest(dir);
  if (opts.outlierUs !== undefined) m.config.outlierUs = opts.outlierUs;
  const c = readTransactions(dir, m);
  const s = readServer(dir, m);
  const summary = summarize(m, c, s);
  writeJson(join(dir, FILES.summary), summary);
  return summary;
}
