// End-to-end tests that judge a whole diagnosis (scenarios, faults): they run
// last, one test at a time, so that no other test's load lands on the two
// CPUs while they decide what a run's cause was.
import base from './ava.config.mjs';

export default { ...base, files: ['test/e2e/**/*.test.ts'], concurrency: 1, serial: true, timeout: '4m' };
