import { rmSync, writeFileSync } from 'node:fs';
import { errnoCode, UserError } from '../../lib/errors.ts';
import { otherJournals, type JournalEntry, type JournalOnDisk } from './journal.ts';
import { deleteNetns } from './netns.ts';
import { sysctlPath } from './sysctl-spec.ts';

// Undo the journalled changes of runs whose process is gone. A host key that
// several dead runs changed goes back to the value it had before the first
// of them: a later run that started while an earlier one's change was in
// force journalled that change as its "before" (older journals only; a run
// now settles dead runs' journals before it changes a key, see
// settleBeforeHostChange).

type SysctlEntry = Extract<JournalEntry, { kind: 'sysctl' }>;

const whose = (j: JournalOnDisk): string => `run ${j.file.runDir}, pid ${j.file.pid}`;
const when = (j: JournalOnDisk, e: SysctlEntry): number => e.at ?? Date.parse(j.file.startedAt);

/** done: what was undone; left: keys left to a running run that changed them too; failed: what could not be undone. One line each. */
export async function restoreLeftovers(): Promise<{ done: string[]; left: string[]; failed: string[] }> {
  const done: string[] = [];
  const left: string[] = [];
  const failed: string[] = [];
  const journals = otherJournals();
  const orphans = journals.filter((j) => !j.running);
  const unfinished = new Set<JournalOnDisk>();
  // a key a running run has changed is that run's to put back when it ends
  const held = new Map<string, JournalOnDisk>();
  for (const j of journals) if (j.running) for (const e of j.file.entries) if (e.kind === 'sysctl') held.set(e.key, j);

  // sysctls: per key, the earliest journalled change's "before", written once
  const byKey = new Map<string, { j: JournalOnDisk; e: SysctlEntry; i: number }[]>();
  for (const j of orphans)
    j.file.entries.forEach((e, i) => {
      if (e.kind !== 'sysctl') return;
      const list = byKey.get(e.key) ?? [];
      list.push({ j, e, i });
      byKey.set(e.key, list);
    });
  for (const [key, changes] of byKey) {
    changes.sort((a, b) => when(a.j, a.e) - when(b.j, b.e) || Date.parse(a.j.file.startedAt) - Date.parse(b.j.file.startedAt) || a.i - b.i);
    const first = changes[0];
    const holder = held.get(key);
    if (holder !== undefined) {
      for (const c of changes) unfinished.add(c.j);
      left.push(
        `left ${key} alone: ${whose(holder)} is still running and has changed it too (it puts it back when it ends); run \`sockspike restore\` again after that`,
      );
      continue;
    }
    const others = changes.length > 1 ? `; ${changes.length} dead runs had changed it, the first was this one` : '';
    try {
      writeFileSync(sysctlPath(key), first.e.before + '\n');
      done.push(`restored ${key} = ${first.e.before} (its value before ${whose(first.j)} set it to ${first.e.value}${others})`);
    } catch (err) {
      for (const c of changes) unfinished.add(c.j);
      failed.push(`could not restore ${key} = ${first.e.before}: ${errnoCode(err) ?? String(err)}`);
    }
  }
  for (const j of orphans)
    for (const e of j.file.entries) if (e.kind === 'netns' && (await deleteNetns(e.name))) done.push(`deleted network namespace ${e.name} (${whose(j)})`);
  for (const j of orphans) if (!unfinished.has(j)) rmSync(j.path, { force: true });
  return { done, left, failed };
}

/**
 * Before a run changes host keys: a live run that has journalled a change to
 * one of them is refused (one line), and what dead runs left is restored
 * first, so that the value this run journals as "before" is the host's own.
 * Returns one line per thing restored.
 */
export async function settleBeforeHostChange(keys: string[]): Promise<string[]> {
  const journals = otherJournals();
  for (const j of journals.filter((x) => x.running))
    for (const e of j.file.entries)
      if (e.kind === 'sysctl' && keys.includes(e.key))
        throw new UserError(`--sysctl ${e.key}: ${whose(j)} has changed it and is still running; wait for it to end (or stop it), then run again`);
  if (!journals.some((j) => !j.running)) return [];
  const r = await restoreLeftovers();
  if (r.failed.length > 0)
    throw new UserError(`dead runs left host changes that could not be undone (${r.failed[0]}); run \`sockspike restore\` as root, then run again`);
  return r.done;
}
