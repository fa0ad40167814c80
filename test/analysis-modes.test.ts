import test from 'ava';
import { findModes } from '../analysis/modes.ts';
import { synRetransmitSchedule, timerConstants, timerSettings } from '../analysis/timers.ts';

// Timer constants from the run's sysctls, and outlier modes named against them.

const s = (us: number[]): number[] => us.map((x) => x / 1e6);
const syn = (env: Record<string, string>): number[] =>
  timerConstants(env)
    .filter((t) => t.family === 'syn-retransmit')
    .map((t) => t.us);

test('SYN schedule, tcp_syn_retries 6, tcp_syn_linear_timeouts 4: RTOs 1,1,1,1,1,2,4,... as ip-sysctl.rst says', (t) => {
  const sched = syn({ 'net.ipv4.tcp_syn_retries': '6', 'net.ipv4.tcp_syn_linear_timeouts': '4' });
  // syn_retries + linear retransmissions; the last at 67 s (the doc's figure).
  t.deepEqual(s(sched), [1, 2, 3, 4, 5, 7, 11, 19, 35, 67]);
});

test('SYN schedule, 6 / 0 (and an old kernel without the key): 1, 3, 7, 15, 31, 63 s', (t) => {
  t.deepEqual(s(syn({ 'net.ipv4.tcp_syn_retries': '6', 'net.ipv4.tcp_syn_linear_timeouts': '0' })), [1, 3, 7, 15, 31, 63]);
  t.deepEqual(s(syn({ 'net.ipv4.tcp_syn_retries': '6' })), [1, 3, 7, 15, 31, 63]);
  t.deepEqual(s(synRetransmitSchedule(2, 1)), [1, 2, 4]);
});

test('absent keys: kernel defaults; an Environment object works as well as its sysctls', (t) => {
  t.deepEqual(timerSettings({}), { synRetries: 6, synLinearTimeouts: 0, synackRetries: 5, rtoMinUs: 200_000 });
  const all = timerConstants({});
  t.deepEqual(s(all.filter((x) => x.family === 'synack-retransmit').map((x) => x.us)), [1, 3, 7, 15, 31]);
  t.deepEqual(
    all
      .filter((x) => x.family === 'rto')
      .map((x) => x.us / 1000)
      .slice(0, 4),
    [200, 600, 1400, 3000],
  );
  t.is(all.find((x) => x.family === 'delayed-ack')?.us, 40_000);
  t.is(all[0].label, 'SYN retransmission #1 (1 s)');
  const env = { sysctls: { 'net.ipv4.tcp_syn_retries': '3', 'net.ipv4.tcp_rto_min_us': '50000' } };
  const fromEnv = timerConstants(env as never);
  t.deepEqual(s(fromEnv.filter((x) => x.family === 'syn-retransmit').map((x) => x.us)), [1, 3, 7]);
  t.is(fromEnv.find((x) => x.family === 'rto')?.us, 50_000);
});

// Deterministic jitter.
function cluster(centerUs: number, n: number, spreadUs: number, seed = 1): number[] {
  let x = seed;
  const out: number[] = [];
  for (let i = 0; i < n; i++) {
    x = (x * 1103515245 + 12345) % 2147483648;
    out.push(centerUs + (x / 2147483648 - 0.5) * 2 * spreadUs);
  }
  return out;
}

const BASE = 300;
const T4 = timerConstants({ 'net.ipv4.tcp_syn_retries': '6', 'net.ipv4.tcp_syn_linear_timeouts': '4' });
const T0 = timerConstants({ 'net.ipv4.tcp_syn_retries': '6', 'net.ipv4.tcp_syn_linear_timeouts': '0' });

