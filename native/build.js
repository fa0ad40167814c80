// Builds the native workload engine (native/build/engine/sockspike-engine, a
// plain C program: `cc -O2 -Wall -Wextra`, no node-gyp) and the native addon
// (native/build/Release/sockspike.node, node-gyp).
// Run by `npm install` (package.json "install") or by hand: `node native/build.js`.
//
// It never fails the install: when the engine or the addon cannot be built
// it prints one warning line for each and exits 0; the harness then runs the
// built-in client and server on Node, or without the features that need the
// addon (see native/README.md). Set SOCKSPIKE_SKIP_NATIVE=1 to skip both.
//
// SOCKSPIKE_ENGINE_SANITIZE=1 builds only the engine, with AddressSanitizer
// and UBSan, into native/build/engine-sanitize/ (test/runs/engine-sanitize.test.ts).
import { spawnSync } from 'node:child_process';
import { accessSync, constants, existsSync, mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const buildDir = path.join(here, 'build');
const addon = path.join(buildDir, 'Release', 'sockspike.node');
const logFile = path.join(buildDir, 'build.log');
const rel = (p) => path.relative(process.cwd(), p) || p;

/** The addon is not built: one line, then the engine's build goes on (buildAddon's caller catches it). */
class AddonSkipped extends Error {}
const warn = (reason) => {
  process.stderr.write(`sockspike: native addon not built (${reason}); linger:N and TCP_INFO will be unavailable\n`);
  throw new AddonSkipped(reason);
};

/** An executable named `name` on PATH, or null. */
const onPath = (name) => {
  for (const dir of (process.env.PATH ?? '').split(path.delimiter)) {
    if (!dir) continue;
    const candidate = path.join(dir, name);
    try {
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch {
      // not here
    }
  }
  return null;
};

/**
 * How to run node-gyp, as [command, ...leading args]. In npm lifecycle
 * scripts npm puts a `node-gyp` shim on PATH (…/@npmcli/run-script/lib/node-gyp-bin)
 * that runs its bundled copy; outside npm, fall back to npm's bundled copy,
 * then to `npm exec` (which never installs anything: --no).
 */
const findNodeGyp = () => {
  const shim = onPath('node-gyp');
  if (shim) return [shim];
  const bundled = [
    process.env.npm_config_node_gyp,
    process.env.npm_execpath && path.join(path.dirname(process.env.npm_execpath), '..', 'node_modules', 'node-gyp', 'bin', 'node-gyp.js'),
    path.join(path.dirname(path.dirname(process.execPath)), 'lib', 'node_modules', 'npm', 'node_modules', 'node-gyp', 'bin', 'node-gyp.js'),
  ].find((p) => p && p.endsWith('.js') && existsSync(p));
  if (bundled) return [process.execPath, bundled];
  if (onPath('npm')) return ['npm', 'exec', '--no', '--', 'node-gyp'];
  return null;
};

/**
 * node-gyp downloads Node's headers unless told where they are. npm passes
 * its `nodedir` config as npm_config_nodedir; without it, use the headers of
 * the running node when they are installed beside it (<prefix>/include/node).
 */
const nodedirArgs = () => {
  if (process.env.npm_config_nodedir) return [];
  const prefix = path.dirname(path.dirname(process.execPath));
  return existsSync(path.join(prefix, 'include', 'node', 'common.gypi')) ? [`--nodedir=${prefix}`] : [];
};

/** The most telling line of a failed build's output. */
const reasonFrom = (output, status) => {
  const lines = output
    .split('\n')
    .map((l) => l.trim())
    .filter(Boolean);
  // A compiler diagnostic first, then node-gyp's own error message.
  const compiler = lines.find((l) => /\b(fatal )?error:/.test(l) && !l.startsWith('gyp'));
  const stack = lines.find((l) => l.startsWith('gyp ERR! stack Error:'))?.replace(/^gyp ERR! stack Error: /, '');
  const gyp = lines.find((l) => l.startsWith('gyp ERR!') && !/^gyp ERR! (stack|System|command|cwd|node -v|node-gyp -v|not ok)/.test(l));
  const line = (compiler ?? stack ?? gyp?.replace(/^gyp ERR! /, '') ?? `node-gyp exited with ${status}`).trim();
  return line.length > 160 ? `${line.slice(0, 157)}...` : line;
};

/**
 * The engine: every .c of native/engine/ into one program. Returns null when
 * built, else the reason (one line). `sanitize`: -fsanitize=address,undefined.
 */
const buildEngine = (sanitize) => {
  const src = path.join(here, 'engine');
  const outDir = path.join(buildDir, sanitize ? 'engine-sanitize' : 'engine');
  const out = path.join(outDir, 'sockspike-engine');
  const cc = process.env.CC ?? 'cc';
  const files = readdirSync(src)
    .filter((f) => f.endsWith('.c'))
    .sort()
    .map((f) => path.join(src, f));
  const flags = sanitize ? ['-O1', '-g', '-fno-omit-frame-pointer', '-fsanitize=address,undefined', '-fno-sanitize-recover=undefined'] : ['-O2'];
  const args = [...flags, '-Wall', '-Wextra', '-o', out, ...files, '-lm'];
  try {
    mkdirSync(outDir, { recursive: true });
  } catch (err) {
    return `cannot create ${rel(outDir)}: ${err.code ?? err.message}`;
  }
  const r = spawnSync(cc, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], timeout: 5 * 60_000 });
  const output = `${r.stdout ?? ''}${r.stderr ?? ''}`;
  try {
    writeFileSync(path.join(outDir, 'build.log'), `$ ${cc} ${args.join(' ')}\n${output}`);
  } catch {
    // the log is a convenience
  }
  if (r.error) return `${r.error.code ?? r.error.message} running ${cc}`;
  if (r.status !== 0) {
    const line = output.split('\n').find((l) => /\berror\b/.test(l)) ?? `${cc} exited with ${r.status ?? r.signal}`;
    return `${line.trim().slice(0, 160)}; full log: ${rel(path.join(outDir, 'build.log'))}`;
  }
  // a warning is a bug to fix, but not a reason to leave the engine out
  if (output.trim() !== '') process.stderr.write(`sockspike: the native engine built with warnings: see ${rel(path.join(outDir, 'build.log'))}\n`);
  return existsSync(out) ? null : `${cc} succeeded but ${rel(out)} is missing`;
};

