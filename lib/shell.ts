// Quote words for a POSIX shell, so a recorded command can be pasted back.
export const shellQuote = (w: string): string => (/^[\w@%+=:,./-]+$/.test(w) ? w : `'${w.replace(/'/g, `'\\''`)}'`);
export const shellJoin = (words: string[]): string => words.map(shellQuote).join(' ');
