import test from 'ava';
import { chainOf, sharedChain, timerIdsOf } from '../analysis/phase-timers.ts';
import { normalPhaseMedians } from '../analysis/phases.ts';
import { allocTxnColumns, type TxnColumns } from '../analysis/read-run.ts';
import { timerConstants } from '../analysis/timers.ts';
import { OUTCOME_OK } from '../lib/types.ts';

// Timers per phase, on synthetic columns: a timer fires in the phase that
// waits for it, so an excess spread over phases is matched phase by phase.

const TIMERS = timerConstants({});
const MS = 1000;

/** Transaction i: connect 100 us, each exchange 50 us (+ jitter), close 30 us, plus extra per phase (us). */
function fill(c: TxnColumns, i: number, extra: { connect?: number; ex?: number[] } = {}): number {
  c.intendedNs[i] = i * 1e6;
  c.lateUs[i] = 0;
  let t = 100 + (extra.connect ?? 0);
  c.connectUs[i] = t;
  for (let e = 0; e < c.exchanges; e++) {
    t += 50 + (i % 7) + (extra.ex?.[e] ?? 0);
    c.exchangeUs[e][i] = t;
  }
  c.endUs[i] = t + 30;
  c.outcome[i] = OUTCOME_OK;
  c.flags[i] = 0;
  return c.endUs[i];
}

function run(exchanges: number, outliers: { connect?: number; ex?: number[] }[]): { c: TxnColumns; idx: number[]; excess: number[] } {
  const n = 200 + outliers.length;
  const c = allocTxnColumns(n, exchanges);
  let base = 0;
  for (let i = 0; i < 200; i++) base = fill(c, i);
  const idx: number[] = [];
  const excess: number[] = [];
  outliers.forEach((o, k) => {
    const total = fill(c, 200 + k, o);
    idx.push(200 + k);
    excess.push(total - base);
  });
  return { c, idx, excess };
}

const normal = Uint32Array.from({ length: 200 }, (_, i) => i);
const jitter = (k: number): number => ((k * 37) % 11) * 300; // 0..3 ms

test('a delayed ACK in each of three exchanges: "3 x delayed ACK", which no single timer matches', (t) => {
  const { c, idx, excess } = run(
    4,
    Array.from({ length: 30 }, (_, k) => ({ ex: [0, 40 * MS + jitter(k), 41 * MS, 40 * MS + jitter(k + 1)] })),
  );
  const chain = sharedChain(c, idx, excess, normalPhaseMedians(c, normal), TIMERS);
  t.truthy(chain);
  t.is(chain!.id, 'delayed-ack*3');
  t.regex(chain!.label, /^3 x delayed ACK \(40 ms\)$/);
  t.deepEqual(chain!.phases, ['exchange 2', 'exchange 3', 'exchange 4']);
  t.is(chain!.share, 1);
  t.deepEqual(timerIdsOf(chain!.id), ['delayed-ack']);
});

test('an RTO in one exchange and a delayed ACK in the next: both named, in order', (t) => {
  const { c, idx, excess } = run(
    2,
    Array.from({ length: 10 }, () => ({ ex: [200 * MS, 40 * MS] })),
  );
  const chain = sharedChain(c, idx, excess, normalPhaseMedians(c, normal), TIMERS);
  t.is(chain?.id, 'rto-1+delayed-ack');
  t.deepEqual(timerIdsOf(chain!.id), ['rto-1', 'delayed-ack']);
  t.regex(chain!.label, /data retransmission timeout #1 \(200 ms\) \+ delayed ACK \(40 ms\)/);
});

test('a SYN retransmission in connect and an RTO later; a timer small beside the rest is left to the whole-latency match', (t) => {
  const { c, idx, excess } = run(
    2,
    Array.from({ length: 10 }, () => ({ connect: 1000 * MS, ex: [0, 200 * MS] })),
  );
  t.is(sharedChain(c, idx, excess, normalPhaseMedians(c, normal), TIMERS)?.id, 'syn-retransmit-1+rto-1');
  // 1 s + 40 ms: the delayed ACK is under a tenth of the excess, and 1.04 s is SYN retransmission #1 as a whole
  const r = run(2, [{ connect: 1000 * MS, ex: [0, 40 * MS] }]);
  t.is(chainOf(r.c, r.idx[0], r.excess[0], normalPhaseMedians(r.c, normal), TIMERS, new Float64Array(8)), null);
});

test('no chain: one phase alone, a phase that matches no timer, or a remainder no timer explains', (t) => {
  const medians = (c: TxnColumns): ReturnType<typeof normalPhaseMedians> => normalPhaseMedians(c, normal);
  const scratch = new Float64Array(8);
  // one phase: a single timer, which the modes match on their own
  let r = run(2, [{ ex: [0, 40 * MS] }]);
  t.is(chainOf(r.c, r.idx[0], r.excess[0], medians(r.c), TIMERS, scratch), null);
  // 40 ms and 90 ms: the second phase is no timer
  r = run(2, [{ ex: [40 * MS, 90 * MS] }]);
  t.is(chainOf(r.c, r.idx[0], r.excess[0], medians(r.c), TIMERS, scratch), null);
  // scheduling jitter of a few ms in every phase is not a timer chain
  r = run(3, [{ ex: [6 * MS, 7 * MS, 8 * MS] }]);
  t.is(chainOf(r.c, r.idx[0], r.excess[0], medians(r.c), TIMERS, scratch), null);
});

test('a mode is named for a chain only when most of its outliers share it', (t) => {
  const outliers = [
    ...Array.from({ length: 5 }, () => ({ ex: [40 * MS, 40 * MS] })),
    ...Array.from({ length: 5 }, () => ({ ex: [50 * MS + 20 * MS, 10 * MS] })),
  ];
  const { c, idx, excess } = run(2, outliers);
  t.is(sharedChain(c, idx, excess, normalPhaseMedians(c, normal), TIMERS), null);
});