test('a cluster near 1 s over a 300 us baseline is SYN retransmission #1', (t) => {
  const modes = findModes(cluster(1_000_300, 200, 2000), BASE, T4);
  t.is(modes.length, 1);
  t.is(modes[0].count, 200);
  t.is(modes[0].share, 1);
  t.is(modes[0].match?.id, 'syn-retransmit-1');
  t.regex(modes[0].label, /SYN retransmission #1/);
  // The SYN-ACK retransmission at 1 s fits too; SYN comes first.
  t.true(modes[0].alsoMatches.some((m) => m.id === 'synack-retransmit-1'));
});

test('a cluster near 3 s with L = 0 is SYN retransmission #2 (before RTO #4 at 3 s)', (t) => {
  const modes = findModes(cluster(3_000_300, 50, 5000), BASE, T0);
  t.is(modes.length, 1);
  t.is(modes[0].match?.id, 'syn-retransmit-2');
  t.true(modes[0].alsoMatches.some((m) => m.family === 'rto'));
});

test('a cluster at about 40 ms is delayed ACK', (t) => {
  const modes = findModes(cluster(40_300 + 1500, 300, 1500), BASE, T4);
  t.is(modes.length, 1);
  t.is(modes[0].match?.family, 'delayed-ack');
});

test('a cluster at 500 ms matches nothing, and the label says so', (t) => {
  const modes = findModes(cluster(500_000, 100, 3000), BASE, T4);
  t.is(modes.length, 1);
  t.is(modes[0].match, null);
  t.regex(modes[0].label, /no kernel timer/);
});

test('two clusters come out as two modes, ordered by latency, each named', (t) => {
  const data = [...cluster(3_000_300, 40, 20_000, 7), ...cluster(1_000_300, 160, 20_000, 3)];
  const modes = findModes(data, BASE, T0);
  t.is(modes.length, 2);
  t.deepEqual(
    modes.map((m) => [m.count, m.match?.id]),
    [
      [160, 'syn-retransmit-1'],
      [40, 'syn-retransmit-2'],
    ],
  );
  t.is(modes[0].share + modes[1].share, 1);
  t.true(modes[0].minUs >= 980_300 && modes[0].maxUs <= 1_020_300);
});

test('new-kernel SYN clusters at 1, 2, 3, 4, 5 s with wide jitter and no gaps still come apart', (t) => {
  const data: number[] = [];
  for (let k = 1; k <= 5; k++) data.push(...cluster(k * 1e6 + BASE, 400, 120_000, k));
  // Fill the gaps thinly so the gap split alone cannot separate them.
  for (let x = 900_000; x < 5_200_000; x += 5000) data.push(x);
  const modes = findModes(data, BASE, T4);
  const named = modes.filter((m) => m.match !== null).map((m) => m.match?.id);
  t.deepEqual(named, ['syn-retransmit-1', 'syn-retransmit-2', 'syn-retransmit-3', 'syn-retransmit-4', 'syn-retransmit-5']);
});

test('a broad spread whose median lands near a timer is not named for it', (t) => {
  const data: number[] = [];
  for (let x = 150_000; x < 2_000_000; x += 1000) data.push(x);
  const modes = findModes(data, BASE, T4);
  t.true(modes.every((m) => m.match === null || (m.maxUs - m.minUs) / m.medianUs < 0.5));
});

test('empty and non-finite input; deterministic', (t) => {
  t.deepEqual(findModes([], BASE, T4), []);
  t.deepEqual(findModes([NaN], BASE, T4), []);
  const data = new Float64Array([...cluster(1_000_300, 100, 3000), ...cluster(200_300, 100, 3000)]);
  t.deepEqual(findModes(data, BASE, T4), findModes(data, BASE, T4));
  t.is(findModes(data, BASE, T4)[0].match?.id, 'rto-1');
});

test('1e6 outliers are clustered quickly', (t) => {
  const n = 1_000_000;
  const data = new Float64Array(n);
  let x = 42;
  for (let i = 0; i < n; i++) {
    x = (x * 1103515245 + 12345) % 2147483648;
    const u = x / 2147483648;
    data[i] = (i % 4 === 0 ? 3_000_000 : i % 4 === 1 ? 200_000 : 1_000_000) + BASE + (u - 0.5) * 10_000;
  }
  const t0 = performance.now();
  const modes = findModes(data, BASE, T0);
  const ms = performance.now() - t0;
  t.log(`findModes on 1e6 outliers: ${ms.toFixed(0)} ms`);
  t.deepEqual(
    modes.map((m) => m.match?.id),
    ['rto-1', 'syn-retransmit-1', 'syn-retransmit-2'],
  );
});

test('sparse outliers spread evenly on a log scale are one unnamed mode, not noise fragments', (t) => {
  const data: number[] = [];
  let x = 1;
  for (let i = 0; i < 300; i++) {
    x = (x * 1103515245 + 12345) % 2147483648;
    data.push(100_000 * Math.exp((4 * x) / 2147483648));
  }
  const modes = findModes(data, BASE, T4);
  t.is(modes.length, 1);
  t.is(modes[0].match, null);
});
