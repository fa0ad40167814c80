import { isIP } from 'node:net';
import { parseDurationNs } from '../../lib/duration.ts';
import { UserError } from '../../lib/errors.ts';
import type { ExternalServer } from '../../lib/types.ts';
import type { TemplateOptions } from '../workload/request-template.ts';

// Bring your own server: --server-cmd and --target, checked here; the
// address check itself is checkLoopback() in config.ts.

export interface ExternalServerOptions extends TemplateOptions {
  serverCmd?: string;
  serverWait?: string;
  target?: string;
  allowRemote?: boolean;
}

export const BYO_DEFAULTS = { serverWait: '10s' } as const;

/** HOST:PORT, [IPv6]:PORT. localhost becomes 127.0.0.1. */
export function parseTarget(text: string): { host: string; port: number } {
  const m = /^\[([^\]]+)\]:(\d+)$/.exec(text) ?? /^([^:]+):(\d+)$/.exec(text);
  if (!m) throw new UserError(`--target ${text}: use HOST:PORT (e.g. 127.0.0.1:8080, [::1]:8080)`);
  const port = Number(m[2]);
  if (port < 1 || port > 65535) throw new UserError(`--target ${text}: port ${port} is out of range (1..65535)`);
  const host = m[1] === 'localhost' ? '127.0.0.1' : m[1];
  if (isIP(host) === 0 && !/^[A-Za-z0-9.-]+$/.test(host)) throw new UserError(`--target ${text}: "${host}" is not an address or a host name`);
  return { host, port };
}

/** The external server the flags ask for (null: the built-in one), and the target address if given. */
export function resolveExternal(
  o: ExternalServerOptions & { port?: string; backlog?: string; acceptDelay?: string },
  defaults: { backlog: string; acceptDelay: string },
): { external: ExternalServer | null; target: { host: string; port: number } | null } {
  if (o.serverCmd !== undefined && o.target !== undefined) throw new UserError('give --server-cmd (start a server) or --target (use a running one), not both');
  if (o.allowRemote && o.target === undefined) throw new UserError('--allow-remote only applies to --target HOST:PORT');
  if (o.serverWait !== undefined && o.serverCmd === undefined) throw new UserError('--server-wait only applies to --server-cmd');
  if (o.serverCmd !== undefined || o.target !== undefined) {
    // settings of the built-in server mean nothing for someone else's
    const own = o.serverCmd !== undefined ? '--server-cmd' : '--target';
    if (o.backlog !== undefined && o.backlog !== defaults.backlog)
      throw new UserError(`--backlog sets the built-in server's listen backlog: with ${own}, set your server's own (e.g. nginx: listen ... backlog=N)`);
    if (o.acceptDelay !== undefined && o.acceptDelay !== defaults.acceptDelay)
      throw new UserError(`--accept-delay slows the built-in server's accept loop: it does not apply with ${own}`);
  }
  if (o.target !== undefined) {
    if (o.port !== undefined) throw new UserError('--target HOST:PORT already names the port: leave out --port');
    return { external: { kind: 'target', allowRemote: o.allowRemote === true }, target: parseTarget(o.target) };
  }
  if (o.serverCmd !== undefined) {
    const command = o.serverCmd.trim();
    if (command === '') throw new UserError('--server-cmd: the command is empty');
    const waitNs = parseDurationNs(o.serverWait ?? BYO_DEFAULTS.serverWait, '--server-wait', 's');
    if (waitNs < 100e6 || waitNs > 600e9) throw new UserError(`--server-wait ${o.serverWait}: use 100ms..10m`);
    return { external: { kind: 'command', command, waitNs }, target: null };
  }
  return { external: null, target: null };
}
