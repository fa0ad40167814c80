import { readFileSync } from 'node:fs';
import { UserError } from '../../lib/errors.ts';
import type { ProtocolTemplate, ResponseUntil } from '../../lib/types.ts';

// Protocol templates (--request, --request-file, --response-until): the
// bytes each exchange sends and the rule that says when an answer is
// complete, so real protocols (an HTTP/1.0 GET, say) can be driven.

/** Decode \r \n \t \\ \0 and \xHH in a request typed on the command line. */
export function unescapeRequest(text: string, flag = '--request'): Buffer {
  const out: number[] = [];
  const bytes = Buffer.from(text, 'utf8');
  for (let i = 0; i < bytes.length; i++) {
    const b = bytes[i];
    if (b !== 0x5c /* \ */) {
      out.push(b);
      continue;
    }
    const next = String.fromCharCode(bytes[i + 1] ?? 0);
    i++;
    if (next === 'r') out.push(0x0d);
    else if (next === 'n') out.push(0x0a);
    else if (next === 't') out.push(0x09);
    else if (next === '0') out.push(0x00);
    else if (next === '\\') out.push(0x5c);
    else if (next === 'x') {
      const hex = bytes.subarray(i + 1, i + 3).toString('latin1');
      if (!/^[0-9a-fA-F]{2}$/.test(hex)) throw new UserError(`${flag}: \\x must be followed by two hex digits (at "\\x${hex}")`);
      out.push(parseInt(hex, 16));
      i += 2;
    } else throw new UserError(`${flag}: unknown escape "\\${next === '\0' ? '' : next}" (use \\r \\n \\t \\0 \\\\ or \\xHH)`);
  }
  return Buffer.from(out);
}

/** --response-until close | bytes:N | delimiter:STR (STR with the same escapes as --request). */
export function parseResponseUntil(text: string): ResponseUntil {
  if (text === 'close') return { kind: 'close' };
  const bytes = /^bytes:(\d+)$/.exec(text);
  if (bytes) {
    const n = Number(bytes[1]);
    if (n < 1 || n > 64 << 20) throw new UserError(`--response-until bytes:${n}: use 1..${64 << 20} bytes`);
    return { kind: 'bytes', bytes: n };
  }
  if (text.startsWith('delimiter:')) {
    const raw = text.slice('delimiter:'.length);
    const d = unescapeRequest(raw, '--response-until delimiter');
    if (d.length === 0) throw new UserError('--response-until delimiter: the delimiter is empty');
    if (d.length > 1024) throw new UserError('--response-until delimiter: at most 1024 bytes');
    return { kind: 'delimiter', delimiterBase64: d.toString('base64'), text: raw };
  }
  throw new UserError(`--response-until: "${text}" must be close, bytes:N or delimiter:STR`);
}

export interface TemplateOptions {
  request?: string;
  requestFile?: string;
  responseUntil?: string;
}

/** The template the flags ask for; null when none of them is given (the built-in echo pattern). */
export function resolveTemplate(o: TemplateOptions, exchanges: number): ProtocolTemplate | null {
  if (o.request === undefined && o.requestFile === undefined) {
    if (o.responseUntil !== undefined) throw new UserError('--response-until needs a request: --request STRING or --request-file FILE');
    return null;
  }
  if (o.request !== undefined && o.requestFile !== undefined) throw new UserError('give --request or --request-file, not both');
  let request: Buffer;
  let source: string;
  if (o.requestFile !== undefined) {
    try {
      request = readFileSync(o.requestFile);
    } catch (err) {
      throw new UserError(`--request-file ${o.requestFile}: ${(err as NodeJS.ErrnoException).code ?? 'cannot read it'}`);
    }
    source = `--request-file ${o.requestFile}`;
  } else {
    request = unescapeRequest(o.request!);
    source = `--request ${JSON.stringify(o.request)}`;
  }
  if (request.length === 0) throw new UserError(`${source}: the request is empty`);
  if (request.length > 64 << 20) throw new UserError(`${source}: the request exceeds 64 MiB`);
  if (o.responseUntil === undefined) throw new UserError('a request template needs --response-until close|bytes:N|delimiter:STR (when is an answer complete?)');
  const until = parseResponseUntil(o.responseUntil);
  if (until.kind === 'close' && exchanges > 1)
    throw new UserError(`--response-until close ends the connection with the first answer: use --exchanges 1 (not ${exchanges}), or bytes:N / delimiter:STR`);
  return { requestBase64: request.toString('base64'), source, until };
}

/** One line for the report and the manifest: what was checked of each answer. */
export function describeCheck(t: ProtocolTemplate | null | undefined): string {
  if (t === null || t === undefined) return 'every answer checked byte for byte against the built-in echo pattern';
  const rule =
    t.until.kind === 'close'
      ? 'complete when the server closed the connection (at least one byte)'
      : t.until.kind === 'bytes'
        ? `complete after exactly ${t.until.bytes} bytes (more is bad-response)`
        : `complete at the delimiter "${t.until.text}" (bytes after it are bad-response)`;
  return `request template (${t.source}): answers are not checked byte for byte, only for completeness: ${rule}`;
}
