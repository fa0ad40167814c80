import test from 'ava';
import { abortiveCloseReset } from '../analysis/causes/abortive-close-reset.ts';
import { acceptQueueOverflow } from '../analysis/causes/accept-queue-overflow.ts';
import type { MetricNear } from '../analysis/causes/index.ts';
import { CONFIG, causeInput } from './helpers/cause-input.ts';

// Resets by cause: with tcp_abort_on_overflow=1 a full accept queue answers
// handshakes with resets (TcpExt.ListenOverflows moves); an abortive close
// resets without it. The first are accept-queue-overflow's.

const counter = (near: number, otherwise: number): MetricNear => ({
  unit: 'count',
  kind: 'counter',
  near,
  otherwise,
  nearMax: near,
  max: near,
  nearRows: 10,
  otherRows: 90,
  nearMaxAtNs: 1e9,
});
const synMode = {
  label: 'SYN retransmission #1 (1 s): median excess 1 s',
  count: 10,
  share: 1,
  minUs: 1e6,
  medianUs: 1e6,
  maxUs: 1.1e6,
  timer: 'syn-retransmit-1',
};
const connectPhases = { dominant: 'connect', rows: [{ phase: 'connect', outliers: 10, share: 1, medianExcessUs: 1e6, normalMedianUs: 100, unfinished: 0 }] };
const overflowRun = (abort: string, close: 'client-fin' | 'server-rst' = 'client-fin') =>
  causeInput({
    config: { ...CONFIG, close, backlog: 1 },
    sysctls: { 'net.ipv4.tcp_abort_on_overflow': abort },
    transactions: { attempted: 3000, failed: 12, errors: { ECONNRESET: 12 } },
    metrics: { 'TcpExt.ListenOverflows': counter(30, 8), 'TcpExt.ListenDrops': counter(30, 8), 'Tcp.OutRsts': counter(12, 2) },
    outliers: { modes: [synMode], phases: connectPhases },
  });

test('tcp_abort_on_overflow=1 with ListenOverflows moving: the resets are accept-queue-overflow, not an abortive close', (t) => {
  const input = overflowRun('1');
  t.is(abortiveCloseReset.match(input), null);
  const c = acceptQueueOverflow.match(input);
  t.truthy(c);
  t.regex(c!.summary, /tcp_abort_on_overflow=1 the kernel also answered handshakes it could not queue with a reset: 12 transactions failed with ECONNRESET/);
  t.true(c!.evidence.some((e) => /not an abortive close/.test(e)));
});

test('the same resets with tcp_abort_on_overflow=0, or an rst close, stay abortive-close-reset', (t) => {
  t.truthy(abortiveCloseReset.match(overflowRun('0')));
  t.notRegex(acceptQueueOverflow.match(overflowRun('0'))!.summary, /ECONNRESET/);
  const rst = abortiveCloseReset.match(overflowRun('1', 'server-rst'));
  t.truthy(rst, 'an rst close resets by design: both may be at work');
  t.true(rst!.evidence.some((e) => /some of these resets may be the full accept queue/.test(e)));
  // resets without ListenOverflows moving: an abortive close
  const noOverflow = causeInput({
    sysctls: { 'net.ipv4.tcp_abort_on_overflow': '1' },
    transactions: { attempted: 3000, failed: 12, errors: { ECONNRESET: 12 } },
    metrics: { 'TcpExt.ListenOverflows': counter(0, 0), 'Tcp.OutRsts': counter(12, 2) },
  });
  t.truthy(abortiveCloseReset.match(noOverflow));
});
