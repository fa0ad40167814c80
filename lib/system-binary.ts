import { accessSync, constants } from 'node:fs';
import { UserError } from './errors.ts';

// A system tool by absolute path. Under `npm test` / `npx`, node_modules/.bin
// comes first on PATH, and a package there can share a name with a system
// tool (@vercel/nft installs an `nft`): never let it stand in for nftables.
// Nothing is looked up on PATH: a tool that is not in the system's
// directories is missing, and a run that needs it stops with one line naming
// the Debian package that has it.

const DIRS = ['/usr/sbin', '/sbin', '/usr/bin', '/bin', '/usr/local/sbin', '/usr/local/bin'];

/** The Debian package of each tool sockspike runs. */
export const DEBIAN_PACKAGE: Record<string, string> = {
  ip: 'iproute2',
  tc: 'iproute2',
  nft: 'nftables',
  bpftrace: 'bpftrace',
  setpriv: 'util-linux',
  mount: 'mount',
  getconf: 'libc-bin',
  sh: 'dash',
  chromium: 'chromium',
};

/** The tool's absolute path, or null when none of the system's directories has it. */
export function findSystemBinary(name: string): string | null {
  for (const d of DIRS) {
    try {
      accessSync(`${d}/${name}`, constants.X_OK);
      return `${d}/${name}`;
    } catch {
      /* next */
    }
  }
  return null;
}

/** The tool's absolute path; missing, its bare name (the caller's spawn fails and says so). Prefer requireSystemBinary. */
export function systemBinary(name: string): string {
  return findSystemBinary(name) ?? name;
}

/** The tool's absolute path, or a UserError (one line, exit 2) naming what needs it and the package to install. */
export function requireSystemBinary(name: string, neededFor: string): string {
  const found = findSystemBinary(name);
  if (found !== null) return found;
  const pkg = DEBIAN_PACKAGE[name];
  throw new UserError(`${neededFor} needs \`${name}\`, which is not in ${DIRS.join(', ')}${pkg ? `: install it (Debian/Ubuntu: apt-get install ${pkg})` : ''}`);
}
