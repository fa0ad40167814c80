import type { CauseInput } from '../../analysis/causes/index.ts';

// A CauseInput built by hand, for the cause modules' tests.

export const CONFIG = { close: 'client-fin', nodelay: false, splitWrites: 1, backlog: 511, exchanges: 1, concurrency: 8, acceptDelayNs: 0 } as const;

/** A CauseInput with nothing in it but `count` outliers; override what a test needs. */
export function causeInput(over: Partial<Omit<CauseInput, 'outliers'>> & { outliers?: Partial<CauseInput['outliers']> } = {}): CauseInput {
  const { outliers, ...rest } = over;
  const count = outliers?.count ?? 10;
  return {
    config: { ...CONFIG },
    sysctls: { 'net.ipv4.ip_local_port_range': '32768 60999' },
    transactions: { attempted: 10_000, failed: 0, errors: {} },
    latencyP50Us: 500,
    metrics: {},
    probeIntervalNs: 20e6,
    txn: { tcpInfo: null, kernel: null, server: null },
    harness: null,
    ...rest,
    outliers: { thresholdUs: 20_000, total: count, count, modes: [], phases: null, errors: {}, firstNs: 1e9, lastNs: 2e9, ...outliers },
  };
}
