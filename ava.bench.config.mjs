// `npm run test:bench`: smoke runs of the benchmarks (npm run bench --quick,
// the native reference against sockspike's client and server), kept out of
// `npm test` for their length; CI (.ci/run) runs them after it, one at a time.
import base from './ava.config.mjs';

export default { ...base, files: ['test/bench/**/*.test.ts'], concurrency: 1, serial: true, timeout: '4m' };
