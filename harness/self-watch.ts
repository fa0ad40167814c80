import { startSelfMonitor, type SelfMonitor } from '../probes/self-monitor.ts';

// The client and server processes watch their own event-loop delay and GC
// pauses (probes/self-monitor.ts), so analysis can tell the harness's own
// stalls from the system's. One per process.
let monitor: SelfMonitor | null = null;

export function startSelfMonitoring(runDir: string, role: string, t0: bigint, intervalNs: number): void {
  if (monitor === null) monitor = startSelfMonitor({ runDir, role, t0, intervalNs });
}

export function stopSelfMonitoring(): void {
  monitor?.stop();
}
