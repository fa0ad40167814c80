import type { RunConfig } from './types.ts';
import { shellQuote } from './shell.ts';

// The command-line flags that bring the user's server and protocol back
// (--server-cmd, --target, --request..., --response-until), so a suggested
// `sockspike run ...` command drives the same server as the run did.

export function externalServerArgs(c: Partial<RunConfig>): string[] {
  const out: string[] = [];
  const ext = c.external;
  if (ext?.kind === 'command') out.push(`--server-cmd ${shellQuote(ext.command)}`);
  if (ext?.kind === 'target') out.push(`--target ${c.host?.includes(':') ? `[${c.host}]` : c.host}:${c.port}${ext.allowRemote ? ' --allow-remote' : ''}`);
  const t = c.template;
  if (t) {
    const src = t.source.startsWith('--request-file ')
      ? `--request-file ${shellQuote(t.source.slice('--request-file '.length))}`
      : `--request ${shellQuote(JSON.parse(t.source.slice('--request '.length)) as string)}`;
    const until = t.until.kind === 'close' ? 'close' : t.until.kind === 'bytes' ? `bytes:${t.until.bytes}` : `delimiter:${t.until.text}`;
    out.push(src, `--response-until ${shellQuote(until)}`, `--exchanges ${c.exchanges ?? 1}`);
  }
  return out;
}
