import { RecordFile } from '../../lib/record-file.ts';
import { TXN_FLAG_REUSED, TXN_FLAG_TCPINFO, TXN_MAGIC, txnLayout, type TxnLayout } from '../../lib/records.ts';
import { TCPI } from '../../lib/native.ts';

/** The fields of one transaction in flight; one per worker, reused. Times: ns since t0. */
export interface TxnState {
  intendedNs: number;
  startNs: number;
  connectNs: number;
  exchangeNs: Float64Array;
  endNs: number;
  localPort: number;
  worker: number;
  outcome: number;
  reused: boolean;
  bytesOut: number;
  bytesIn: number;
  tcpInfoValid: boolean;
  tcpInfo: Uint32Array;
}

/** Writes TxnState into transactions.bin: a handful of stores, no allocation. Every byte of the record is written (no zeroing pass). */
export class TxnRecorder {
  private readonly file: RecordFile;
  private readonly L: TxnLayout;

  constructor(path: string, exchanges: number) {
    this.L = txnLayout(exchanges);
    this.file = new RecordFile(path, TXN_MAGIC, this.L.size, exchanges);
  }

  get count(): number {
    return this.file.count;
  }

  record(t: TxnState): void {
    const L = this.L;
    const v = this.file.view;
    const at = this.file.next(false);
    const start = t.startNs;
    v.setFloat64(at, t.intendedNs, true);
    v.setFloat32(at + L.lateUs, (start - t.intendedNs) / 1e3, true);
    v.setFloat32(at + L.connectUs, (t.connectNs - start) / 1e3, true);
    for (let i = 0; i < L.exchanges; i++) v.setFloat32(at + L.exchangeUs + 4 * i, (t.exchangeNs[i] - start) / 1e3, true);
    v.setFloat32(at + L.endUs, (t.endNs - start) / 1e3, true);
    v.setUint16(at + L.localPort, t.localPort, true);
    v.setUint16(at + L.worker, t.worker, true);
    v.setUint8(at + L.outcome, t.outcome);
    v.setUint8(at + L.flags, (t.tcpInfoValid ? TXN_FLAG_TCPINFO : 0) | (t.reused ? TXN_FLAG_REUSED : 0));
    v.setUint32(at + L.bytesOut, t.bytesOut, true);
    v.setUint32(at + L.bytesIn, t.bytesIn, true);
    if (t.tcpInfoValid) {
      const ti = t.tcpInfo;
      v.setUint8(at + L.tcpiState, ti[TCPI.STATE]);
      v.setUint8(at + L.tcpiRetransmits, ti[TCPI.RETRANSMITS]);
      v.setUint32(at + L.tcpiTotalRetrans, ti[TCPI.TOTAL_RETRANS], true);
      v.setUint32(at + L.tcpiRttUs, ti[TCPI.RTT_US], true);
      v.setUint32(at + L.tcpiRtoUs, ti[TCPI.RTO_US], true);
    } else {
      v.setUint16(at + L.tcpiState, 0, true); // tcpiState, tcpiRetransmits
      v.setUint32(at + L.tcpiTotalRetrans, 0, true);
      v.setUint32(at + L.tcpiRttUs, 0, true);
      v.setUint32(at + L.tcpiRtoUs, 0, true);
    }
    this.file.commit();
  }

  close(): void {
    this.file.close();
  }
}
