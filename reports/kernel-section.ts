import type { RunManifest } from '../lib/run-files.ts';
import type { Summary } from '../lib/types.ts';
import { table } from './markdown.ts';
import { formatSeconds } from '../lib/format.ts';
import { loadStartNs } from '../analysis/read-run.ts';

// The kernel side of a run in the report: its namespace, the sysctls it
// changed (where, from what) and the faults it injected, with when each was
// really on and whether the diagnosis found it.

export function kernelSection(m: RunManifest, s: Summary): string | null {
  const k = m.kernel;
  if (k === undefined || (k.netns === null && k.sysctls.length === 0 && k.faults.length === 0)) return null;
  const out: string[] = [];
  out.push(
    k.netns === null
      ? 'The run used the host network namespace.'
      : `Server, client and the network probes ran in a network namespace of the run's own (\`${k.netns}\`, loopback only, deleted afterwards): its TCP counters and per-namespace sysctls were the run's alone.`,
    '',
  );
  if (k.sysctls.length > 0) {
    out.push(
      table(
        ['sysctl', 'set to', 'where', 'before', 'read back'],
        k.sysctls.map((x) => [`\`${x.key}\``, x.value, x.scope === 'host' ? 'host (restored afterwards)' : 'run namespace', x.before, x.after]),
        ['l', 'l', 'l', 'l', 'l'],
      ),
      '',
    );
  }
  if (k.faults.length > 0) {
    const checks = s.faults ?? [];
    // run.json has when each fault was really on in ns since t0; the report counts from the load's start, as the windows asked for do
    const origin = loadStartNs(m);
    out.push(
      table(
        ['fault', 'asked for', 'was on (s)', 'outliers while on', 'should show as', 'what happened'],
        k.faults.map((f, i) => {
          const c = checks[i];
          const asked = `${formatSeconds(f.fromNs)} – ${f.toNs === null ? 'end' : formatSeconds(f.toNs)}`;
          const on = f.startNs === null ? 'never' : `${formatSeconds(f.startNs - origin)} – ${f.stopNs === null ? '?' : formatSeconds(f.stopNs - origin)}`;
          const found = c === undefined ? '' : c.matched ? 'found: ranks first' : c.rank !== null ? `ranks #${c.rank}` : 'not found';
          return [
            `\`${f.text}\``,
            asked,
            on,
            c === undefined ? '' : `${c.outliersWhileOn} of ${c.outliers}`,
            c?.expectedCause ?? '',
            [found, ...f.detail].filter((x) => x !== '').join('; '),
          ];
        }),
        ['l', 'l', 'l', 'r', 'l', 'l'],
      ),
      '',
      "Times are seconds into the load (from the first transaction's intended start); the timeline shades each fault while it was on.",
    );
  }
  return out.join('\n');
}
