import { startStallMonitor, type StallMonitor } from '../../probes/stall-monitor.ts';

// The client and server processes watch their own event-loop delay and GC
// pauses (probes/stall-monitor.ts), so analysis can tell the harness's own
// stalls from the system's. One per process.
let monitor: StallMonitor | null = null;

export function startStallWatch(runDir: string, role: string, t0: bigint, intervalNs: number): void {
  if (monitor === null) monitor = startStallMonitor({ runDir, role, t0, intervalNs });
}

export function stopStallWatch(): void {
  monitor?.stop();
}
