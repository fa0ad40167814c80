// Kernel experiments on the real kernel: the run's own namespace, sysctls
// inside it and (journalled) on the host, restore after a killed run,
// Ctrl-C, privileges, and an nftables fault in a window. Each run lives in a
// namespace sockspike makes; the host must be left exactly as found.
import test from 'ava';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { readManifestFile, readSummaryFile, sockspike, startSockspike, tempDir, cmd, waitForClient, BIN, ROOT } from '../helpers/cli.ts';
import { guardHost } from '../helpers/host-state.ts';

const why = guardHost(test, 'kernel experiments');
const kt = why === null ? test : test.skip;

const nsExists = (name: string): boolean => existsSync(`/run/netns/${name}`);

kt("--netns: server, client and probes in a namespace of the run's own, deleted afterwards", async (t) => {
  const out = join(tempDir(t), 'run');
  const r = await sockspike(['run', '--netns', '--duration', '1.5', '--out', out]);
  t.is(r.exitCode, 0, String(r.stderr));
  const m = readManifestFile(out);
  const ns = m.kernel?.netns;
  t.truthy(ns);
  t.regex(ns as string, /^sspk-\d+-[0-9a-f]{6}$/);
  t.false(nsExists(ns as string));
  const env = JSON.parse(readFileSync(join(out, 'environment.json'), 'utf8')) as { netns: string | null };
  t.is(env.netns, ns as string);
  t.true(readSummaryFile(out).transactions.ok > 0);
  t.regex(readFileSync(join(out, 'report.md'), 'utf8'), /network namespace of the run's own/);
});

kt('--sysctl: per-namespace keys inside the namespace; host keys refused without --host-sysctl, restored with it', async (t) => {
  const dir = tempDir(t);
  const hostReuse = readFileSync('/proc/sys/net/ipv4/tcp_tw_reuse', 'utf8').trim();
  const r = await sockspike([
    'run',
    '--duration',
    '1',
    '--no-probes',
    '--out',
    join(dir, 'a'),
    '--sysctl',
    'net.ipv4.tcp_tw_reuse=0',
    '--sysctl',
    'net.ipv4.ip_local_port_range=40000 40999',
  ]);
  t.is(r.exitCode, 0, String(r.stderr));
  const m = readManifestFile(join(dir, 'a'));
  t.truthy(m.kernel?.netns, '--sysctl of a per-namespace key implies --netns');
  t.deepEqual(
    m.kernel?.sysctls.map((s) => [s.key, s.scope, s.after.replace(/\s+/g, ' ')]),
    [
      ['net.ipv4.tcp_tw_reuse', 'netns', '0'],
      ['net.ipv4.ip_local_port_range', 'netns', '40000 40999'],
    ],
  );
  t.is(readFileSync('/proc/sys/net/ipv4/tcp_tw_reuse', 'utf8').trim(), hostReuse, 'the host is untouched');

  const refused = await sockspike(['run', '--duration', '1', '--no-probes', '--out', join(dir, 'b'), '--sysctl', 'net.core.netdev_max_backlog=1234']);
  t.is(refused.exitCode, 2);
  t.regex(String(refused.stderr), /^sockspike: --sysctl net\.core\.netdev_max_backlog: not per network namespace.*--host-sysctl/);
  t.is(String(refused.stderr).trim().split('\n').length, 1);

  const unknown = await sockspike(['run', '--duration', '1', '--no-probes', '--out', join(dir, 'c'), '--sysctl', 'net.ipv4.no_such_thing=1']);
  t.is(unknown.exitCode, 2);
  t.regex(String(unknown.stderr), /no such sysctl/);

  const hostBacklog = readFileSync('/proc/sys/net/core/netdev_max_backlog', 'utf8').trim();
  const state = tempDir(t);
  const host = await sockspike(
    ['run', '--duration', '1', '--no-probes', '--out', join(dir, 'd'), '--sysctl', 'net.core.netdev_max_backlog=1234', '--host-sysctl'],
    {
      env: { SOCKSPIKE_STATE_DIR: state },
    },
  );
  t.is(host.exitCode, 0, String(host.stderr));
  const hm = readManifestFile(join(dir, 'd'));
  t.deepEqual(
    hm.kernel?.sysctls.map((s) => [s.key, s.scope, s.before, s.after]),
    [['net.core.netdev_max_backlog', 'host', hostBacklog, '1234']],
  );
  t.is(readFileSync('/proc/sys/net/core/netdev_max_backlog', 'utf8').trim(), hostBacklog, 'restored after the run');
  t.deepEqual(readdirSync(state), [], 'the journal is gone once everything is undone');
});

kt('sockspike restore undoes what a killed run left: host sysctl and namespace', async (t) => {
  const dir = tempDir(t);
  const state = tempDir(t);
  const env = { SOCKSPIKE_STATE_DIR: state };
  const hostBacklog = readFileSync('/proc/sys/net/core/netdev_max_backlog', 'utf8').trim();
  const run = startSockspike(
    t,
    ['run', '--netns', '--duration', '30', '--no-probes', '--out', join(dir, 'r'), '--sysctl', 'net.core.netdev_max_backlog=1235', '--host-sysctl'],
    { env },
  );
  const ns = (await waitForClient(join(dir, 'r'), 60_000)).kernel?.netns ?? null;
  t.truthy(ns, 'the run started in a namespace');
  process.kill(run.pid as number, 'SIGKILL');
  await run;
  t.is(readFileSync('/proc/sys/net/core/netdev_max_backlog', 'utf8').trim(), '1235', 'left changed by the killed run');
  t.true(nsExists(ns as string), 'namespace left behind');
  t.is(readdirSync(state).length, 1, 'its journal is there');

  const r = await sockspike(['restore'], { env });
  t.is(r.exitCode, 0, String(r.stderr));
  t.regex(String(r.stdout), new RegExp(`restored net\\.core\\.netdev_max_backlog = ${hostBacklog}`));
  t.regex(String(r.stdout), new RegExp(`deleted network namespace ${ns as string}`));
  t.is(readFileSync('/proc/sys/net/core/netdev_max_backlog', 'utf8').trim(), hostBacklog);
  t.false(nsExists(ns as string));
  t.deepEqual(readdirSync(state), []);
  const again = await sockspike(['restore'], { env });
  t.regex(String(again.stdout), /nothing to restore/);
});

kt('Ctrl-C: the run stops, reports, and deletes its namespace', async (t) => {
  const out = join(tempDir(t), 'run');
  const run = startSockspike(t, ['run', '--netns', '--duration', '30', '--no-probes', '--out', out]);
  const ns = (await waitForClient(out, 60_000)).kernel?.netns ?? null;
  t.truthy(ns);
  await sleep(500);
  process.kill(run.pid as number, 'SIGINT');
  const r = await run;
  t.is(r.exitCode, 130);
  t.false(nsExists(ns as string));
  t.is(readManifestFile(out).status, 'interrupted');
  t.true(existsSync(join(out, 'report.md')));
});

kt('without root: one clear line, exit 2', async (t) => {
  const probe = await cmd('setpriv', ['--reuid=65534', '--regid=65534', '--clear-groups', 'node', '-e', `require('fs').accessSync(${JSON.stringify(BIN)})`]);
  if (probe.exitCode !== 0) {
    t.log(`skipped: cannot run as nobody here (${String(probe.stderr).trim().split('\n')[0]})`);
    return t.pass();
  }
  for (const flags of [['--netns'], ['--sysctl', 'net.ipv4.tcp_tw_reuse=0'], ['--fault', 'syn-drop:5%']]) {
    const r = await cmd('setpriv', ['--reuid=65534', '--regid=65534', '--clear-groups', 'node', BIN, 'run', '--duration', '1', ...flags], {
      cwd: '/tmp',
      env: { HOME: '/tmp' },
    });
    t.is(r.exitCode, 2, flags.join(' '));
    t.regex(String(r.stderr), /^sockspike: --(netns|sysctl|fault) needs root/);
    t.is(String(r.stderr).trim().split('\n').length, 1);
  }
  t.truthy(ROOT);
});

kt("by default as root, a namespace of the run's own with the host's sysctls copied in; --no-netns shares the host's", async (t) => {
  // the "host" here is a namespace of the test's own whose somaxconn differs from a new namespace's default
  const outer = `sspk-test-outer-${process.pid}`;
  t.is((await cmd('ip', ['netns', 'add', outer])).exitCode, 0);
  t.teardown(() => cmd('ip', ['netns', 'del', outer]));
  await cmd('ip', ['-n', outer, 'link', 'set', 'lo', 'up']);
  t.is((await cmd('ip', ['netns', 'exec', outer, 'sh', '-c', 'echo 777 > /proc/sys/net/core/somaxconn'])).exitCode, 0);
  const out = join(tempDir(t), 'run');
  const r = await cmd('ip', ['netns', 'exec', outer, 'node', BIN, 'run', '--duration', '1', '--no-probes', '--no-progress', '--out', out]);
  t.is(r.exitCode, 0, String(r.stderr));
  const m = readManifestFile(out);
  t.true(m.config.netns);
  t.truthy(m.kernel?.netns);
  const note = m.notes.find((n) => /network namespace of its own/.test(n)) ?? '';
  t.regex(note, /sysctls were copied in \(([1-9]\d*) differed/);
  const env = JSON.parse(readFileSync(join(out, 'environment.json'), 'utf8')) as { sysctls: Record<string, string> };
  t.is(env.sysctls['net.core.somaxconn'], '777', "the run saw the host's somaxconn, not the new namespace's default");
  const shared = join(tempDir(t), 'shared');
  const r2 = await sockspike(['run', '--no-netns', '--duration', '0.5', '--no-probes', '--no-progress', '--out', shared]);
  t.is(r2.exitCode, 0, String(r2.stderr));
  t.false(readManifestFile(shared).config.netns);
});

kt('--fault with no window: on before the first transaction, off after the last', async (t) => {
  const out = join(tempDir(t), 'run');
  const r = await sockspike(['run', '--fault', 'syn-drop:5%', '--duration', '1', '--outlier', '100ms', '--out', out]);
  t.is(r.exitCode, 0, String(r.stderr));
  const m = readManifestFile(out);
  const f = m.kernel?.faults[0];
  t.true(
    f?.startNs !== null && f?.startNs !== undefined && f.startNs <= (m.workload?.firstStartNs ?? 0),
    `fault on at ${f?.startNs}, load from ${m.workload?.firstStartNs}`,
  );
  t.true((f?.stopNs ?? 0) >= (m.workload?.lastEndNs ?? Infinity) - 1e6, `fault off at ${f?.stopNs}, load to ${m.workload?.lastEndNs}`);
});

kt('--fault syn-drop in a window: recorded on/off times, nft counter, and the diagnosis names syn-loss', async (t) => {
  const out = join(tempDir(t), 'run');
  const r = await sockspike(['run', '--fault', 'syn-drop:10%@0.5s-3s', '--concurrency', '2', '--duration', '3.5', '--outlier', '100ms', '--out', out]);
  t.is(r.exitCode, 0, String(r.stderr));
  const m = readManifestFile(out);
  const f = m.kernel?.faults[0];
  t.truthy(f);
  t.is(f?.kind, 'syn-drop');
  t.true((f?.startNs ?? 0) > 0);
  t.true((f?.stopNs ?? 0) > (f?.startNs ?? 0));
  // the window is relative to the workload's start: on about 2.5 s (switching nft on and off takes a process start each)
  const onS = ((f?.stopNs ?? 0) - (f?.startNs ?? 0)) / 1e9;
  t.log(
    `fault on ${((f?.startNs ?? 0) / 1e9).toFixed(2)} s to ${((f?.stopNs ?? 0) / 1e9).toFixed(2)} s; workload ${((m.workload?.firstStartNs ?? 0) / 1e9).toFixed(2)} s to ${((m.workload?.lastEndNs ?? 0) / 1e9).toFixed(2)} s`,
  );
  t.true(onS > 1.5 && onS < 3, `${onS} s`);
  t.true((f?.startNs ?? 0) >= (m.workload?.firstStartNs ?? 0) + 0.4e9);
  t.regex(f?.detail.join(' ') ?? '', /\d+ SYNs dropped \(nft counter\)/);
  const s = readSummaryFile(out);
  t.is(s.causes?.[0]?.id, 'syn-loss', JSON.stringify(s.causes?.map((c) => [c.id, c.confidence])));
  t.true(s.faults?.[0]?.matched === true);
  const report = readFileSync(join(out, 'report.md'), 'utf8');
  t.regex(report, /\*\*Injected fault:\*\* The diagnosis matches the injected fault `syn-drop:10%@0\.5s-3s`/);
  t.false(nsExists(m.kernel?.netns as string));
});
