import test from 'ava';
import { serverProcessing } from '../analysis/causes/server-processing.ts';
import type { CauseInput, MetricNear } from '../analysis/causes/index.ts';
import { CONFIG, causeInput } from './helpers/cause-input.ts';

// server-processing on constructed inputs: the excess in an exchange with
// nothing in the network or the kernel to account for it.

const exchangePhases: CauseInput['outliers']['phases'] = {
  dominant: 'exchange 2',
  rows: [{ phase: 'exchange 2', outliers: 10, share: 1, medianExcessUs: 150_000, normalMedianUs: 200, unfinished: 0 }],
};
const untimedMode = {
  label: 'no kernel timer matches (median excess 150 ms)',
  count: 10,
  share: 1,
  minUs: 150_000,
  medianUs: 151_000,
  maxUs: 160_000,
  timer: null,
};
const SERVER_CMD = { ...CONFIG, external: { kind: 'command' as const, command: 'python3 slow-server.py --port {port}', waitNs: 10e9 } };
const slow = (over: Parameters<typeof causeInput>[0] = {}): CauseInput =>
  causeInput({
    config: SERVER_CMD,
    txn: { tcpInfo: { outliers: 10, outliersRetrans: 0, normal: 1000, normalRetrans: 0 }, kernel: null, server: null },
    ...over,
    outliers: { modes: [untimedMode], phases: exchangePhases, ...over.outliers },
  });
const level = (near: number): MetricNear => ({
  unit: 'fraction',
  kind: 'fraction',
  near,
  otherwise: near,
  nearMax: near,
  max: near,
  nearRows: 10,
  otherRows: 90,
  nearMaxAtNs: 1e9,
});

test('excess between request and answer, no timer, no retransmission, idle CPUs: server-processing', (t) => {
  const c = serverProcessing.match(slow());
  t.truthy(c);
  t.true(c!.confidence >= 0.9, String(c!.confidence));
  t.regex(c!.summary, /the time went in the server application/);
  t.true(c!.evidence.some((e) => /0 of 10 outlier connections retransmitted \(TCP_INFO before close\)/.test(e)));
});

test('not the server: retransmissions, a timer mode, errors, saturated CPUs, Nagle trap, excess in connect', (t) => {
  t.is(
    serverProcessing.match(slow({ txn: { tcpInfo: { outliers: 10, outliersRetrans: 5, normal: 1000, normalRetrans: 0 }, kernel: null, server: null } })),
    null,
  );
  t.is(serverProcessing.match(slow({ outliers: { modes: [{ ...untimedMode, label: 'data retransmission timeout #1', timer: 'rto-1' }] } })), null);
  t.is(serverProcessing.match(slow({ outliers: { errors: { ECONNRESET: 3 } } })), null);
  t.is(serverProcessing.match(slow({ metrics: { 'cpu.user': level(0.8), 'cpu.system': level(0.15) } })), null);
  t.is(serverProcessing.match(slow({ config: { ...SERVER_CMD, splitWrites: 2, nodelay: false } })), null);
  // sockspike's own built-in server: its delays are the harness's, not an application's
  t.is(serverProcessing.match(slow({ config: { ...CONFIG } })), null);
  t.is(
    serverProcessing.match(
      slow({
        outliers: {
          phases: { dominant: 'connect', rows: [{ phase: 'connect', outliers: 10, share: 1, medianExcessUs: 1e6, normalMedianUs: 100, unfinished: 0 }] },
        },
      }),
    ),
    null,
  );
});
