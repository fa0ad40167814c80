import { findSocketOwner, listeningInodes } from '../../probes/listen-queue.ts';
import { UserError } from '../../lib/errors.ts';
import type { ListeningMessage } from '../messages.ts';
import { accepts } from './server-command.ts';

// --target HOST:PORT: a server that is already running. Nothing to start or
// stop; check once that it accepts connections, and find the process that
// holds its listening socket (on this host) so it can be probed.

export async function checkTarget(host: string, port: number, timeoutMs: number): Promise<ListeningMessage & { pid: number | null }> {
  if (!(await accepts(host, port, timeoutMs)))
    throw new UserError(
      `--target ${host}:${port} does not accept connections (refused or no answer within ${Math.round(timeoutMs / 1000)} s): is the server running?`,
    );
  const owner = findSocketOwner(listeningInodes(port));
  return {
    type: 'listening',
    port,
    fd: -1,
    pid: owner?.pid ?? null,
    notes: [
      `target: an already running server at ${host}:${port}` +
        (owner !== null ? ` (pid ${owner.pid} holds its listening socket)` : ' (no local process found holding its listening socket: not probed)'),
    ],
  };
}
