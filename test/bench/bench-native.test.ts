import test from 'ava';
import { spawn, spawnSync } from 'node:child_process';
import { createInterface } from 'node:readline';
import { buildNativeRef } from '../../bench/native-ref.ts';
import { oneRun, type RunSpec } from '../../bench/one-run.ts';
import { engineUnavailable } from '../../harness/engine.ts';

// The benchmark's native reference (bench/native/ref.c) speaks the built-in
// protocol: sockspike's client (on Node and on the native engine) runs
// against the native server and the native client against the built-in
// server, every close variant, all ok; and the native client does check the
// answers (a wrong answer size fails it).

const gcc = spawnSync('gcc', ['--version']).error === undefined;
const short = (s: Omit<RunSpec, 'durationS' | 'concurrency'>): RunSpec => ({ ...s, concurrency: 4, durationS: 0.5 });

for (const close of ['client-fin', 'client-rst', 'server-fin', 'server-rst'] as const) {
  test.serial(`sockspike's client against the native server, ${close}: every transaction ok`, async (t) => {
    if (!gcc) return void t.pass('skipped: no gcc to build the native reference');
    const r = await oneRun(short({ client: 'sockspike', server: 'native', close }));
    t.true(r.attempted > 50, `${r.attempted} attempted`);
    t.is(r.ok, r.attempted, JSON.stringify(r.errors));
    t.is(r.failed, 0);
    t.true(r.tps > 0 && r.clientCpuS > 0 && r.p50Us > 0 && r.p99Us >= r.p50Us);
  });
}

for (const close of ['client-rst', 'server-fin'] as const) {
  test.serial(`the native client against sockspike's built-in server, ${close}: every transaction ok`, async (t) => {
    if (!gcc) return void t.pass('skipped: no gcc to build the native reference');
    const r = await oneRun(short({ client: 'native', server: 'sockspike', close }));
    t.true(r.attempted > 50, `${r.attempted} attempted`);
    t.is(r.ok, r.attempted, JSON.stringify(r.errors));
  });
}

// the engine against an implementation of the protocol written apart from it
const noEngine = engineUnavailable();
for (const close of ['client-fin', 'client-rst', 'server-fin', 'server-rst'] as const) {
  test.serial(`the engine's client against the native server, and the native client against the engine's server, ${close}: every transaction ok`, async (t) => {
    if (!gcc) return void t.pass('skipped: no gcc to build the native reference');
    if (noEngine !== null) return void t.pass(`skipped: ${noEngine}`);
    for (const spec of [short({ client: 'engine', server: 'native', close }), short({ client: 'native', server: 'engine', close })]) {
      const r = await oneRun(spec);
      t.true(r.attempted > 50, `${spec.client} client, ${spec.server} server: ${r.attempted} attempted`);
      t.is(r.ok, r.attempted, `${spec.client} client, ${spec.server} server: ${JSON.stringify(r.errors)}`);
      t.true(r.tps > 0 && r.clientCpuS >= 0 && r.p50Us > 0 && r.p99Us >= r.p50Us);
    }
  });
}

test.serial('the native client fails every transaction whose answer is longer than asked for', async (t) => {
  if (!gcc) return void t.pass('skipped: no gcc to build the native reference');
  const ref = buildNativeRef();
  const server = spawn(ref, ['server', '-r', '3001'], { stdio: ['ignore', 'pipe', 'inherit'] });
  t.teardown(() => server.kill('SIGKILL'));
  const port = await new Promise<string>((r) => createInterface({ input: server.stdout! }).once('line', (l) => r(l.split(' ')[1])));
  const c = spawnSync(ref, ['client', '-p', port, '-r', '3000', '-n', '20', '-d', '5'], { encoding: 'utf8', timeout: 20_000 });
  const j = JSON.parse(c.stdout) as { attempted: number; ok: number; failed: number };
  t.is(j.attempted, 20);
  t.is(j.ok, 0);
  t.is(j.failed, 20);
});
