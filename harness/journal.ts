import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { writeJson } from '../lib/rundir.ts';

// Changes a run makes outside its run directory (host sysctls, network
// namespaces), written down BEFORE they are made, so that `sockspike
// restore` can undo what a crashed or killed run left behind. One file per
// run process; /run is cleared at boot, as are the changes themselves.

export type JournalEntry =
  | { kind: 'sysctl'; key: string; before: string; value: string }
  | { kind: 'netns'; name: string };

export interface JournalFile {
  pid: number;
  startedAt: string;
  runDir: string;
  entries: JournalEntry[];
}

export const stateDir = (): string => process.env.SOCKSPIKE_STATE_DIR ?? '/run/sockspike';

export class Journal {
  private readonly path: string;
  private readonly file: JournalFile;

  constructor(runDir: string) {
    mkdirSync(stateDir(), { recursive: true });
    this.path = join(stateDir(), `run-${process.pid}.json`);
    this.file = { pid: process.pid, startedAt: new Date().toISOString(), runDir, entries: [] };
  }

  add(e: JournalEntry): void {
    this.file.entries.push(e);
    writeJson(this.path, this.file);
  }

  /** An undone change leaves the journal; an empty journal leaves the disk. */
  remove(e: JournalEntry): void {
    const i = this.file.entries.indexOf(e);
    if (i >= 0) this.file.entries.splice(i, 1);
    if (this.file.entries.length === 0) rmSync(this.path, { force: true });
    else writeJson(this.path, this.file);
  }
}

/** Journals of runs that are no longer running (their process is gone). */
export function orphanJournals(): { path: string; file: JournalFile }[] {
  const dir = stateDir();
  if (!existsSync(dir)) return [];
  const out: { path: string; file: JournalFile }[] = [];
  for (const name of readdirSync(dir)) {
    if (!/^run-\d+\.json$/.test(name)) continue;
    const path = join(dir, name);
    let file: JournalFile;
    try {
      file = JSON.parse(readFileSync(path, 'utf8')) as JournalFile;
    } catch {
      continue; // half-written by a run killed mid-write: writeJson renames, so this is a stray .tmp at worst
    }
    if (!isRunning(file.pid)) out.push({ path, file });
  }
  return out;
}

function isRunning(pid: number): boolean {
  try {
    const cmd = readFileSync(`/proc/${pid}/cmdline`, 'utf8');
    return cmd.includes('sockspike');
  } catch {
    return false;
  }
}
