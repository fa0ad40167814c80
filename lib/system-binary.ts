import { accessSync, constants } from 'node:fs';

// A system tool by absolute path. Under `npm test` / `npx`, node_modules/.bin
// comes first on PATH, and a package there can share a name with a system
// tool (@vercel/nft installs an `nft`): never let it stand in for nftables.

const DIRS = ['/usr/sbin', '/sbin', '/usr/bin', '/bin', '/usr/local/sbin', '/usr/local/bin'];

export function systemBinary(name: string): string {
  for (const d of DIRS) {
    try {
      accessSync(`${d}/${name}`, constants.X_OK);
      return `${d}/${name}`;
    } catch {
      /* next */
    }
  }
  return name;
}
