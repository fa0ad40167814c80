#!/usr/bin/env node
// `npm run bench`: load TypeScript through tsx, then the benchmarks (bench/main.ts).
import { register } from 'tsx/esm/api';

register();
const { main } = await import('../bench/main.ts');
const { UserError } = await import('../lib/errors.ts');
try {
  await main(process.argv.slice(2));
} catch (e) {
  if (e instanceof UserError) {
    process.stderr.write(`sockspike bench: ${e.message}\n`);
    process.exit(2);
  }
  throw e;
}
