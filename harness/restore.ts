import { rmSync, writeFileSync } from 'node:fs';
import { errnoCode } from '../lib/errors.ts';
import { orphanJournals } from './journal.ts';
import { deleteNetns } from './netns.ts';
import { sysctlPath } from './sysctl-spec.ts';

// Undo the journalled changes of runs whose process is gone, newest change
// first, as the run itself would have.

export async function restoreLeftovers(): Promise<{ done: string[]; failed: string[] }> {
  const done: string[] = [];
  const failed: string[] = [];
  for (const { path, file } of orphanJournals()) {
    let ok = true;
    for (const e of [...file.entries].reverse()) {
      if (e.kind === 'netns') {
        if (await deleteNetns(e.name)) done.push(`deleted network namespace ${e.name} (run ${file.runDir}, pid ${file.pid})`);
      } else {
        try {
          writeFileSync(sysctlPath(e.key), e.before + '\n');
          done.push(`restored ${e.key} = ${e.before} (was set to ${e.value} by run ${file.runDir}, pid ${file.pid})`);
        } catch (err) {
          ok = false;
          failed.push(`could not restore ${e.key} = ${e.before}: ${errnoCode(err) ?? String(err)}`);
        }
      }
    }
    if (ok) rmSync(path, { force: true });
  }
  return { done, failed };
}
