// Small Markdown helpers: tables that read well as plain text too.

export function table(head: string[], rows: (string | number)[][], align?: ('l' | 'r')[]): string {
  const cells = [head, ...rows.map((r) => r.map(String))];
  const width = head.map((_, k) => Math.max(3, ...cells.map((r) => (r[k] ?? '').length)));
  const a = align ?? head.map((_, k) => (k === 0 ? 'l' : 'r'));
  const line = (r: string[]): string => '| ' + r.map((v, k) => (a[k] === 'r' ? v.padStart(width[k]) : v.padEnd(width[k]))).join(' | ') + ' |';
  const rule = '| ' + width.map((w, k) => (a[k] === 'r' ? '-'.repeat(w - 1) + ':' : '-'.repeat(w))).join(' | ') + ' |';
  return [line(cells[0]), rule, ...cells.slice(1).map(line)].join('\n');
}

export const code = (text: string, lang = ''): string => '```' + lang + '\n' + text.replace(/\n$/, '') + '\n```';
