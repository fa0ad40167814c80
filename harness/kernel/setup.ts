import { execa } from 'execa';
import { UserError } from '../../lib/errors.ts';
import { requireSystemBinary } from '../../lib/system-binary.ts';
import type { RunConfig, SysctlRecord } from '../../lib/types.ts';
import { needsNetns } from './fault-spec.ts';
import { Journal, type JournalEntry } from './journal.ts';
import { addNetns, copyHostSysctls, deleteNetns, newNetnsName } from './netns.ts';
import { applySysctls, type AppliedSysctls } from './sysctls.ts';

// The kernel side of a run, before its processes start and after they end:
// the run's own namespace and the sysctls. Every change is undone on every
// exit path; host changes and namespaces are journalled first (journal.ts).

export class KernelSetup {
  netns: string | null = null;
  /** The namespace prepare() makes (named up front, so the kernel-event probe can start before it exists). */
  readonly plannedNetns: string | null;
  sysctls: SysctlRecord[] = [];
  /** Host changes of dead runs undone before this run made its own, one line each. */
  restoredFirst: string[] = [];
  /** Per-namespace sysctls copied from the host into the run's namespace. */
  copiedSysctls = 0;
  private journal: Journal | null = null;
  private nsEntry: JournalEntry | null = null;
  private applied: AppliedSysctls | null = null;

  constructor(
    private readonly cfg: RunConfig,
    private readonly runDir: string,
  ) {
    this.plannedNetns = cfg.netns ? newNetnsName() : null;
  }

  async prepare(): Promise<void> {
    const cfg = this.cfg;
    if (!cfg.netns && cfg.sysctls.length === 0) return;
    if (cfg.faults.some(needsNetns)) await requireNft();
    const journal = (this.journal = new Journal(this.runDir));
    try {
      if (this.plannedNetns !== null) {
        const name = this.plannedNetns;
        this.nsEntry = { kind: 'netns', name };
        journal.add(this.nsEntry);
        await addNetns(name);
        this.netns = name;
        // the host's settings, then the run's own --sysctl on top
        this.copiedSysctls = await copyHostSysctls(name);
      }
      if (cfg.sysctls.length > 0) {
        this.applied = await applySysctls(cfg.sysctls, this.netns, cfg.hostSysctl, journal);
        this.sysctls = this.applied.records;
        this.restoredFirst = this.applied.restoredFirst;
      }
    } catch (err) {
      await this.teardown();
      throw err;
    }
  }

  /** Host sysctls back, namespace (and its nft rules, its sysctls) gone; lines for what failed. */
  async teardown(): Promise<string[]> {
    const problems = this.applied?.restore() ?? [];
    this.applied = null;
    if (this.nsEntry !== null && this.nsEntry.kind === 'netns') {
      await deleteNetns(this.nsEntry.name);
      this.journal?.remove(this.nsEntry);
      this.nsEntry = null;
    }
    return problems;
  }
}

async function requireNft(): Promise<void> {
  const r = await execa(requireSystemBinary('nft', '--fault syn-drop/data-drop'), ['--version'], { reject: false, timeout: 5000 });
  if (r.failed) throw new UserError('--fault syn-drop/data-drop need nftables (the nft command did not run): apt-get install nftables');
}
