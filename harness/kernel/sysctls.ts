import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { UserError, errnoCode } from '../../lib/errors.ts';
import type { SysctlRecord } from '../../lib/types.ts';
import type { Journal, JournalEntry } from './journal.ts';
import { inNetns } from './netns.ts';
import { settleBeforeHostChange } from './restore.ts';
import { mayBePerNetns, sysctlPath } from './sysctl-spec.ts';

// --sysctl: per-namespace keys are written inside the run's namespace (and
// vanish with it); host keys only with --host-sysctl, journalled first and
// restored afterwards.

export interface AppliedSysctls {
  records: SysctlRecord[];
  /** What dead runs had left changed and was restored first, one line each. */
  restoredFirst: string[];
  /** Put host keys back; returns one line per key that could not be restored. */
  restore(): string[];
}

const WRITE = 'printf "%s\\n" "$2" > "$1"';
const EXISTS = 'for p; do if [ -e "$p" ]; then echo 1; else echo 0; fi; done';

export async function applySysctls(
  wanted: { key: string; value: string }[],
  netns: string | null,
  allowHost: boolean,
  journal: Journal,
): Promise<AppliedSysctls> {
  const scopes = await classify(wanted, netns);
  const host = wanted.filter((_, i) => scopes[i] === 'host');
  if (host.length > 0 && !allowHost)
    throw new UserError(
      `--sysctl ${host.map((s) => s.key).join(', ')}: not per network namespace, so it would change the whole host; ` +
        'add --host-sysctl to change it there (journalled, restored afterwards and by `sockspike restore`)',
    );
  const restoredFirst = host.length > 0 ? await settleBeforeHostChange(host.map((s) => s.key)) : [];
  const records: SysctlRecord[] = [];
  const undo: { rec: SysctlRecord; entry: JournalEntry }[] = [];
  const restore = (): string[] => {
    const failed: string[] = [];
    for (const { rec, entry } of undo.reverse()) {
      try {
        writeFileSync(sysctlPath(rec.key), rec.before + '\n');
        journal.remove(entry);
      } catch (err) {
        failed.push(`${rec.key}: could not restore "${rec.before}" (${errnoCode(err) ?? String(err)}); run \`sockspike restore\``);
      }
    }
    undo.length = 0;
    return failed;
  };
  try {
    for (let i = 0; i < wanted.length; i++) {
      const { key, value } = wanted[i];
      const path = sysctlPath(key);
      if (scopes[i] === 'netns') {
        const ns = netns as string;
        const before = await inNetns(ns, 'cat', [path]);
        const w = await inNetns(ns, 'sh', ['-c', WRITE, 'sh', path, value]);
        if (!w.ok) throw new UserError(`--sysctl ${key}=${value}: the kernel refused it in the run's namespace (${w.err})`);
        const after = await inNetns(ns, 'cat', [path]);
        records.push({ key, value, scope: 'netns', before: before.out.trim(), after: after.out.trim() });
      } else {
        const before = readFileSync(path, 'utf8').trim();
        const entry: JournalEntry = { kind: 'sysctl', key, before, value, at: Date.now() };
        journal.add(entry);
        const rec: SysctlRecord = { key, value, scope: 'host', before, after: before };
        undo.push({ rec, entry });
        try {
          writeFileSync(path, value + '\n');
        } catch (err) {
          throw new UserError(`--sysctl ${key}=${value}: the kernel refused it (${errnoCode(err) ?? String(err)})`);
        }
        rec.after = readFileSync(path, 'utf8').trim();
        records.push(rec);
      }
    }
  } catch (err) {
    restore();
    throw err;
  }
  return { records, restoredFirst, restore };
}

/** Where each key lives: the namespace when it has its own copy there, else the host. */
async function classify(wanted: { key: string }[], netns: string | null): Promise<('netns' | 'host')[]> {
  const inNs = new Array<boolean>(wanted.length).fill(false);
  const candidates = wanted.map((w, i) => ({ i, path: sysctlPath(w.key) })).filter(({ i }) => mayBePerNetns(wanted[i].key));
  if (netns !== null && candidates.length > 0) {
    const r = await inNetns(netns, 'sh', ['-c', EXISTS, 'sh', ...candidates.map((c) => c.path)]);
    const flags = r.out.trim().split('\n');
    candidates.forEach((c, k) => (inNs[c.i] = flags[k] === '1'));
  }
  return wanted.map((w, i) => {
    if (inNs[i]) return 'netns';
    if (!existsSync(sysctlPath(w.key))) throw new UserError(`--sysctl ${w.key}: no such sysctl on this kernel`);
    return 'host';
  });
}
