import type { Cause, CauseInput, CauseModule } from './types.ts';
import { levelNear, outlierSpan, pressureFraction, score, clamp01, runCommand } from './evidence.ts';
import { formatShare } from '../../lib/format.ts';
import { describeOwner, type CpuOwners } from './cpu-owners.ts';
import { lowerLoad } from '../../lib/run-args.ts';

// The machine's CPUs were busy (user + system time) around the outliers:
// runnable threads waited for a CPU, the harness's and the server's included.
// Who held them is said (cpu-owners.ts); when sockspike's own processes did,
// it is harness-cpu instead, not the system's doing.
//
// Scoring (see score()):
//   0.45  cpu.user + cpu.system near the outliers (strength: (busy - 0.6) / 0.3, at most 1)
//   0.20  busier near the outliers than otherwise (strength: difference / 0.2, at most 1)
//   0.35  pressure.cpu.some (share of time some task waited for a CPU) near the
//         outliers (strength: share / 0.3, at most 1); left out where PSI is missing
//         (strength 0 unless it is higher near the outliers than otherwise)
//   0.30  the outliers match no kernel timer (strength: the share in modes named for no timer):
//         a wait for a CPU does not come in the steps of the kernel's timers (1 s SYN
//         retransmissions, 200 ms RTOs); left out when there are no modes
// Required: busy >= 0.75 near the outliers and not less than otherwise, or CPU
// pressure >= 0.1 near the outliers and at least 1.25 x otherwise; and not
// held by sockspike alone (harnessHeld).

/** The CPUs' saturation around the outliers, scored; null when they were not saturated. */
export function saturation(input: CauseInput): { busy: number; confidence: number; evidence: string[] } | null {
  if (input.outliers.count === 0) return null;
  const u = levelNear(input, 'cpu.user');
  const s = levelNear(input, 'cpu.system');
  if (u === null || s === null || u.nearRows === 0) return null;
  const busy = u.near + s.near;
  const busyOther = u.otherwise + s.otherwise;
  const psi = pressureFraction(input, 'pressure.cpu.some');
  const psiUp = psi !== null && psi.near >= 0.1 && psi.near >= 1.25 * psi.otherwise;
  if (!(busy >= 0.75 && busy >= busyOther) && !psiUp) return null;
  const modes = input.outliers.modes;
  const untimed = modes.length === 0 ? null : 1 - modes.reduce((a, m) => a + (m.timer !== null ? m.share : 0), 0);
  const { confidence, evidence } = score([
    {
      weight: 0.45,
      strength: clamp01((busy - 0.6) / 0.3),
      text: `CPUs ${formatShare(busy)} busy (user ${formatShare(u.near)}, system ${formatShare(s.near)}) in the ${u.nearRows} samples around the outliers`,
    },
    { weight: 0.2, strength: clamp01((busy - busyOther) / 0.2), text: `against ${formatShare(busyOther)} busy in the other ${u.otherRows} samples` },
    {
      weight: 0.35,
      strength: psi === null ? null : psi.near > psi.otherwise ? clamp01(psi.near / 0.3) : 0,
      text: `some task waited for a CPU ${formatShare(psi?.near ?? 0)} of the time around the outliers (pressure.cpu.some), ${formatShare(psi?.otherwise ?? 0)} otherwise`,
    },
    {
      weight: 0.3,
      strength: untimed,
      text:
        untimed === null ? '' : `${formatShare(untimed)} of the outliers match no kernel timer (a wait for a CPU does not come in the kernel's timer steps)`,
    },
  ]);
  return { busy, confidence, evidence };
}

/** Everyone but sockspike used less than this many cores around the outliers: the saturation was the harness's. */
export const OTHERS_MAX_CORES = 0.5;

/** sockspike's own processes held most of the busy CPU time around the outliers, and nobody else held much. */
export function harnessHeld(cpu: CpuOwners | null | undefined): boolean {
  if (cpu === null || cpu === undefined) return false;
  const o = cpu.owners;
  const rest = o.server.near + o.injected.near + o.others.near;
  return o.sockspike.near >= 0.5 * cpu.busy.near && rest < OTHERS_MAX_CORES;
}

/** "held by: sockspike 1.2 cores (client 0.8, server 0.4); other processes 0.7 cores (...)", largest first. */
export function holders(cpu: CpuOwners): string {
  const o = cpu.owners;
  const named: [string, CpuOwners['owners'][keyof CpuOwners['owners']]][] = [
    ["sockspike's own processes", o.sockspike],
    ['the server under test', o.server],
    ['the injected load (--fault cpu-hog)', o.injected],
    ['other processes', o.others],
  ];
  return named
    .filter(([, x]) => x.near >= 0.05)
    .sort((a, b) => b[1].near - a[1].near)
    .map(([name, x]) => describeOwner(name, x))
    .join('; ');
}

export const cpuSaturation: CauseModule = {
  id: 'cpu-saturation',
  title: 'CPU saturation (user and system time)',
  needs: ['cpu.user, cpu.system probe samples', 'pressure.cpu.some', 'per-process CPU (who held the CPUs)'],
  match(input: CauseInput): Cause | null {
    const sat = saturation(input);
    if (sat === null || harnessHeld(input.cpu)) return null;
    const cpu = input.cpu ?? null;
    const who = cpu !== null ? holders(cpu) : '';
    return {
      id: this.id,
      confidence: sat.confidence,
      summary:
        `The CPUs were saturated around the outliers (${formatShare(sat.busy)} busy in user and system time): ${outlierSpan(input)} most likely waited for a CPU.` +
        (who !== '' ? ` The CPUs were held by ${who} (of ${cpu!.cpus}).` : ''),
      evidence: who !== '' ? [...sat.evidence, `busy cores around the outliers by owner: ${who}`] : sat.evidence,
      tryNext: [
        'Find who used the CPU: `pidstat -u 1`, `top -H`, `perf top`.',
        `Lower the load and compare: ${runCommand(input, lowerLoad(input.config, input.latencyP50Us))}`,
        'Pin the server and the client to separate cores (taskset) to see whether they compete.',
      ],
    };
  },
};
