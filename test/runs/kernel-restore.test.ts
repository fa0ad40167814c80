// Host changes outlive a killed run only until `sockspike restore` or the
// next run that changes a host key: the key goes back to the value it had
// before the FIRST journalled change, whatever order the runs died in, and
// no run journals another run's change as the host's own value.
import test, { type ExecutionContext } from 'ava';
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { JournalFile } from '../../harness/kernel/journal.ts';
import {
  descendants,
  killStillRunning,
  leftoversAfter,
  lines,
  readManifestFile,
  sockspike,
  startSockspike,
  tempDir,
  waitForClient,
  type ProcId,
} from '../helpers/cli.ts';
import { guardHost, hostState } from '../helpers/host-state.ts';

const why = guardHost(test, 'host restore');
const kt = why === null ? test.serial : test.skip;

const KEY = 'net.core.netdev_max_backlog';
const PATH = '/proc/sys/net/core/netdev_max_backlog';
const readKey = (): string => readFileSync(PATH, 'utf8').trim();
const nsExists = (name: string): boolean => existsSync(`/run/netns/${name}`);

/** A pid that is no process now (one that has just exited). */
const deadPid = (): number => {
  const r = spawnSync('true');
  return r.pid ?? 999_999;
};

/** Put the key back if a failing test left it changed (the file's after hook then still checks the host). */
function keepKey(t: ExecutionContext): string {
  const orig = readKey();
  t.teardown(() => {
    if (readKey() !== orig) writeFileSync(PATH, orig + '\n');
  });
  return orig;
}

kt('several runs changing the same host key, SIGKILLed at random moments: restore puts back the original, nothing left', async (t) => {
  const orig = keepKey(t);
  const changed = String(Number(orig) + 17);
  const dir = tempDir(t);
  const env = { SOCKSPIKE_STATE_DIR: tempDir(t) };
  const nftBefore = hostState().nft;
  const trees: ProcId[] = [];
  t.teardown(() => killStillRunning(trees));
  const namespaces: string[] = [];
  const when: string[] = [];
  for (let i = 0; i < 4; i++) {
    const out = join(dir, `r${i}`);
    const cli = startSockspike(
      t,
      [
        'run',
        '--duration',
        '30',
        '--concurrency',
        '2',
        '--out',
        out,
        '--no-progress',
        '--sysctl',
        `${KEY}=${changed}`,
        '--host-sysctl',
        '--sysctl',
        'net.ipv4.tcp_tw_reuse=0',
        '--fault',
        'syn-drop:5%',
        '--fault',
        'cpu-hog:1',
      ],
      { env, forceKillAfterDelay: false },
    );
    // the first run dies before it can change anything (node has not even
    // loaded), the second at a random moment of its start, the others at a
    // random moment after their changes are in force and the load runs
    if (i === 0) await sleep(Math.random() * 20);
    else if (i === 1) await sleep(200 + Math.random() * 800);
    else {
      const m = await waitForClient(out, 60_000);
      if (m.kernel?.netns) namespaces.push(m.kernel.netns);
      await sleep(Math.random() * 2000);
    }
    trees.push(...descendants(cli.pid!));
    const atKill = readKey();
    process.kill(cli.pid!, 'SIGKILL');
    const r = await cli;
    t.is(r.signal, 'SIGKILL');
    when.push(`r${i}: ${atKill === changed ? 'after' : 'before'} the change`);
    if (existsSync(join(out, 'run.json'))) {
      const ns = readManifestFile(out).kernel?.netns;
      if (ns && !namespaces.includes(ns)) namespaces.push(ns);
    }
  }
  t.log(when.join('; '));
  t.true(
    when.some((w) => w.endsWith('after the change')),
    'some runs were killed after their change',
  );
  t.true(
    when.some((w) => w.endsWith('before the change')),
    'some runs were killed before it',
  );
  t.is(readKey(), changed, 'the last run left the key changed');

  const r = await sockspike(['restore'], { env });
  t.is(r.exitCode, 0, String(r.stderr));
  const out = lines(r.stdout);
  t.log(out.join('\n'));
  const keyLines = out.filter((l) => l.startsWith(`restored ${KEY} `));
  t.is(keyLines.length, 1, 'one line per key');
  t.regex(keyLines[0] ?? '', new RegExp(`^restored ${KEY.replaceAll('.', '\\.')} = ${orig} `));
  t.is(readKey(), orig, 'the key is back at its original value');
  t.deepEqual(readdirSync(env.SOCKSPIKE_STATE_DIR), [], 'no journal left');
  for (const ns of namespaces) t.false(nsExists(ns), `namespace ${ns} left behind`);
  t.is(hostState().nft, nftBefore, 'the host nftables ruleset is as it was');
  t.deepEqual(await leftoversAfter(trees, 10_000), [], 'processes of the killed runs still running');
});

