// The main suite; test/e2e/ runs after it on its own (ava.e2e.config.mjs, test/suites.js).
export default {
  files: ['test/**/*.test.ts', '!test/e2e/**'],
  extensions: { ts: 'module' },
  nodeArguments: ['--import=tsx'],
  workerThreads: false,
  timeout: '2m',
  concurrency: 2,
};
