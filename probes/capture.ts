import { CAPTURE_NOT_READ, native, nativeUnavailable, type CaptureHandle, type NativeAddon } from '../lib/native.ts';
import type { ProcFile } from './procfile.ts';

// The probe's reads done by a C thread of the addon (native/capture.c) on
// the sample schedule, into a ring of slots; the probe process's JS wakes a
// few times a second and parses the slots written since (sampler-process.ts).
// Per slot each registered file is fed the thread's bytes (ProcFile.feed),
// so the parsers see a read made at the slot's time, as if made then.

/** How many slots the ring holds: about this long at the interval, so the JS side may lag that much. */
const RING_NS = 1.5e9;
const MIN_SLOTS = 16;
const MAX_SLOTS = 160;
/** Bytes per slot for a file: twice what it held at start, whole pages, at least one. */
const capFor = (bytes: number): number => Math.max(4096, Math.ceil((bytes * 2) / 4096) * 4096);
/** Bytes of a process name in a walk (TASK_COMM_LEN). */
const WALK_COMM = 16;

interface Entry {
  index: number;
  /** First slot (sequence number) the thread read this entry in. */
  fromSeq: number;
  views: Buffer[];
  lens: Int32Array;
  feed(e: Entry, slot: number, seq: number): void;
}

export class Capture {
  readonly slots: number;
  /** Slots consumed so far (the sequence number of the next slot to parse). */
  private seq = 0;
  private readonly ctl = new Int32Array(4);
  private walkOut: Float64Array | null = null;
  private walkNames: Uint8Array | null = null;
  private walksSeen = 0;
  private readonly meta: Float64Array;
  private handle: CaptureHandle | null;
  // an array, not a Set: walked for every slot parsed, without an iterator
  private entries: Entry[] = [];
  private readonly addon: NativeAddon;

  private constructor(addon: NativeAddon, intervalNs: number, firstSlotNs: number) {
    this.addon = addon;
    this.slots = Math.min(MAX_SLOTS, Math.max(MIN_SLOTS, Math.ceil(RING_NS / intervalNs)));
    this.meta = new Float64Array(this.slots * 3);
    this.handle = addon.captureStart(this.ctl, this.meta, intervalNs, firstSlotNs);
  }

  /** A capture thread whose first slot is at firstSlotNs (CLOCK_MONOTONIC); a reason when the addon is missing. */
  static start(intervalNs: number, firstSlotNs: number): Capture | string {
    if (native === null) return nativeUnavailable ?? 'native addon not loaded';
    return new Capture(native, intervalNs, firstSlotNs);
  }

  /** Slots written by the thread and not yet parsed. */
  get written(): number {
    return Atomics.load(this.ctl, 0) - this.seq;
  }

  /** Slots the thread did not take (late by more than half an interval, or the ring full). */
  get missed(): number {
    return Atomics.load(this.ctl, 2);
  }

  /** Read this file every Nth sample from the thread's next slot on. */
  addFile(file: ProcFile, every: number, bytesNow: number): void {
    const fd = file.descriptor;
    if (this.handle === null || fd < 0) return;
    const cap = capFor(bytesNow);
    const entry = this.add(0, fd, every, cap, (e, slot, seq) => {
      if (seq < e.fromSeq) {
        file.pending = true;
        file.feed(null, 0);
        return;
      }
      file.pending = false;
      const n = e.lens[slot];
      file.feed(n === CAPTURE_NOT_READ ? null : e.views[slot], n);
    });
    file.captured = { remove: () => this.remove(entry) };
  }

  /** getsockopt(TCP_INFO) of fd every sample; onSlot gets the slot's bytes (null: failed, or not read by the thread). */
  addTcpInfo(fd: number, bytes: number, onSlot: (info: Buffer | null, ok: boolean) => void): { remove(): void } {
    if (this.handle === null) return { remove: () => {} };
    const entry = this.add(1, fd, 1, bytes, (e, slot, seq) => {
      const n = e.lens[slot];
      if (seq < e.fromSeq || n === CAPTURE_NOT_READ) onSlot(null, true);
      else onSlot(n >= 0 ? e.views[slot] : null, n >= 0);
    });
    return { remove: () => this.remove(entry) };
  }

