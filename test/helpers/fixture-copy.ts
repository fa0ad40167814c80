import { cpSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';

/** The recorded reported-case run (backlog 1, server-rst): accept-queue-overflow is its known answer. */
export const BACKLOG1_FIXTURE = new URL('../../fixtures/runs/backlog1-rst', import.meta.url).pathname;

/** A copy of a recorded run directory in a temporary directory the test removes, so analysing it writes nothing into fixtures/. */
export function copyFixture(t: { teardown: (f: () => void) => void }, from = BACKLOG1_FIXTURE): string {
  const dir = join(mkdtempSync(join(tmpdir(), 'sockspike-fixture-')), 'run');
  cpSync(from, dir, { recursive: true });
  t.teardown(() => rmSync(dirname(dir), { recursive: true, force: true }));
  return dir;
}
