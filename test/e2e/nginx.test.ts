// A real third-party server from Debian's packages (nginx) on loopback,
// started by sockspike via --server-cmd with a configuration of the test's
// own: HTTP/1.0 GETs, a connection per request, each answer complete when
// nginx closes. With `listen ... backlog=1` under concurrency the accept
// queue overflows and the report names accept-queue-overflow first.
import test, { type ExecutionContext } from 'ava';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { assertAccounting, readManifestFile, readSummaryFile, sockspike, tempDir } from '../helpers/cli.ts';
import { alive, groupMembers, hasCommand, killGroup } from '../helpers/processes.ts';

const nginx = hasCommand('nginx', ['-v']);
const SKIP = 'nginx is not installed (apt-get install -y nginx; CI installs it from .ci/apt-packages.txt)';

/** nginx.conf.in of the test's own (PORT filled in by the server command), everything in the temp dir. */
function nginxCommand(t: ExecutionContext, backlog: number): { command: string; dir: string } {
  const dir = tempDir(t);
  writeFileSync(
    join(dir, 'nginx.conf.in'),
    `daemon off;
worker_processes 1;
pid ${dir}/nginx.pid;
error_log ${dir}/error.log;
events { worker_connections 1024; }
http {
  access_log ${dir}/access.log;
  client_body_temp_path ${dir}/body;
  proxy_temp_path ${dir}/proxy;
  fastcgi_temp_path ${dir}/fastcgi;
  uwsgi_temp_path ${dir}/uwsgi;
  scgi_temp_path ${dir}/scgi;
  server {
    listen 127.0.0.1:PORT backlog=${backlog};
    location / { return 200 "hello from nginx\\n"; }
  }
}
`,
  );
  // {port} is sockspike's; sed puts it into the configuration, then nginx replaces the shell
  return { dir, command: `sed s/PORT/{port}/ ${dir}/nginx.conf.in > ${dir}/nginx.conf && exec nginx -e ${dir}/error.log -p ${dir} -c ${dir}/nginx.conf` };
}

function checkStopped(t: ExecutionContext, dir: string): void {
  const pid = readManifestFile(dir).processes.find((p) => p.role === 'server')?.pid ?? -1;
  t.true(pid > 0);
  t.teardown(() => killGroup(pid));
  t.false(alive(pid), `nginx master ${pid} stopped`);
  t.deepEqual(groupMembers(pid), [], 'no nginx worker left');
}

const HTTP = ['--request', 'GET / HTTP/1.0\\r\\nHost: localhost\\r\\n\\r\\n', '--response-until', 'close', '--exchanges', '1'];

test('nginx: HTTP/1.0 GETs, one connection each, all ok with sensible latencies', async (t) => {
  if (!nginx) return (t.log(`skipped: ${SKIP}`), t.pass());
  const dir = join(tempDir(t), 'run');
  const ng = nginxCommand(t, 511);
  const r = await sockspike(['run', '--server-cmd', ng.command, ...HTTP, '--duration', '2s', '--out', dir, '--no-progress']);
  t.is(r.exitCode, 0, String(r.stderr));
  checkStopped(t, dir);
  const s = readSummaryFile(dir);
  assertAccounting(t, s);
  t.true(s.transactions.attempted > 50, `${s.transactions.attempted} requests`);
  t.is(s.transactions.ok, s.transactions.attempted, JSON.stringify(s.transactions.errors));
  const L = s.latencyUs.total;
  t.log(`p50 ${L.p50} us, p99 ${L.p99} us, max ${L.max} us, ${s.throughput.tps}/s`);
  t.true(L.p50 > 0 && L.p50 < 20_000, `p50 ${L.p50} us`);
  t.true(s.latencyUs.connect.count === s.transactions.ok - (s.warmup?.transactions ?? 0) && s.latencyUs.exchanges.length === 1);
  t.true(s.throughput.mibps > 0, 'bytes of the answers were counted');
  // nginx's own record: one GET per transaction reached it and was answered 200
  const access = readFileSync(join(ng.dir, 'access.log'), 'utf8')
    .split('\n')
    .filter((l) => l.includes('"GET / HTTP/1.0" 200'));
  t.is(access.length, s.transactions.ok, 'nginx logged every request');
  const report = readFileSync(join(dir, 'report.md'), 'utf8');
  t.regex(report, /response complete at the server closes; not checked byte for byte/);
  t.regex(report, /[Ss]erver events: not recorded \(external server\)/);
});

test('nginx with backlog=1 under concurrency: the report names accept-queue-overflow first', async (t) => {
  if (!nginx) return (t.log(`skipped: ${SKIP}`), t.pass());
  const dir = join(tempDir(t), 'run');
  const r = await sockspike([
    'run',
    '--server-cmd',
    nginxCommand(t, 1).command,
    ...HTTP,
    '--concurrency',
    '8',
    '--duration',
    '3s',
    '--outlier',
    '100ms',
    '--out',
    dir,
    '--no-progress',
  ]);
  t.is(r.exitCode, 0, String(r.stderr));
  checkStopped(t, dir);
  const s = readSummaryFile(dir);
  assertAccounting(t, s);
  const causes = s.causes ?? [];
  t.log(`${s.transactions.attempted} requests, ${s.outliers.count} outliers > 100 ms; causes: ${causes.map((c) => `${c.id} ${c.confidence}`).join(', ')}`);
  t.true(s.outliers.count > 0, 'backlog 1 made connects wait');
  t.is(causes[0]?.id, 'accept-queue-overflow', causes[0]?.summary);
  // nginx's backlog, read from its listening socket (found by port) by the listen-queue probe
  t.regex(causes[0]?.summary ?? '', /backlog 1, as the listen-queue probe read it/);
  t.regex(readFileSync(join(dir, 'report.md'), 'utf8'), /Most likely cause: Listen \(accept\) queue overflow/);
});