if (process.env.SOCKSPIKE_ENGINE_SANITIZE === '1') {
  const why = buildEngine(true);
  if (why !== null) {
    process.stderr.write(`sockspike: sanitized engine not built (${why})\n`);
    process.exit(1);
  }
  process.stdout.write(`sockspike: sanitized engine built (${rel(path.join(buildDir, 'engine-sanitize', 'sockspike-engine'))})\n`);
  process.exit(0);
}

/** node-gyp rebuild (it cleans native/build/ first: the engine is built after it). */
function buildAddon() {
  if (process.env.SOCKSPIKE_SKIP_NATIVE === '1') warn('SOCKSPIKE_SKIP_NATIVE=1');
  if (process.platform !== 'linux') warn(`the addon is Linux-only; this is ${process.platform}`);

  const gyp = findNodeGyp();
  if (!gyp) warn('node-gyp not found: neither on PATH nor bundled with npm');

  const [cmd, ...pre] = gyp;
  const result = spawnSync(cmd, [...pre, 'rebuild', ...nodedirArgs()], {
    cwd: here,
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'pipe'],
    timeout: 10 * 60_000,
    env: { ...process.env, npm_config_loglevel: process.env.npm_config_loglevel ?? 'warn' },
  });
  const output = `${result.stdout ?? ''}${result.stderr ?? ''}`;
  try {
    mkdirSync(buildDir, { recursive: true });
    writeFileSync(logFile, `$ ${[cmd, ...pre, 'rebuild', ...nodedirArgs()].join(' ')}\n${output}`);
  } catch {
    // the log is a convenience
  }
  const seeLog = `; full log: ${rel(logFile)}`;
  if (result.error) warn(`${result.error.code ?? result.error.message} running ${path.basename(cmd)}${seeLog}`);
  if (result.status !== 0) warn(`${reasonFrom(output, result.status ?? result.signal)}${seeLog}`);
  if (!existsSync(addon)) warn(`node-gyp succeeded but ${rel(addon)} is missing${seeLog}`);
  try {
    createRequire(import.meta.url)(addon);
  } catch (err) {
    warn(`built but does not load: ${String(err instanceof Error ? err.message : err).split('\n')[0]}`);
  }
  process.stdout.write(`sockspike: native addon built (${rel(addon)})\n`);
}

try {
  buildAddon();
} catch (err) {
  if (!(err instanceof AddonSkipped)) throw err;
}

if (process.env.SOCKSPIKE_SKIP_NATIVE !== '1' && process.platform === 'linux') {
  const why = buildEngine(false);
  if (why === null) process.stdout.write(`sockspike: native engine built (${rel(path.join(buildDir, 'engine', 'sockspike-engine'))})\n`);
  else process.stderr.write(`sockspike: native engine not built (${why}); the built-in client and server run on Node\n`);
} else
  process.stderr.write(
    `sockspike: native engine not built (${process.env.SOCKSPIKE_SKIP_NATIVE === '1' ? 'SOCKSPIKE_SKIP_NATIVE=1' : `Linux-only; this is ${process.platform}`}); the built-in client and server run on Node\n`,
  );
