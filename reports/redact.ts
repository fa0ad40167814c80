import { isIP } from 'node:net';

// --redact: a report attached to a ticket should not name the host or any
// address beyond loopback. Applied to the finished Markdown as a last pass.

const IPV4 = /\b(?:\d{1,3}\.){3}\d{1,3}\b/g;
// candidates only: isIP() decides (a clock time like 08:07:35 is not an address)
const IPV6 = /[0-9a-f]*(?::[0-9a-f]*){2,}/gi;

const loopback = (addr: string): boolean => (isIP(addr) === 4 ? addr.startsWith('127.') : addr === '::1');

export function redactText(text: string, hostnames: string[]): string {
  let out = text;
  // whole words only: a host called "vm" must not turn vmstat into (host)stat
  for (const h of hostnames.filter((x) => x.length > 1).sort((a, b) => b.length - a.length))
    out = out.replace(new RegExp(`(?<![\\w.-])${h.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}(?![\\w-])`, 'g'), '(host)');
  out = out.replace(IPV4, (a) => (isIP(a) === 4 && !loopback(a) ? '(address)' : a));
  out = out.replace(IPV6, (a) => (isIP(a) === 6 && !loopback(a) ? '(address)' : a));
  return out;
}
