import { existsSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { UserError } from '../lib/errors.ts';
import { HEADER_BYTES, readHeader, SRV, SRV_MAGIC, TXN_MAGIC, txnLayout } from '../lib/records.ts';
import { FILES, SCHEMA_VERSION, type RunManifest } from '../lib/run-files.ts';

// Read a run directory back: the manifest, and the binary records as
// columns (typed arrays), so a million transactions cost a few arrays, not
// a million objects.

export function readManifest(dir: string): RunManifest {
  const path = join(dir, FILES.manifest);
  if (!existsSync(path)) throw new UserError(`${dir} is not a run directory (no ${FILES.manifest})`);
  let m: RunManifest;
  try {
    m = JSON.parse(readFileSync(path, 'utf8')) as RunManifest;
  } catch {
    throw new UserError(`corrupt run directory: ${path} is not valid JSON`);
  }
  if (m.tool !== 'sockspike' || typeof m.schemaVersion !== 'number') throw new UserError(`corrupt run directory: ${path} is not a sockspike manifest`);
  if (m.schemaVersion > SCHEMA_VERSION)
    throw new UserError(`${path} has schema version ${m.schemaVersion}; this sockspike reads up to ${SCHEMA_VERSION}: upgrade sockspike`);
  return m;
}

export interface TxnColumns {
  n: number;
  exchanges: number;
  intendedNs: Float64Array;
  lateUs: Float32Array;
  connectUs: Float32Array;
  /** One array per exchange. */
  exchangeUs: Float32Array[];
  endUs: Float32Array;
  localPort: Uint16Array;
  worker: Uint16Array;
  outcome: Uint8Array;
  flags: Uint8Array;
  bytesOut: Uint32Array;
  bytesIn: Uint32Array;
  tcpiState: Uint8Array;
  tcpiRetransmits: Uint8Array;
  tcpiTotalRetrans: Uint32Array;
  tcpiRttUs: Uint32Array;
  tcpiRtoUs: Uint32Array;
  /** Bytes at the end that did not make a whole record (a crash mid-write). */
  trailingBytes: number;
}

function load(dir: string, name: string, magic: string): { buf: Buffer; recordSize: number; exchanges: number } | null {
  const path = join(dir, name);
  if (!existsSync(path)) return null;
  const buf = readFileSync(path);
  const h = readHeader(buf);
  if (h === null || h.magic !== magic || h.recordSize === 0)
    throw new UserError(`corrupt run directory: ${path} does not start with a sockspike ${magic} header`);
  return { buf, recordSize: h.recordSize, exchanges: h.exchanges };
}

/** Zeroed columns for n transactions of E exchanges. */
export function allocTxnColumns(n: number, exchanges: number): TxnColumns {
  return {
    n,
    exchanges,
    intendedNs: new Float64Array(n),
    lateUs: new Float32Array(n),
    connectUs: new Float32Array(n),
    exchangeUs: Array.from({ length: exchanges }, () => new Float32Array(n)),
    endUs: new Float32Array(n),
    localPort: new Uint16Array(n),
    worker: new Uint16Array(n),
    outcome: new Uint8Array(n),
    flags: new Uint8Array(n),
    bytesOut: new Uint32Array(n),
    bytesIn: new Uint32Array(n),
    tcpiState: new Uint8Array(n),
    tcpiRetransmits: new Uint8Array(n),
    tcpiTotalRetrans: new Uint32Array(n),
    tcpiRttUs: new Uint32Array(n),
    tcpiRtoUs: new Uint32Array(n),
    trailingBytes: 0,
  };
}

/**
 * The columns last read, by the files' identity (path, size, mtime, inode):
 * the analysis and then the report's pictures and text read the same run in
 * one process, and a million records are read once. Readers never write
 * into the columns.
 */
const lastRead = new Map<'txn' | 'srv', { key: string; value: unknown }>();

function fileKey(dir: string, names: string[]): string {
  return names
    .map((f) => {
      const p = join(dir, f);
      try {
        const st = statSync(p);
        return `${p}:${st.size}:${st.mtimeMs}:${st.ino}`;
      } catch {
        return `${p}:-`;
      }
    })
    .join('|');
}

function cached<T>(slot: 'txn' | 'srv', key: string, read: () => T): T {
  const hit = lastRead.get(slot);
  if (hit !== undefined && hit.key === key) return hit.value as T;
  const value = read();
  lastRead.set(slot, { key, value });
  return value;
}

export function readTransactions(dir: string, manifest: RunManifest): TxnColumns {
  const files = manifest.files.transactions;
  return cached('txn', `${manifest.config.exchanges}|${fileKey(dir, files)}`, () => readTransactionsNow(dir, manifest));
}

function readTransactionsNow(dir: string, manifest: RunManifest): TxnColumns {
  const files = manifest.files.transactions;
  const parts = files.map((f) => load(dir, f, TXN_MAGIC)).filter((p) => p !== null);
  const exchanges = parts[0]?.exchanges ?? manifest.config.exchanges;
  const L = txnLayout(exchanges);
  let n = 0;
  let trailingBytes = 0;
  for (const p of parts) {
    if (p.recordSize !== L.size || p.exchanges !== exchanges)
      throw new UserError(`corrupt run directory: transaction files of ${dir} disagree on their record layout`);
    n += Math.floor((p.buf.length - HEADER_BYTES) / L.size);
    trailingBytes += (p.buf.length - HEADER_BYTES) % L.size;
  }
  const c = allocTxnColumns(n, exchanges);
  c.trailingBytes = trailingBytes;
  let i = 0;
  for (const p of parts) {
    const v = new DataView(p.buf.buffer, p.buf.byteOffset, p.buf.length);
    const count = Math.floor((p.buf.length - HEADER_BYTES) / L.size);
    for (let k = 0; k < count; k++, i++) {
      const at = HEADER_BYTES + k * L.size;
      c.intendedNs[i] = v.getFloat64(at, true);
      c.lateUs[i] = v.getFloat32(at + L.lateUs, true);
      c.connectUs[i] = v.getFloat32(at + L.connectUs, true);
      for (let e = 0; e < exchanges; e++) c.exchangeUs[e][i] = v.getFloat32(at + L.exchangeUs + 4 * e, true);
      c.endUs[i] = v.getFloat32(at + L.endUs, true);
      c.localPort[i] = v.getUint16(at + L.localPort, true);
      c.worker[i] = v.getUint16(at + L.worker, true);
      c.outcome[i] = v.getUint8(at + L.outcome);
      c.flags[i] = v.getUint8(at + L.flags);
      c.tcpiState[i] = v.getUint8(at + L.tcpiState);
      c.tcpiRetransmits[i] = v.getUint8(at + L.tcpiRetransmits);
      c.bytesOut[i] = v.getUint32(at + L.bytesOut, true);
      c.bytesIn[i] = v.getUint32(at + L.bytesIn, true);
      c.tcpiTotalRetrans[i] = v.getUint32(at + L.tcpiTotalRetrans, true);
      c.tcpiRttUs[i] = v.getUint32(at + L.tcpiRttUs, true);
      c.tcpiRtoUs[i] = v.getUint32(at + L.tcpiRtoUs, true);
    }
  }
  return c;
}

export interface ServerColumns {
  n: number;
  acceptNs: Float64Array;
  closeUs: Float32Array;
  clientPort: Uint16Array;
  outcome: Uint8Array;
  flags: Uint8Array;
  bytesIn: Uint32Array;
  bytesOut: Uint32Array;
}

/** Zeroed columns for n server connections. */
export function allocServerColumns(n: number): ServerColumns {
  return {
    n,
    acceptNs: new Float64Array(n),
    closeUs: new Float32Array(n),
    clientPort: new Uint16Array(n),
    outcome: new Uint8Array(n),
    flags: new Uint8Array(n),
    bytesIn: new Uint32Array(n),
    bytesOut: new Uint32Array(n),
  };
}

/** null when the run had no built-in server (or it recorded nothing). */
export function readServer(dir: string, manifest: RunManifest): ServerColumns | null {
  return cached('srv', fileKey(dir, manifest.files.server), () => readServerNow(dir, manifest));
}

function readServerNow(dir: string, manifest: RunManifest): ServerColumns | null {
  const parts = manifest.files.server.map((f) => load(dir, f, SRV_MAGIC)).filter((p) => p !== null);
  if (parts.length === 0) return null;
  let n = 0;
  for (const p of parts) {
    if (p.recordSize !== SRV.size) throw new UserError(`corrupt run directory: server records of ${dir} have an unknown layout`);
    n += Math.floor((p.buf.length - HEADER_BYTES) / SRV.size);
  }
  const s = allocServerColumns(n);
  let i = 0;
  for (const p of parts) {
    const v = new DataView(p.buf.buffer, p.buf.byteOffset, p.buf.length);
    const count = Math.floor((p.buf.length - HEADER_BYTES) / SRV.size);
    for (let k = 0; k < count; k++, i++) {
      const at = HEADER_BYTES + k * SRV.size;
      s.acceptNs[i] = v.getFloat64(at + SRV.acceptNs, true);
      s.closeUs[i] = v.getFloat32(at + SRV.closeUs, true);
      s.clientPort[i] = v.getUint16(at + SRV.clientPort, true);
      s.outcome[i] = v.getUint8(at + SRV.outcome);
      s.flags[i] = v.getUint8(at + SRV.flags);
      s.bytesIn[i] = v.getUint32(at + SRV.bytesIn, true);
      s.bytesOut[i] = v.getUint32(at + SRV.bytesOut, true);
    }
  }
  return s;
}

/**
 * The load's start, ns since t0: the first transaction's intended start
 * (run.json `workload.firstStartNs`, else the earliest record; 0 when there
 * is neither, as in a probe-only run). Everything a person reads counts
 * time from here ("2.1 s into the load"); what came before it is start-up.
 * The run directory's own times stay ns since t0.
 */
export function loadStartNs(m: Pick<RunManifest, 'workload'>, c?: Pick<TxnColumns, 'n' | 'intendedNs'>): number {
  const w = m.workload?.firstStartNs;
  if (typeof w === 'number' && Number.isFinite(w)) return w;
  let lo = Infinity;
  if (c !== undefined) for (let i = 0; i < c.n; i++) if (c.intendedNs[i] < lo) lo = c.intendedNs[i];
  return Number.isFinite(lo) ? lo : 0;
}
