import test from 'ava';
import { execa } from 'execa';
import { readFile } from 'node:fs/promises';
import { UserError } from '../../lib/errors.ts';
import { countCpuList, formatEnvironment, snapshotEnvironment, TCP_SYSCTLS } from '../../probes/environment.ts';

const isRoot = typeof process.getuid === 'function' && process.getuid() === 0;

test('snapshot of this machine: sysctls, clock source, CPUs, OS', async (t) => {
  const t0 = performance.now();
  const env = await snapshotEnvironment();
  t.log(`snapshot in ${Math.round(performance.now() - t0)} ms; missing: ${JSON.stringify(env.missing)}`);
  t.regex(env.sysctls['net.ipv4.tcp_syn_retries'] ?? '', /^\d+$/);
  t.regex(env.sysctls['net.ipv4.ip_local_port_range'] ?? '', /^\d+ \d+$/);
  t.regex(env.sysctls['net.core.somaxconn'] ?? '', /^\d+$/);
  // every key is either read or listed absent, never both, never lost
  t.is(Object.keys(env.sysctls).length + env.sysctlsAbsent.length, TCP_SYSCTLS.length);
  for (const k of env.sysctlsAbsent) t.false(k in env.sysctls);
  t.deepEqual(env.sysctlsHostWide, []);
  t.truthy(env.clocksource.current);
  t.true(env.clocksource.available.includes(env.clocksource.current ?? ''));
  t.true(env.cpu.online >= 1);
  t.true(env.memory.totalBytes > 0);
  t.truthy(env.os.kernel);
  t.is(env.node.version, process.version);
  t.truthy(env.cpufreq.note);
  t.is(env.netns, null);
  t.true(performance.now() - t0 < 15_000);
});

test('systeminformation too slow: parts fall back and are listed as missing', async (t) => {
  const env = await snapshotEnvironment({ siTimeoutMs: 0 });
  t.true(env.missing.some((m) => /systeminformation \w+: no answer within 0s/.test(m)));
  // what the snapshot reads itself is still there
  t.truthy(env.os.kernel);
  t.true(env.memory.totalBytes > 0);
  t.truthy(env.sysctls['net.ipv4.tcp_syn_retries']);
});

test('cpu lists', (t) => {
  t.is(countCpuList('0'), 1);
  t.is(countCpuList('0-1'), 2);
  t.is(countCpuList('0-3,8,10-11'), 7);
});

test('formatEnvironment: a Markdown table with the sysctls, host name redactable', async (t) => {
  const env = await snapshotEnvironment();
  const md = formatEnvironment(env);
  t.regex(md, /^## Environment\n\n\| \| \|\n\|---\|---\|\n/);
  t.regex(md, /\| Clock source \| \S+/);
  t.regex(md, /\| net\.ipv4\.tcp_syn_retries \| \d+ \|/);
  t.regex(md, /\| net\.ipv4\.ip_local_port_range \| \d+ \d+ \|/);
  t.regex(md, /\| net\.ipv4\.tcp_tw_reuse \| \d \|/);
  t.true(md.includes(`| Host | ${env.os.hostname} |`));
  const red = formatEnvironment(env, { redact: true });
  t.true(red.includes('| Host | (redacted) |'));
  // every table row has exactly two cells (no stray pipes from values)
  for (const line of md.split('\n').filter((l) => l.startsWith('| '))) t.is(line.split(/(?<!\\)\|/).length, 4, line);
});

test('an unknown network namespace is a user error', async (t) => {
  await t.throwsAsync(snapshotEnvironment({ netns: 'sockspike-no-such-ns' }), { instanceOf: UserError, message: /not found/ });
});

test('netns: sysctls are the namespace own values', async (t) => {
  if (!isRoot) {
    t.log('skipped: not root (cannot create a network namespace)');
    t.pass();
    return;
  }
  const ns = `sspk-env-${process.pid}`;
  const add = await execa('ip', ['netns', 'add', ns], { reject: false });
  if (add.failed) {
    t.log(`skipped: cannot create a network namespace: ${add.stderr || add.message}`);
    t.pass();
    return;
  }
  t.teardown(() => execa('ip', ['netns', 'del', ns], { reject: false }).then(() => undefined));
  const host = (await readFile('/proc/sys/net/ipv4/tcp_tw_reuse', 'utf8')).trim();
  const other = host === '0' ? '1' : '0';
  await execa('ip', ['netns', 'exec', ns, 'sh', '-c', `echo ${other} > /proc/sys/net/ipv4/tcp_tw_reuse`]);

  const env = await snapshotEnvironment({ netns: ns });
  t.is(env.netns, ns);
  t.is(env.sysctls['net.ipv4.tcp_tw_reuse'], other, `host has ${host}`);
  t.regex(env.sysctls['net.ipv4.ip_local_port_range'] ?? '', /^\d+ \d+$/);
  t.deepEqual(env.missing, []);
  // keys without a per-namespace copy carry the host's value, marked as such
  for (const k of env.sysctlsHostWide) t.truthy(env.sysctls[k]);
  t.log(`host-wide in a namespace: ${env.sysctlsHostWide.join(', ') || 'none'}`);
  const md = formatEnvironment(env);
  t.true(md.includes(`### TCP sysctls (in network namespace ${ns})`));
  t.true(md.includes(`| net.ipv4.tcp_tw_reuse | ${other} |`));
  // the host is unchanged
  t.is((await readFile('/proc/sys/net/ipv4/tcp_tw_reuse', 'utf8')).trim(), host);
});
