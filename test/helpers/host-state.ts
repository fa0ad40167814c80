// The host state a kernel experiment must leave as it found it: the run's
// namespaces (sspk-*), the host's nftables ruleset and the sysctls the tests
// touch.
import type { TestFn } from 'ava';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { systemBinary } from '../../lib/system-binary.ts';

export const WATCHED_SYSCTLS = [
  'net/ipv4/tcp_tw_reuse',
  'net/ipv4/ip_local_port_range',
  'net/core/somaxconn',
  'net/core/netdev_max_backlog',
  'net/ipv4/tcp_abort_on_overflow',
];

export interface HostState {
  namespaces: string[];
  nft: string;
  sysctls: Record<string, string>;
}

export function hostState(): HostState {
  const ns = spawnSync('ip', ['netns', 'list'], { encoding: 'utf8' });
  const nft = spawnSync(systemBinary('nft'), ['list', 'ruleset'], { encoding: 'utf8' });
  return {
    namespaces: (ns.stdout ?? '')
      .split('\n')
      .map((l) => l.split(' ')[0])
      .filter((n) => n.startsWith('sspk-'))
      .sort(),
    nft: nft.error !== undefined ? 'nft missing' : nft.stdout,
    sysctls: Object.fromEntries(WATCHED_SYSCTLS.map((k) => [k, readFileSync(`/proc/sys/${k}`, 'utf8').trim()])),
  };
}

/** Why the kernel-experiment tests cannot run here, or null. */
export function kernelTestsUnavailable(): string | null {
  if (typeof process.getuid !== 'function' || process.getuid() !== 0) return 'not root: network namespaces, sysctls and nftables need root';
  if (spawnSync('ip', ['-V']).error !== undefined) return 'the ip command (iproute2) is missing';
  if (spawnSync(systemBinary('nft'), ['--version']).error !== undefined) return 'the nft command (nftables) is missing: apt-get install nftables';
  return null;
}

/**
 * For a file of kernel-experiment tests: why they cannot run here (null: they
 * can; a test then says why they were skipped), and a check after all of
 * them that the host is as they found it.
 */
export function guardHost(test: TestFn, what: string): string | null {
  const why = kernelTestsUnavailable();
  if (why !== null) {
    test(`${what} skipped`, (t) => {
      t.log(`skipped: ${why}`);
      t.pass();
    });
    return why;
  }
  let before: HostState | null = null;
  test.before(() => {
    before = hostState();
  });
  test.after.always('the host is left as found: namespaces, nft ruleset, sysctls', (t) => {
    if (before !== null) t.deepEqual(hostState(), before);
  });
  return null;
}
