import type { Cause, CauseInput, CauseModule } from './types.ts';
import { outlierSpan, runCommand } from './evidence.ts';
import { formatShare } from '../../lib/format.ts';
import { harnessHeld, holders, saturation } from './cpu-saturation.ts';

// The CPUs were saturated around the outliers, and sockspike's own processes
// (its client, its built-in server, probes, bpftrace) held them: the
// outliers are the load generator's scheduling delays, not the system's.
// Same saturation evidence and scoring as cpu-saturation; it applies when
// sockspike held at least half of the busy time and everyone else together
// less than half a core (cpu-saturation.ts harnessHeld).

export const harnessCpu: CauseModule = {
  id: 'harness-cpu',
  title: "The harness's own load saturated the CPUs",
  needs: ['cpu.user, cpu.system probe samples', 'per-process CPU of sockspike, the server and the rest'],
  match(input: CauseInput): Cause | null {
    const sat = saturation(input);
    const cpu = input.cpu ?? null;
    if (sat === null || cpu === null || !harnessHeld(cpu)) return null;
    const c = input.config;
    const fewer = Math.max(1, Math.floor(c.concurrency / 2));
    return {
      id: this.id,
      confidence: sat.confidence,
      summary:
        `The CPUs were saturated around the outliers (${formatShare(sat.busy)} busy), by sockspike's own processes: ${holders(cpu)} of ${cpu.cpus} CPUs. ` +
        `${outlierSpan(input)} are most likely the load generator waiting for a CPU, which says nothing about the system under test.`,
      evidence: [...sat.evidence, `busy cores around the outliers by owner: ${holders(cpu)}`],
      tryNext: [
        ...(c.concurrency > 1 ? [`Fewer concurrent transactions: ${runCommand(input, { '--concurrency': fewer })}`] : []),
        'Give the run more cores than its client and server use, or run the client on another host against `--target HOST:PORT`.',
      ],
    };
  },
};
