#!/usr/bin/env node
// Entry point: the compiled CLI (dist/, built by `npm install` or `npm run build`).
import { existsSync } from 'node:fs';

const main = new URL('../dist/cli/main.js', import.meta.url);
if (!existsSync(main)) {
  process.stderr.write('sockspike: this checkout is not built (dist/ is missing); run `npm install` (or `npm run build`) first\n');
  process.exit(2);
}
await import(main.href);
