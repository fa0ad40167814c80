import { spawn, type ChildProcess } from 'node:child_process';
import { monoNs } from '../../lib/clock.ts';
import { formatNs } from '../../lib/format.ts';
import type { FaultRecord, FaultSpec } from '../../lib/types.ts';
import { inNetns } from './netns.ts';
import { systemBinary } from '../../lib/system-binary.ts';

const NFT = systemBinary('nft');

// Injected faults, each switched on and off at its window's edges (times
// after the workload's start) and recorded with when that really happened:
// - syn-drop / data-drop: an nftables table in the run's namespace that drops
//   that share of SYNs, or of segments carrying data, toward the server;
// - cpu-hog: N busy processes competing for the CPUs;
// - accept-delay: the built-in server waits before each accept(2).

export interface FaultContext {
  t0: bigint;
  netns: string | null;
  port: number;
  /** Tell the built-in server its accept delay (ns). */
  setAcceptDelay(ns: number): void;
  baseAcceptDelayNs: number;
  /** A process the run started, for run.json and the probes. */
  started(role: string, pid: number): void;
}

interface Active {
  rec: FaultRecord;
  index: number;
  on: boolean;
  hogs: ChildProcess[];
  /** Switching on and off are serialised per fault. */
  chain: Promise<void>;
}

// A hog leaves by itself if the run dies (its parent changes), so a killed
// run does not leave CPUs burning. The parent's pid comes as an argument,
// not from process.ppid at the hog's start: a run killed while the hog's
// Node is still loading would already have handed it to init, and the hog
// would spin forever.
const HOG = 'const p=Number(process.argv[1]);for(;;){for(let i=0;i<5e6;i++);if(process.ppid!==p)process.exit(0)}';

export class FaultRunner {
  private readonly active: Active[];
  private readonly timers: NodeJS.Timeout[] = [];
  private begun = false;

  constructor(
    specs: FaultSpec[],
    private readonly ctx: FaultContext,
  ) {
    this.active = specs.map((s, index) => ({ rec: { ...s, startNs: null, stopNs: null, detail: [] }, index, on: false, hogs: [], chain: Promise.resolve() }));
  }

  get records(): FaultRecord[] {
    return this.active.map((a) => a.rec);
  }

  /**
   * Before the load starts: switch on every fault whose window opens at 0,
   * so it is on from the first transaction (switching on takes a moment:
   * nft, processes to start).
   */
  async fromTheStart(): Promise<void> {
    await Promise.all(this.active.filter((a) => a.rec.fromNs === 0).map((a) => this.switchOn(a)));
  }

  /** The workload starts now: schedule every window (once, however many clients say so). */
  begin(): void {
    if (this.begun) return;
    this.begun = true;
    for (const a of this.active) {
      if (a.rec.fromNs > 0) this.at(a.rec.fromNs, () => this.switchOn(a));
      if (a.rec.toNs !== null) this.at(a.rec.toNs, () => this.switchOff(a));
    }
  }

  /** The workload ended: every fault still on goes off. */
  async end(): Promise<FaultRecord[]> {
    for (const t of this.timers) clearTimeout(t);
    await Promise.all(this.active.map((a) => this.switchOff(a)));
    return this.records;
  }

  private at(ns: number, f: () => Promise<void>): void {
    this.timers.push(setTimeout(() => void f(), ns / 1e6));
  }

  private switchOn(a: Active): Promise<void> {
    a.chain = a.chain.then(async () => {
      if (a.on || a.rec.stopNs !== null) return;
      try {
        await this.apply(a);
        a.on = true;
        a.rec.startNs = this.now();
      } catch (err) {
        a.rec.detail.push(`could not switch on: ${(err as Error).message}`);
      }
    });
    return a.chain;
  }

