// Helpers of the bring-your-own-server tests: is a process (or anything in
// its process group) still alive, and a Python 3 check.
import { readdirSync, readFileSync } from 'node:fs';
import { execaSync } from 'execa';

/** pid is alive and not a zombie. */
export function alive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const state = stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
    return state !== 'Z' && state !== 'X';
  } catch {
    return false;
  }
}

/** Live processes whose process group is pgid (the external server ran in a group of its own, led by its pid). */
export function groupMembers(pgid: number): number[] {
  const out: number[] = [];
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const stat = readFileSync(`/proc/${d}/stat`, 'utf8');
      const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      // fields after the name: state ppid pgrp ...
      if (Number(rest[2]) === pgid && rest[0] !== 'Z' && rest[0] !== 'X') out.push(Number(d));
    } catch {
      // gone
    }
  }
  return out;
}

/** SIGKILL a process group we started (test teardown), if anything of it is left. */
export function killGroup(pgid: number): void {
  if (groupMembers(pgid).length === 0) return;
  try {
    process.kill(-pgid, 'SIGKILL');
  } catch {
    // gone
  }
}

export function hasCommand(file: string, args: string[] = ['--version']): boolean {
  try {
    execaSync(file, args, { stdio: 'ignore', timeout: 10_000 });
    return true;
  } catch {
    return false;
  }
}
