// Small Markdown helpers: tables that read well as plain text too, tables
// narrow enough for a code host's page, and folded blocks.

export function table(head: string[], rows: (string | number)[][], align?: ('l' | 'r')[]): string {
  const cells = [head, ...rows.map((r) => r.map(String))];
  const width = head.map((_, k) => Math.max(3, ...cells.map((r) => (r[k] ?? '').length)));
  const a = align ?? head.map((_, k) => (k === 0 ? 'l' : 'r'));
  const line = (r: string[]): string => '| ' + r.map((v, k) => (a[k] === 'r' ? v.padStart(width[k]) : v.padEnd(width[k]))).join(' | ') + ' |';
  const rule = '| ' + width.map((w, k) => (a[k] === 'r' ? '-'.repeat(w - 1) + ':' : '-'.repeat(w))).join(' | ') + ' |';
  return [line(cells[0]), rule, ...cells.slice(1).map(line)].join('\n');
}

export const code = (text: string, lang = ''): string => '```' + lang + '\n' + text.replace(/\n$/, '') + '\n```';

/**
 * A folded block: GitHub (and most code hosts) show the summary and render
 * the Markdown inside when it is opened; the blank lines around the body are
 * what makes them render it as Markdown rather than as text.
 */
export function details(summary: string, body: string): string {
  return ['<details>', `<summary>${summary}</summary>`, '', body.replace(/\n+$/, ''), '', '</details>'].join('\n');
}

/**
 * The width a column takes on a code host's page, px, estimated from its
 * longest cell: ~9 px a character at GitHub's 16 px body font (bold headers
 * and digits included), plus the cell's 13 px padding on each side and its
 * border. Cells wrap at spaces, so a long cell with spaces counts as its
 * longest word or as about three lines, whichever is wider.
 */
function columnPx(cells: string[]): number {
  const chars = (s: string): number => {
    const plain = s.replace(/`/g, '');
    const word = Math.max(0, ...plain.split(' ').map((w) => w.length));
    return Math.max(word, Math.min(plain.length, Math.ceil(plain.length / 3)));
  };
  return 9 * Math.max(3, ...cells.map(chars)) + 27;
}

/** What a code host's page gives a table at ~1000 px of window, px (GitHub: about 900, less its margins). */
export const PAGE_PX = 860;

/**
 * A table that would be wider than the page, split into several that share
 * the first `keep` columns (e.g. a marker and the time): the other columns
 * go, in order, into the first table that still has room. One table when it
 * fits.
 */
export function fitTable(head: string[], rows: (string | number)[][], align?: ('l' | 'r')[], keep = 1, pagePx = PAGE_PX): string[] {
  const a = align ?? head.map((_, k) => (k === 0 ? 'l' : 'r'));
  const px = head.map((h, k) => columnPx([h, ...rows.map((r) => String(r[k] ?? ''))]));
  const kept = px.slice(0, keep).reduce((x, y) => x + y, 0);
  const parts: number[][] = [];
  let cur: number[] = [];
  let used = kept;
  for (let k = keep; k < head.length; k++) {
    if (cur.length > 0 && used + px[k] > pagePx) {
      parts.push(cur);
      cur = [];
      used = kept;
    }
    cur.push(k);
    used += px[k];
  }
  if (cur.length > 0 || parts.length === 0) parts.push(cur);
  return parts.map((p) => {
    const cols = [...Array.from({ length: Math.min(keep, head.length) }, (_, k) => k), ...p];
    return table(
      cols.map((k) => head[k]),
      rows.map((r) => cols.map((k) => r[k] ?? '')),
      cols.map((k) => a[k]),
    );
  });
}
