// Tests that start processes (sockspike runs, servers, namespaces,
// bpftrace): one test at a time, so that on two CPUs no test's processes
// compete with another's for them, and a time bound in a test is about what
// it tests, not about what runs beside it.
import base from './ava.config.mjs';

export default { ...base, files: ['test/runs/**/*.test.ts'], concurrency: 1, serial: true, timeout: '4m' };
