import fs from 'node:fs';
import { endianness } from 'node:os';
import path from 'node:path';
// Importing the wrapper never throws: without the addon, native is null.
import * as nativeApi from '../lib/native.ts';
import type { Capture } from './capture.ts';
import type { Columns } from './columns.ts';
import { ProcFile } from './procfile.ts';

// Accept-queue depth and limit of the server's listening socket, cheaply:
// the listening fd is duplicated into this process once (pidfd_getfd), then
// each sample is one getsockopt(TCP_INFO), where for a LISTEN socket the
// kernel reports the queue length in tcpi_unacked and the backlog limit in
// tcpi_sacked. /proc/net/tcp, which walks every socket of the system, is
// read once at start only, to find the socket when given a port.
//
// The duplicate keeps the socket open: if the server exits, the port would
// stay in LISTEN (taking SYNs nobody accepts) until the probes stop. So the
// owner's /proc/PID/stat is checked about once a second, and the duplicate
// closed as soon as the owner is gone. A server that closes its listener
// but lives on keeps the port listening until the probes stop.

export type ListenerTarget = { pid: number; fd: number } | { port: number };

type Addon = Pick<NonNullable<typeof nativeApi.native>, 'tcpInfo' | 'pidfdGetfd' | 'close'>;

const TCP_LISTEN = 10;
// struct tcp_info (linux/tcp.h) as the capture thread reads it: eight u8
// fields, then u32 rto, ato, snd_mss, rcv_mss, unacked, sacked.
const TCP_INFO_BYTES = 64;
const TCPI_UNACKED_AT = 24;
const TCPI_SACKED_AT = 28;
const LE = endianness() === 'LE';

/** Inodes of LISTEN sockets on port, from /proc/net/tcp and tcp6. */
export function listeningInodes(port: number, procRoot = '/proc'): string[] {
  const inodes: string[] = [];
  for (const f of ['net/tcp', 'net/tcp6']) {
    let text: string;
    try {
      text = fs.readFileSync(path.join(procRoot, f), 'latin1');
    } catch {
      continue;
    }
    for (const line of text.split('\n').slice(1)) {
      // sl local_address rem_address st tx:rx tr:when retrnsmt uid timeout inode
      const cols = line.trim().split(/\s+/);
      if (cols.length < 10 || cols[3] !== '0A') continue;
      const hexPort = cols[1].split(':')[1];
      if (hexPort && parseInt(hexPort, 16) === port) inodes.push(cols[9]);
    }
  }
  return inodes;
}

/** The (pid, fd) holding socket:[inode], by one scan of /proc/*\/fd; null if none. */
export function findSocketOwner(inodes: string[], procRoot = '/proc'): { pid: number; fd: number } | null {
  const wanted = new Set(inodes.map((i) => `socket:[${i}]`));
  let pids: string[];
  try {
    pids = fs.readdirSync(procRoot).filter((d) => /^\d+$/.test(d));
  } catch {
    return null;
  }
  for (const pid of pids) {
    if (Number(pid) === process.pid) continue;
    const dir = path.join(procRoot, pid, 'fd');
    let fds: string[];
    try {
      fds = fs.readdirSync(dir);
    } catch {
      continue; // gone, or not ours to look at
    }
    for (const fd of fds) {
      try {
        if (wanted.has(fs.readlinkSync(path.join(dir, fd)))) return { pid: Number(pid), fd: Number(fd) };
      } catch {
        // closed meanwhile
      }
    }
  }
  return null;
}

export class ListenQueueProbe {
  readonly pid: number;
  readonly fd: number;
  readonly port: number | null;
  private readonly addon: Addon;
  private readonly localFd: number;
  private readonly info: Uint32Array;
  private readonly unacked: number;
  private readonly sacked: number;
  private depthCol = -1;
  private limitCol = -1;
  private owner: ProcFile | null = null;
  private countdown = 0;
  /** Under a capture thread: its getsockopt of this sample (struct tcp_info as the kernel wrote it), 1 read, 2 failed, 0 none. */
  private fedInfo: Buffer | null = null;
  private fedState = 0;
  private captured: { remove(): void } | null = null;
  /** Samples between checks that the owner still lives. */
  checkEvery = 50;
  /** Set once the owner has gone and the duplicate was closed. */
  gone: string | null = null;

  private constructor(addon: Addon, pid: number, fd: number, port: number | null, localFd: number, idx: { unacked: number; sacked: number; length: number }) {
    this.addon = addon;
    this.pid = pid;
    this.fd = fd;
    this.port = port;
    this.localFd = localFd;
    this.info = new Uint32Array(idx.length);
    this.unacked = idx.unacked;
    this.sacked = idx.sacked;
  }

