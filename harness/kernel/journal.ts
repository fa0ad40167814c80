import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { writeJson } from '../../lib/run-files.ts';

// Changes a run makes outside its run directory (host sysctls, network
// namespaces), written down BEFORE they are made, so that `sockspike
// restore` can undo what a crashed or killed run left behind. One file per
// run process; /run is cleared at boot, as are the changes themselves.

export type JournalEntry =
  /** `at`: Date.now() when journalled, to order changes across runs (absent in older journals). */
  { kind: 'sysctl'; key: string; before: string; value: string; at?: number } | { kind: 'netns'; name: string };

export interface JournalFile {
  pid: number;
  /** The process's start time (field 22 of /proc/PID/stat), so that a recycled pid is not taken for the run (absent in older journals). */
  startTicks?: string;
  startedAt: string;
  runDir: string;
  entries: JournalEntry[];
}

export interface JournalOnDisk {
  path: string;
  file: JournalFile;
  /** Its run's process is still running. */
  running: boolean;
}

export const stateDir = (): string => process.env.SOCKSPIKE_STATE_DIR ?? '/run/sockspike';

export class Journal {
  private readonly path: string;
  private readonly file: JournalFile;

  constructor(runDir: string) {
    mkdirSync(stateDir(), { recursive: true });
    this.path = join(stateDir(), `run-${process.pid}.json`);
    this.file = { pid: process.pid, startTicks: startTicks(process.pid) ?? undefined, startedAt: new Date().toISOString(), runDir, entries: [] };
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

/** Every journal on disk but this process's own, each with whether its run still runs. */
export function otherJournals(): JournalOnDisk[] {
  const dir = stateDir();
  if (!existsSync(dir)) return [];
  const out: JournalOnDisk[] = [];
  for (const name of readdirSync(dir)) {
    if (!/^run-\d+\.json$/.test(name) || name === `run-${process.pid}.json`) continue;
    const path = join(dir, name);
    let file: JournalFile;
    try {
      file = JSON.parse(readFileSync(path, 'utf8')) as JournalFile;
    } catch {
      continue; // half-written by a run killed mid-write: writeJson renames, so this is a stray .tmp at worst
    }
    out.push({ path, file, running: isRunning(file) });
  }
  return out;
}

/** Journals of runs that are no longer running (their process is gone). */
export const orphanJournals = (): JournalOnDisk[] => otherJournals().filter((j) => !j.running);

function startTicks(pid: number): string | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19] ?? null;
  } catch {
    return null;
  }
}

function isRunning(file: JournalFile): boolean {
  try {
    const cmd = readFileSync(`/proc/${file.pid}/cmdline`, 'utf8');
    if (!cmd.includes('sockspike')) return false;
  } catch {
    return false;
  }
  return file.startTicks === undefined || startTicks(file.pid) === file.startTicks;
}
