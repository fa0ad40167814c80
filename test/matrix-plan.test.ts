import test from 'ava';
import { dirNameOf, parseVary, scheduleOf, variantsOf } from '../harness/matrix.ts';
import { runFlagKind, runOptions } from '../cli/run-flags.ts';
import { runFlagsOf } from '../cli/matrix.ts';

// The matrix plan: vary keys read against sockspike run's own flags, the
// combinations, their run flags, and the order of runs.

const kind = runFlagKind(runOptions());

test('vary keys are run flags: values, switches (on/off) and negated switches map to the flags run takes', (t) => {
  t.is(kind('backlog'), 'value');
  t.is(kind('redact'), 'switch');
  t.is(kind('probes'), 'negated');
  t.is(kind('nonsense'), undefined);
  const vary = parseVary(['close=client-fin,client-rst', 'backlog=1,128', 'probes=on,off'], kind);
  const v = variantsOf(vary, kind);
  t.is(v.length, 8);
  t.is(v[0].name, 'backlog=1,close=client-fin,probes=on', 'keys sorted in the name');
  t.deepEqual(v[0].flags, ['--close', 'client-fin', '--backlog', '1']);
  t.deepEqual(v[1].flags, ['--close', 'client-fin', '--backlog', '1', '--no-probes']);
  t.is(v[7].name, 'backlog=128,close=client-rst,probes=off');
  t.is(v[0].dir, 'runs/backlog=1,close=client-fin,probes=on');
  t.is(dirNameOf('sysctl.net.ipv4.ip_local_port_range=40000 40199'), 'sysctl.net.ipv4.ip_local_port_range=40000_40199');
  t.throws(() => parseVary(['backlog'], kind), { message: /expected KEY=V1,V2/ });
  t.throws(() => parseVary(['backlog=1,,2'], kind), { message: /an empty value/ });
  t.throws(() => parseVary(['backlog=1,1'], kind), { message: /appears twice/ });
  t.throws(() => parseVary(['backlog=1', 'backlog=2'], kind), { message: /given twice/ });
  t.throws(() => parseVary(['redact=maybe,on'], kind), { message: /is a switch; vary it with on,off/ });
  t.throws(() => parseVary(['out=a,b'], kind), { message: /not a setting a matrix can vary/ });
});

test('sysctl.KEY becomes --sysctl KEY=VALUE when run has --sysctl, and is refused when it has not', (t) => {
  const withSysctl = (k: string): ReturnType<typeof kind> => (k === 'sysctl' ? 'value' : kind(k));
  const v = variantsOf(parseVary(['sysctl.net.ipv4.tcp_tw_reuse=0,1'], withSysctl), withSysctl);
  t.deepEqual(
    v.map((x) => x.flags),
    [
      ['--sysctl', 'net.ipv4.tcp_tw_reuse=0'],
      ['--sysctl', 'net.ipv4.tcp_tw_reuse=1'],
    ],
  );
  t.deepEqual(
    v.map((x) => x.name),
    ['sysctl.net.ipv4.tcp_tw_reuse=0', 'sysctl.net.ipv4.tcp_tw_reuse=1'],
  );
  const without = (k: string): ReturnType<typeof kind> => (k === 'sysctl' ? undefined : kind(k));
  t.throws(() => parseVary(['sysctl.net.core.somaxconn=16,128'], without), { message: /has no --sysctl flag/ });
});

test('the order: every block holds every variant once, shuffled per block by the seed, or interleaved', (t) => {
  const v = variantsOf(parseVary(['backlog=1,2,4,8,16'], kind), kind);
  const a = scheduleOf(v, 4, 'random', 7);
  t.is(a.length, 20);
  const blocks = [1, 2, 3, 4].map((b) => a.filter((s) => s.block === b).map((s) => s.variant));
  for (const b of blocks) t.deepEqual([...b].sort(), v.map((x) => x.name).sort());
  t.true(new Set(blocks.map((b) => b.join())).size > 1, 'the order differs between blocks');
  t.deepEqual(scheduleOf(v, 4, 'random', 7), a, 'the same seed, the same order');
  t.notDeepEqual(scheduleOf(v, 4, 'random', 8), a);
  t.deepEqual(
    a.map((s) => s.position),
    Array.from({ length: 20 }, (_, i) => i + 1),
  );
  t.is(a.find((s) => s.variant === 'backlog=4' && s.block === 3)!.dir, 'runs/backlog=4/r3');
  const i = scheduleOf(v, 2, 'interleaved', 7).map((s) => s.variant);
  t.deepEqual(i, [...v.map((x) => x.name), ...v.map((x) => x.name)]);
});

test("the run flags among the matrix arguments: all but the matrix's own", (t) => {
  t.deepEqual(
    runFlagsOf([
      '--vary',
      'backlog=1,2',
      '--concurrency',
      '4',
      '--repeat=3',
      '--out',
      'd',
      '--order',
      'random',
      '--no-probes',
      '--seed',
      '3',
      '--baseline',
      'backlog=2',
      '--close=client-rst',
    ]),
    ['--concurrency', '4', '--no-probes', '--close=client-rst'],
  );
});