  private switchOff(a: Active): Promise<void> {
    a.chain = a.chain.then(async () => {
      if (!a.on) return;
      a.on = false;
      a.rec.stopNs = this.now();
      try {
        await this.remove(a);
      } catch (err) {
        a.rec.detail.push(`could not switch off cleanly: ${(err as Error).message}`);
      }
    });
    return a.chain;
  }

  private now(): number {
    return Number(monoNs() - this.ctx.t0);
  }

  private async apply(a: Active): Promise<void> {
    const f = a.rec;
    if (f.kind === 'syn-drop' || f.kind === 'data-drop') {
      const ns = this.ctx.netns;
      if (ns === null) throw new Error(`${f.kind} needs the run's network namespace`);
      const r = await inNetns(ns, NFT, ['-f', '-'], nftTable(tableName(a.index), f, this.ctx.port));
      if (!r.ok) throw new Error(`nft: ${r.err}`);
    } else if (f.kind === 'cpu-hog') {
      for (let i = 0; i < f.amount; i++) {
        const p = spawn(process.execPath, ['-e', HOG, String(process.pid)], { stdio: 'ignore' });
        p.on('error', () => {});
        a.hogs.push(p);
        if (p.pid !== undefined) this.ctx.started(`cpu-hog-${i + 1}`, p.pid);
      }
      a.rec.detail.push(`${f.amount} busy process${f.amount === 1 ? '' : 'es'}: pid ${a.hogs.map((p) => p.pid).join(', ')}`);
    } else this.ctx.setAcceptDelay(f.amount);
  }

  private async remove(a: Active): Promise<void> {
    const f = a.rec;
    if (f.kind === 'syn-drop' || f.kind === 'data-drop') {
      const ns = this.ctx.netns as string;
      const table = tableName(a.index);
      const list = await inNetns(ns, NFT, ['list', 'table', 'inet', table]);
      const m = /counter packets (\d+) bytes (\d+) drop/.exec(list.out);
      if (m !== null) a.rec.detail.push(`${m[1]} ${f.kind === 'syn-drop' ? 'SYNs' : 'data segments'} dropped (nft counter)`);
      else a.rec.detail.push(`drop counter not read (nft list: ${list.ok ? list.out.trim().split('\n').slice(0, 3).join(' ') : list.err})`);
      const del = await inNetns(ns, NFT, ['delete', 'table', 'inet', table]);
      if (!del.ok) throw new Error(`nft: ${del.err}`);
    } else if (f.kind === 'cpu-hog') {
      await Promise.all(a.hogs.map((p) => stopProcess(p)));
    } else {
      this.ctx.setAcceptDelay(this.ctx.baseAcceptDelayNs);
      a.rec.detail.push(`accept delay ${formatNs(f.amount)}, back to ${formatNs(this.ctx.baseAcceptDelayNs)} after`);
    }
  }
}

const tableName = (i: number): string => `sockspike_fault${i}`;

/**
 * The rule: numgen draws 0..9999 per packet, so P % is "< P x 100".
 * syn-drop matches SYN without ACK; data-drop matches any segment with a
 * byte after the TCP header (@ih: the inner header, i.e. the payload).
 */
export function nftTable(table: string, f: FaultSpec, port: number): string {
  const match = f.kind === 'syn-drop' ? 'tcp flags & (syn | ack) == syn' : '@ih,0,8 >= 0';
  const n = Math.round(f.amount * 100);
  return [
    `table inet ${table} {`,
    `  chain input {`,
    `    type filter hook input priority filter; policy accept;`,
    `    tcp dport ${port} ${match} numgen random mod 10000 < ${n} counter drop comment "sockspike ${f.text}"`,
    `  }`,
    `}`,
    '',
  ].join('\n');
}

async function stopProcess(p: ChildProcess): Promise<void> {
  if (p.exitCode !== null || p.signalCode !== null || p.pid === undefined) return;
  const gone = new Promise<void>((r) => p.once('exit', () => r()));
  p.kill('SIGKILL');
  await gone;
}
