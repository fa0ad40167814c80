#!/usr/bin/env node
// `npm run validate`: every scenario and a set of clean runs, and the confusion table (bench/validate.ts).
import { register } from 'tsx/esm/api';

register();
const { main } = await import('../bench/validate.ts');
const { UserError } = await import('../lib/errors.ts');
try {
  await main(process.argv.slice(2));
} catch (e) {
  if (e instanceof UserError) {
    process.stderr.write(`sockspike validate: ${e.message}\n`);
    process.exit(2);
  }
  throw e;
}
