import test from 'ava';
import { parseFault } from '../harness/kernel/fault-spec.ts';
import { nftTable } from '../harness/kernel/faults.ts';
import { parseSysctl, sysctlPath } from '../harness/kernel/sysctl-spec.ts';
import { SCENARIOS } from '../harness/scenarios.ts';
import { CATALOGUE } from '../analysis/causes/index.ts';
import { UserError } from '../lib/errors.ts';

test('faults: kinds, amounts and windows', (t) => {
  t.deepEqual(parseFault('syn-drop:5%'), { text: 'syn-drop:5%', kind: 'syn-drop', amount: 5, fromNs: 0, toNs: null });
  t.deepEqual(parseFault('data-drop:0.5%@2s-6s'), { text: 'data-drop:0.5%@2s-6s', kind: 'data-drop', amount: 0.5, fromNs: 2e9, toNs: 6e9 });
  t.deepEqual(parseFault('cpu-hog:4@1500ms'), { text: 'cpu-hog:4@1500ms', kind: 'cpu-hog', amount: 4, fromNs: 1.5e9, toNs: null });
  t.is(parseFault('accept-delay:20ms@1-3').amount, 20e6);
  t.is(parseFault('accept-delay:20ms@1-3').toNs, 3e9);
  for (const bad of [
    'syn-drop',
    'syn-drop:5',
    'syn-drop:150%',
    'cpu-hog:0',
    'cpu-hog:two',
    'accept-delay:0',
    'packet-loss:5%',
    'syn-drop:5%@6s-2s',
    'syn-drop:5%@x',
  ])
    t.throws(() => parseFault(bad), { instanceOf: UserError }, bad);
});

test('sysctls: KEY=VALUE with sysctl(8) names, quotes dropped', (t) => {
  t.deepEqual(parseSysctl('net.ipv4.tcp_tw_reuse=0'), { key: 'net.ipv4.tcp_tw_reuse', value: '0' });
  t.deepEqual(parseSysctl('net.ipv4.ip_local_port_range="40000 40199"'), { key: 'net.ipv4.ip_local_port_range', value: '40000 40199' });
  t.is(sysctlPath('net.core.somaxconn'), '/proc/sys/net/core/somaxconn');
  for (const bad of ['net.ipv4.tcp_tw_reuse', 'tcp_tw_reuse=0', '../etc/passwd=1', 'net.ipv4.tcp_tw_reuse='])
    t.throws(() => parseSysctl(bad), { instanceOf: UserError }, bad);
});

test('nft rules: SYN without ACK, or any payload byte, toward the server port, at P x 100 in 10000', (t) => {
  const syn = nftTable('x', parseFault('syn-drop:5%'), 4242);
  t.regex(syn, /tcp dport 4242 tcp flags & \(syn \| ack\) == syn numgen random mod 10000 < 500 counter drop/);
  const data = nftTable('x', parseFault('data-drop:0.25%'), 4242);
  t.regex(data, /tcp dport 4242 @ih,0,8 >= 0 numgen random mod 10000 < 25 counter drop/);
});

test('scenarios: unique names, each names a catalogue cause (or none for the baseline)', (t) => {
  const names = SCENARIOS.map((s) => s.name);
  t.is(new Set(names).size, names.length);
  const ids = new Set(CATALOGUE.map((c) => c.id));
  for (const s of SCENARIOS) if (s.cause !== null) t.true(ids.has(s.cause), `${s.name}: ${s.cause}`);
  t.true(names.includes('reported-case'));
  t.true(names.includes('clean'));
  const covered = new Set(SCENARIOS.map((s) => s.cause));
  for (const c of ['accept-queue-overflow', 'syn-loss', 'data-retransmit', 'nagle-delayed-ack', 'port-exhaustion', 'abortive-close-reset', 'cpu-saturation'])
    t.true(covered.has(c), c);
});
