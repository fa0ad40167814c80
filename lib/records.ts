// Binary layouts of transactions.bin and server.bin: fixed-size,
// little-endian records after a 16-byte header (8-byte magic, u32 record
// size, u32 exchanges). Documented in docs/run-directory.md; change the
// magic when the layout changes.

export const HEADER_BYTES = 16;
export const TXN_MAGIC = 'SSPKTXN1';
export const SRV_MAGIC = 'SSPKSRV1';

/** Offsets of a transaction record, which grows by 4 bytes per exchange. */
export interface TxnLayout {
  exchanges: number;
  size: number;
  intendedNs: number; // f64
  lateUs: number; // f32
  connectUs: number; // f32
  exchangeUs: number; // f32 x exchanges
  endUs: number; // f32
  localPort: number; // u16
  worker: number; // u16
  outcome: number; // u8
  flags: number; // u8
  tcpiState: number; // u8
  tcpiRetransmits: number; // u8
  bytesOut: number; // u32
  bytesIn: number; // u32
  tcpiTotalRetrans: number; // u32
  tcpiRttUs: number; // u32
  tcpiRtoUs: number; // u32
}

export const TXN_FLAG_TCPINFO = 1;
export const TXN_FLAG_REUSED = 2;

export function txnLayout(exchanges: number): TxnLayout {
  const e = 16 + 4 * exchanges;
  return {
    exchanges,
    intendedNs: 0,
    lateUs: 8,
    connectUs: 12,
    exchangeUs: 16,
    endUs: e,
    localPort: e + 4,
    worker: e + 6,
    outcome: e + 8,
    flags: e + 9,
    tcpiState: e + 10,
    tcpiRetransmits: e + 11,
    bytesOut: e + 12,
    bytesIn: e + 16,
    tcpiTotalRetrans: e + 20,
    tcpiRttUs: e + 24,
    tcpiRtoUs: e + 28,
    size: e + 32,
  };
}

/** Server connection record: 24 bytes. */
export const SRV = {
  size: 24,
  acceptNs: 0, // f64
  closeUs: 8, // f32
  clientPort: 12, // u16
  outcome: 14, // u8
  flags: 15, // u8
  bytesIn: 16, // u32
  bytesOut: 20, // u32
} as const;
export const SRV_FLAG_RESET = 1;

export function writeHeader(view: DataView, magic: string, recordSize: number, exchanges: number): void {
  for (let i = 0; i < 8; i++) view.setUint8(i, magic.charCodeAt(i));
  view.setUint32(8, recordSize, true);
  view.setUint32(12, exchanges, true);
}

export function readHeader(buf: Buffer): { magic: string; recordSize: number; exchanges: number } | null {
  if (buf.length < HEADER_BYTES) return null;
  return { magic: buf.toString('latin1', 0, 8), recordSize: buf.readUInt32LE(8), exchanges: buf.readUInt32LE(12) };
}
