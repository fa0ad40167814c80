#!/usr/bin/env node
// Entry point: load TypeScript through tsx, then the CLI.
import { register } from 'tsx/esm/api';

register();
await import('../cli/main.ts');
