// The fast pass: tests that start no process of their own (parsers,
// analysis and reports on fixtures), run side by side. test/runs/ and
// test/e2e/ run after it, one test at a time (test/suites.js).
export default {
  files: ['test/*.test.ts'],
  extensions: { ts: 'module' },
  nodeArguments: ['--import=tsx'],
  workerThreads: false,
  timeout: '2m',
  concurrency: 2,
};