  /** Walk every process's stat (other-processes.ts) every N taken slots, at most max processes a walk. */
  walkEvery(everySlots: number, max: number): void {
    if (this.handle === null) return;
    this.walkOut = new Float64Array(2 * (2 + 2 * max));
    this.walkNames = new Uint8Array(2 * max * WALK_COMM);
    this.addon.captureWalk(this.handle, Math.max(1, Math.round(everySlots)), this.walkOut, this.walkNames);
  }

  /** The walk completed since the last call, if any: its time (CLOCK_MONOTONIC ns) and each process's pid, name and CPU ticks. */
  takeWalk(): { tNs: number; processes: Map<number, { comm: string; ticks: number }> } | null {
    const out = this.walkOut;
    const names = this.walkNames;
    const walks = Atomics.load(this.ctl, 3);
    if (out === null || names === null || walks === this.walksSeen) return null;
    this.walksSeen = walks;
    const max = names.length / 2 / WALK_COMM;
    const half = (walks - 1) & 1;
    const at = half * (2 + 2 * max);
    const n = out[at + 1];
    const processes = new Map<number, { comm: string; ticks: number }>();
    for (let i = 0; i < n; i++) {
      const from = (half * max + i) * WALK_COMM;
      let end = from;
      while (end < from + WALK_COMM && names[end] !== 0) end++;
      processes.set(out[at + 2 + 2 * i], { comm: Buffer.from(names.buffer, from, end - from).toString('latin1'), ticks: out[at + 3 + 2 * i] });
    }
    return { tNs: out[at], processes };
  }

  /** Feed every entry slot number `i` of the written ones (0 = the oldest not yet parsed); its times. */
  feed(i: number, out: { scheduledNs: number; tNs: number; readNs: number }): void {
    const seq = this.seq + i;
    const slot = seq % this.slots;
    const entries = this.entries;
    for (let k = 0; k < entries.length; k++) entries[k].feed(entries[k], slot, seq);
    out.scheduledNs = this.meta[slot * 3];
    out.tNs = this.meta[slot * 3 + 1];
    out.readNs = this.meta[slot * 3 + 2];
  }

  /** The first n written slots are parsed: the thread may reuse them. */
  release(n: number): void {
    this.seq += n;
    Atomics.store(this.ctl, 1, this.seq);
  }

  /** Stop the thread; the slots it wrote stay readable (written, feed, release). Idempotent. */
  stop(): void {
    if (this.handle === null) return;
    this.addon.captureStop(this.handle);
    this.handle = null;
  }

  /** No slot left to feed: files read directly from now on. */
  detach(): void {
    this.stop();
    this.entries = [];
  }

  private add(kind: 0 | 1, fd: number, every: number, cap: number, feed: (e: Entry, slot: number, seq: number) => void): Entry {
    const data = new Uint8Array(this.slots * cap);
    const lens = new Int32Array(this.slots);
    const views = Array.from({ length: this.slots }, (_, k) => Buffer.from(data.buffer, k * cap, cap));
    const handle = this.handle as CaptureHandle;
    const index = this.addon.captureAdd(handle, kind, fd, Math.max(1, Math.round(every)), data, lens);
    // captureAdd waited for any slot being read: the slots published so far
    // are without the entry, the next ones (perhaps already one) with it
    const entry: Entry = { index, fromSeq: Atomics.load(this.ctl, 0), views, lens, feed };
    this.entries.push(entry);
    return entry;
  }

  private remove(entry: Entry): void {
    const k = this.entries.indexOf(entry);
    if (k < 0) return;
    this.entries.splice(k, 1);
    if (this.handle !== null) this.addon.captureRemove(this.handle, entry.index);
  }
}