kt('journals of older runs that each took the one before for the original: restore undoes to the first value', async (t) => {
  const orig = keepKey(t);
  const changed = String(Number(orig) + 17);
  const state = tempDir(t);
  // the issue's case: r1 changed the key; r3, r4 and r5 started while r1's
  // change was in force and journalled it as "before"; all of them died
  const base = Date.now() - 60_000;
  const journals: Array<[string, string, number]> = [
    ['r5', changed, base + 4000],
    ['r1', orig, base],
    ['r4', changed, base + 3000],
    ['r3', changed, base + 2000],
  ];
  for (const [name, before, at] of journals) {
    const file: JournalFile = {
      pid: deadPid(),
      startedAt: new Date(at).toISOString(),
      runDir: `/tmp/${name}`,
      entries: [{ kind: 'sysctl', key: KEY, before, value: changed }],
    };
    writeFileSync(join(state, `run-${file.pid}.json`), JSON.stringify(file));
  }
  writeFileSync(PATH, changed + '\n');
  const r = await sockspike(['restore'], { env: { SOCKSPIKE_STATE_DIR: state } });
  t.is(r.exitCode, 0, String(r.stderr));
  t.deepEqual(lines(r.stdout).length, 1, String(r.stdout));
  t.regex(String(r.stdout), new RegExp(`^restored ${KEY.replaceAll('.', '\\.')} = ${orig} \\(its value before run /tmp/r1, .*4 dead runs had changed it`));
  t.is(readKey(), orig);
  t.deepEqual(readdirSync(state), []);
});

kt("a run that changes a host key over a dead run's journal restores it first and journals the host's own value", async (t) => {
  const orig = keepKey(t);
  const dir = tempDir(t);
  const env = { SOCKSPIKE_STATE_DIR: tempDir(t) };
  const killed = startSockspike(
    t,
    ['run', '--duration', '30', '--no-probes', '--out', join(dir, 'dead'), '--sysctl', `${KEY}=${Number(orig) + 17}`, '--host-sysctl'],
    { env, forceKillAfterDelay: false },
  );
  await waitForClient(join(dir, 'dead'), 60_000);
  const tree = descendants(killed.pid!);
  t.teardown(() => killStillRunning(tree));
  process.kill(killed.pid!, 'SIGKILL');
  await killed;
  t.is(readKey(), String(Number(orig) + 17), 'the dead run left its change');

  const out = join(dir, 'next');
  const r = await sockspike(
    ['run', '--duration', '1', '--no-probes', '--no-progress', '--out', out, '--sysctl', `${KEY}=${Number(orig) + 5}`, '--host-sysctl'],
    { env },
  );
  t.is(r.exitCode, 0, String(r.stderr));
  const err = lines(r.stderr);
  t.is(err.length, 1, String(r.stderr));
  t.regex(
    err[0] ?? '',
    new RegExp(`^sockspike: first restored what dead runs left: restored ${KEY.replaceAll('.', '\\.')} = ${orig} \\(its value before run .*dead`),
  );
  const m = readManifestFile(out);
  t.deepEqual(
    m.kernel?.sysctls.map((s) => [s.key, s.scope, s.before, s.after]),
    [[KEY, 'host', orig, String(Number(orig) + 5)]],
    "the host's own value journalled as before",
  );
  t.true(m.notes.some((n) => /before this run's host changes, sockspike restored/.test(n)));
  t.is(readKey(), orig, 'back at the original after the run');
  t.deepEqual(readdirSync(env.SOCKSPIKE_STATE_DIR), []);
  t.deepEqual(await leftoversAfter(tree, 10_000), []);
});

kt('a run is refused, with one line, a host key that a running run has changed', async (t) => {
  const orig = keepKey(t);
  const dir = tempDir(t);
  const env = { SOCKSPIKE_STATE_DIR: tempDir(t) };
  const first = startSockspike(
    t,
    ['run', '--duration', '30', '--no-probes', '--out', join(dir, 'a'), '--sysctl', `${KEY}=${Number(orig) + 3}`, '--host-sysctl'],
    { env, forceKillAfterDelay: false },
  );
  await waitForClient(join(dir, 'a'), 60_000);
  const second = await sockspike(
    ['run', '--duration', '1', '--no-probes', '--out', join(dir, 'b'), '--sysctl', `${KEY}=${Number(orig) + 4}`, '--host-sysctl'],
    { env },
  );
  t.is(second.exitCode, 2);
  t.is(lines(second.stderr).length, 1);
  t.regex(
    String(second.stderr),
    new RegExp(`^sockspike: --sysctl ${KEY.replaceAll('.', '\\.')}: run .*, pid ${first.pid} has changed it and is still running`),
  );
  t.is(readKey(), String(Number(orig) + 3), "the running run's change stands");
  // a dead run's journal of the same key (written before runs settled them):
  // restore leaves the key to the running run, which puts it back itself
  const dead: JournalFile = {
    pid: deadPid(),
    startedAt: new Date(Date.now() - 60_000).toISOString(),
    runDir: '/tmp/dead-before',
    entries: [{ kind: 'sysctl', key: KEY, before: orig, value: String(Number(orig) + 9) }],
  };
  writeFileSync(join(env.SOCKSPIKE_STATE_DIR, `run-${dead.pid}.json`), JSON.stringify(dead));
  const r2 = await sockspike(['restore'], { env });
  t.is(r2.exitCode, 0, String(r2.stderr));
  t.regex(String(r2.stdout), new RegExp(`^left ${KEY.replaceAll('.', '\\.')} alone: run .*, pid ${first.pid} is still running`, 'm'));
  t.is(readKey(), String(Number(orig) + 3), 'restore did not pull the key from under the running run');
  first.kill('SIGINT');
  const r = await first;
  t.is(r.exitCode, 130);
  t.is(readKey(), orig);
});
