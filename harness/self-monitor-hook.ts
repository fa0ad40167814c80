// placeholder until probes/self-monitor.ts lands
export function startSelfMonitorIfAvailable(_dir: string, _role: string, _t0: bigint, _intervalNs: number): void {}
export function stopSelfMonitor(): void {}
