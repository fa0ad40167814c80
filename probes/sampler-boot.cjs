// Entry of the probe process: loads sampler-process.ts through tsx's
// in-thread require hook instead of `--import tsx`, whose module-hooks
// worker thread (and its isolate's GC) costs ~0.3 % of a core for as long
// as the process lives, a third of the probes' budget.
require('tsx/cjs/api').register();
require('./sampler-process.ts');
