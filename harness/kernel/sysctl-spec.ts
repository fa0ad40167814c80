import { UserError } from '../../lib/errors.ts';

// --sysctl KEY=VALUE, as sysctl(8) names them (dots, not slashes).

export function parseSysctl(text: string): { key: string; value: string } {
  const eq = text.indexOf('=');
  const key = (eq < 0 ? text : text.slice(0, eq)).trim();
  const value =
    eq < 0
      ? ''
      : text
          .slice(eq + 1)
          .trim()
          .replace(/^"(.*)"$/, '$1');
  if (eq < 0 || value === '') throw new UserError(`--sysctl: "${text}" must be KEY=VALUE, e.g. net.ipv4.tcp_tw_reuse=0`);
  if (!/^[a-z0-9_]+(\.[A-Za-z0-9_-]+)+$/.test(key)) throw new UserError(`--sysctl: "${key}" is not a sysctl name (e.g. net.core.somaxconn)`);
  return { key, value };
}

export const sysctlPath = (key: string): string => `/proc/sys/${key.replace(/\./g, '/')}`;

/** Only net.* keys can belong to a network namespace; the rest are always the host's. */
export const mayBePerNetns = (key: string): boolean => key.startsWith('net.');
