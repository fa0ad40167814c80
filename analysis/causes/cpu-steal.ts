import { levelNear, outlierSpan, pctS, score, clamp01, type Cause, type CauseInput, type CauseModule } from './types.ts';

// The hypervisor ran other guests on our virtual CPUs (steal time).
//
// Scoring (see score()):
//   0.60  cpu.steal near the outliers (strength: steal / 0.15, at most 1)
//   0.40  more steal near the outliers than otherwise (strength: near / otherwise - 1, at most 1; 1 when otherwise 0)
// Required: steal >= 0.03 near the outliers and at least 1.5 x otherwise.

export const cpuSteal: CauseModule = {
  id: 'cpu-steal',
  title: 'CPU steal time (the hypervisor ran someone else)',
  needs: ['cpu.steal probe samples'],
  match(input: CauseInput): Cause | null {
    if (input.outliers.count === 0) return null;
    const st = levelNear(input, 'cpu.steal');
    if (st === null || st.nearRows === 0 || st.near < 0.03 || st.near < 1.5 * st.otherwise) return null;
    const ratio = st.otherwise > 0 ? st.near / st.otherwise : Infinity;
    const { confidence, evidence } = score([
      { weight: 0.6, strength: clamp01(st.near / 0.15), text: `steal time ${pctS(st.near)} of the CPUs in the ${st.nearRows} samples around the outliers (up to ${pctS(st.nearMax)})` },
      { weight: 0.4, strength: ratio === Infinity ? 1 : clamp01(ratio - 1), text: `against ${pctS(st.otherwise)} in the other ${st.otherRows} samples` },
    ]);
    return {
      id: this.id,
      confidence,
      summary: `The hypervisor took the CPUs away (steal ${pctS(st.near)} around the outliers): ${outlierSpan(input)} waited while other guests ran.`,
      evidence,
      tryNext: ['Run on dedicated or bigger instances (no CPU credits / overcommit), or ask the provider about noisy neighbours.', 'Compare with a run on bare metal or another instance type.'],
    };
  },
};
