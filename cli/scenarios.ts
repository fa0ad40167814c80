import type { Command } from 'commander';
import { SCENARIOS } from '../harness/scenarios.ts';

// sockspike scenarios: the presets `run --scenario NAME` starts from.

export function register(program: Command): void {
  program
    .command('scenarios')
    .description('list the named presets for `sockspike run --scenario NAME`')
    .option('--json', 'as JSON')
    .action((o: { json?: boolean }) => {
      if (o.json) return void process.stdout.write(JSON.stringify(SCENARIOS, null, 2) + '\n');
      const lines: string[] = [];
      for (const s of SCENARIOS) {
        lines.push(`${s.name}${s.cause === null ? '' : `  (reproduces ${s.cause})`}`);
        lines.push(`    ${s.description}`);
        lines.push(`    sockspike run --scenario ${s.name}   # = ${flagsText(s.flags)}`);
      }
      process.stdout.write(lines.join('\n') + '\n');
    });
}

function flagsText(flags: Record<string, string | boolean | string[]>): string {
  const out: string[] = [];
  const dash = (k: string): string => '--' + k.replace(/[A-Z]/g, (c) => '-' + c.toLowerCase());
  for (const [k, v] of Object.entries(flags)) {
    if (v === true) out.push(dash(k));
    else if (Array.isArray(v)) for (const x of v) out.push(`${dash(k)} ${/\s/.test(x) ? `'${x}'` : x}`);
    else if (v !== false) out.push(`${dash(k)} ${v}`);
  }
  return out.join(' ');
}