  /** Set up the probe, or say in one line why it cannot run. */
  static async open(target: ListenerTarget, procRoot = '/proc'): Promise<ListenQueueProbe | string> {
    const addon = nativeApi.native;
    if (!addon) return nativeApi.nativeUnavailable ?? 'native addon unavailable';
    let pid: number;
    let fd: number;
    let port: number | null = null;
    if ('port' in target) {
      port = target.port;
      const inodes = listeningInodes(target.port, procRoot);
      if (inodes.length === 0) return `no socket listening on port ${target.port} (in this network namespace)`;
      const owner = findSocketOwner(inodes, procRoot);
      if (!owner) return `the socket listening on port ${target.port} belongs to no process we can see`;
      ({ pid, fd } = owner);
    } else {
      ({ pid, fd } = target);
    }
    let localFd: number;
    try {
      localFd = addon.pidfdGetfd(pid, fd);
    } catch (err) {
      const code = (err as { code?: string }).code ?? (err instanceof Error ? err.message : String(err));
      return `cannot duplicate fd ${fd} of pid ${pid} (pidfd_getfd: ${code})`;
    }
    const probe = new ListenQueueProbe(addon, pid, fd, port, localFd, {
      unacked: nativeApi.TCPI.UNACKED,
      sacked: nativeApi.TCPI.SACKED,
      length: nativeApi.TCPI_LENGTH,
    });
    if (!addon.tcpInfo(localFd, probe.info) || probe.info[nativeApi.TCPI.STATE] !== TCP_LISTEN) {
      probe.close();
      return `fd ${fd} of pid ${pid} is not a listening TCP socket`;
    }
    try {
      probe.owner = new ProcFile(path.join(procRoot, String(pid), 'stat'), 1024);
    } catch {
      // cannot watch the owner: keep the duplicate until stop
    }
    return probe;
  }

  /** Have the capture thread read the queue at each sample's time (fed before sample()). */
  captureWith(capture: Capture): void {
    if (this.closed) return;
    this.captured = capture.addTcpInfo(this.localFd, TCP_INFO_BYTES, (info, ok) => {
      this.fedInfo = info;
      this.fedState = info !== null ? 1 : ok ? 0 : 2;
    });
  }

  register(columns: Columns, row: number): void {
    this.depthCol = columns.ensure({ name: 'listen.depth', kind: 'gauge', unit: 'count', source: 'listen' }, row);
    this.limitCol = columns.ensure({ name: 'listen.limit', kind: 'gauge', unit: 'count', source: 'listen' }, row);
  }

  sample(columns: Columns): boolean {
    if (this.gone === null && this.owner && --this.countdown <= 0) {
      this.countdown = this.checkEvery;
      if (!this.ownerAlive()) {
        this.gone = `pid ${this.pid} (owner of the listening socket) exited`;
        this.close();
      }
    }
    const fed = this.fedState;
    this.fedState = 0;
    if (fed === 1 && this.gone === null) {
      const info = this.fedInfo as Buffer;
      columns.set(this.depthCol, LE ? info.readUInt32LE(TCPI_UNACKED_AT) : info.readUInt32BE(TCPI_UNACKED_AT));
      columns.set(this.limitCol, LE ? info.readUInt32LE(TCPI_SACKED_AT) : info.readUInt32BE(TCPI_SACKED_AT));
      return true;
    }
    if (this.gone !== null || fed === 2 || !this.addon.tcpInfo(this.localFd, this.info)) {
      columns.curOk[this.depthCol] = 0;
      columns.curOk[this.limitCol] = 0;
      return false;
    }
    columns.set(this.depthCol, this.info[this.unacked]);
    columns.set(this.limitCol, this.info[this.sacked]);
    return true;
  }

  private ownerAlive(): boolean {
    const f = this.owner as ProcFile;
    try {
      const n = f.read();
      const close = f.buf.lastIndexOf(41, n - 1);
      const state = close > 0 ? f.buf[close + 2] : 0;
      return state !== 90 && state !== 88; // Z, X
    } catch {
      return false;
    }
  }

  private closed = false;

  close(): void {
    this.owner?.close();
    if (this.closed) return;
    this.closed = true;
    this.captured?.remove();
    this.captured = null;
    try {
      this.addon.close(this.localFd);
    } catch {
      // already closed
    }
  }
}
