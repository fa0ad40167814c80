// The report as a code host shows it: report.md rendered as GitHub-flavoured
// Markdown (marked) with a small GitHub-like stylesheet, opened in headless
// Chromium at 1000 px of window. On the first screen nothing scrolls sideways,
// no table is wider than the page (folded ones opened), and the timeline is
// shown at a readable size. The screenshot is saved under test-output/
// (git-ignored) for a person to look at. Skipped, with the reason, where
// /usr/bin/chromium is missing (Debian package chromium, .ci/apt-packages.txt).
import test, { type ExecutionContext } from 'ava';
import { execa } from 'execa';
import { marked } from 'marked';
import { copyFileSync, cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ROOT, sockspike, tempDir } from '../helpers/cli.ts';

const CHROMIUM = '/usr/bin/chromium';
const WIDTH = 1000;
const SCREEN = 1400;
const OUTPUT = join(ROOT, 'test-output', 'report-screenshot');

// GitHub's Markdown look where it matters for width: body font and padding,
// tables as scrolling blocks of their content's width, images at most the
// column's width, code blocks that scroll.
const CSS = `
body { margin: 0; background: #fff; }
.markdown-body { box-sizing: border-box; max-width: 1012px; margin: 0 auto; padding: 32px;
  font: 16px/1.5 -apple-system, "Segoe UI", "Noto Sans", Helvetica, Arial, sans-serif; color: #1f2328; word-wrap: break-word; }
.markdown-body p, .markdown-body table, .markdown-body pre, .markdown-body ul, .markdown-body details { margin: 0 0 16px; }
.markdown-body h1, .markdown-body h2 { border-bottom: 1px solid #d1d9e0; padding-bottom: .3em; }
.markdown-body table { border-spacing: 0; border-collapse: collapse; display: block; width: max-content; max-width: 100%; overflow: auto; }
.markdown-body td, .markdown-body th { padding: 6px 13px; border: 1px solid #d1d9e0; }
.markdown-body tr:nth-child(2n) { background: #f6f8fa; }
.markdown-body img { max-width: 100%; box-sizing: content-box; }
.markdown-body code { font: 85% ui-monospace, SFMono-Regular, Menlo, Consolas, "Liberation Mono", monospace; background: #eff1f3; padding: .2em .4em; border-radius: 6px; white-space: break-spaces; }
.markdown-body pre { padding: 16px; overflow: auto; background: #f6f8fa; border-radius: 6px; line-height: 1.45; }
.markdown-body pre code { background: none; padding: 0; white-space: pre; font-size: 85%; }
.markdown-body details summary { cursor: pointer; }
`;

// Run in the page once it has loaded (images included): what sticks out
// sideways on the first screen as the page opens, then, every folded block
// opened, every table wider than its column. Written into the DOM for
// --dump-dom to carry out.
const MEASURE = `
addEventListener('load', () => {
  const scrolls = (e) => e.scrollWidth > e.clientWidth + 1 && getComputedStyle(e).overflowX !== 'visible';
  const name = (e) => e.tagName.toLowerCase() + ' at ' + Math.round(e.getBoundingClientRect().top + scrollY) + ' px: ' +
    e.scrollWidth + ' > ' + e.clientWidth + ' (' + (e.textContent || '').trim().slice(0, 60).replace(/\\s+/g, ' ') + ')';
  const all = () => [...document.querySelectorAll('.markdown-body *')];
  const firstScreen = all().filter((e) => e.getBoundingClientRect().top + scrollY < ${SCREEN} && scrolls(e)).map(name);
  const images = [...document.images].map((i) => { const r = i.getBoundingClientRect(); return { src: i.getAttribute('src'), width: r.width, height: r.height, top: r.top + scrollY }; });
  const page = { scrollWidth: document.documentElement.scrollWidth, clientWidth: document.documentElement.clientWidth };
  for (const d of document.querySelectorAll('details')) d.open = true;
  const wideTables = all().filter((e) => e.tagName === 'TABLE' && scrolls(e)).map(name);
  const widePre = all().filter((e) => e.tagName === 'PRE' && scrolls(e)).map(name);
  const out = document.createElement('pre');
  out.id = 'sockspike-measure';
  out.textContent = JSON.stringify({ page, firstScreen, images, wideTables, widePre });
  document.body.appendChild(out);
});`;

interface Measure {
  page: { scrollWidth: number; clientWidth: number };
  firstScreen: string[];
  images: { src: string; width: number; height: number; top: number }[];
  wideTables: string[];
  widePre: string[];
}

/** report.md as a code host would show it: an HTML page beside it (so its pictures load), with the measuring script or without. */
function writePage(runDir: string, measure: boolean): string {
  const md = readFileSync(join(runDir, 'report.md'), 'utf8');
  const body = marked.parse(md, { gfm: true, async: false });
  const html = `<!doctype html><html><head><meta charset="utf-8"><title>report.md</title><style>${CSS}</style></head>
<body><article class="markdown-body">${body}</article>${measure ? `<script>${MEASURE}</script>` : ''}</body></html>`;
  const file = join(runDir, measure ? 'report-measure.html' : 'report.html');
  writeFileSync(file, html);
  return file;
}

/** Headless Chromium on a page: a fresh, empty profile, nothing fetched from the network. */
async function chromium(t: ExecutionContext, args: string[]): Promise<string> {
  const profile = mkdtempSync(join(tmpdir(), 'sockspike-chromium-'));
  try {
    const r = await execa(
      CHROMIUM,
      [
        '--headless',
        '--no-sandbox',
        '--disable-gpu',
        '--disable-quic',
        '--no-first-run',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
        `--user-data-dir=${profile}`,
        `--window-size=${WIDTH},${SCREEN}`,
        ...args,
      ],
      { reject: false, timeout: 90_000, stdin: 'ignore' },
    );
    if (r.exitCode !== 0) t.log(`chromium exited ${r.exitCode}: ${String(r.stderr).split('\n').slice(-3).join(' / ')}`);
    return String(r.stdout);
  } finally {
    rmSync(profile, { recursive: true, force: true });
  }
}

/** Render, measure, screenshot and check one run directory's report. */
async function check(t: ExecutionContext, runDir: string, name: string): Promise<void> {
  const page = writePage(runDir, false);
  const dom = await chromium(t, ['--virtual-time-budget=10000', '--dump-dom', `file://${writePage(runDir, true)}`]);
  const found = /<pre id="sockspike-measure">([^<]*)<\/pre>/.exec(dom);
  if (found === null) return void t.fail(`no measurement in the page (${dom.length} bytes of DOM)`);
  const m = JSON.parse(
    found[1]
      .replace(/&quot;/g, '"')
      .replace(/&gt;/g, '>')
      .replace(/&lt;/g, '<')
      .replace(/&amp;/g, '&'),
  ) as Measure;
  // for a person: the page, its pictures and the screenshot, kept after the test
  const keep = join(OUTPUT, name);
  rmSync(keep, { recursive: true, force: true });
  mkdirSync(keep, { recursive: true });
  for (const f of readdirSync(runDir).filter((x) => /^report\.(md|html)$|\.(svg|png)$/.test(x))) copyFileSync(join(runDir, f), join(keep, f));
  const shot = join(keep, 'screenshot.png');
  await chromium(t, [`--screenshot=${shot}`, `file://${page}`]);
  t.true(existsSync(shot), 'chromium wrote the screenshot');
  t.log(`screenshot at ${WIDTH} px: ${shot} (the page: ${join(keep, 'report.html')})`);
  t.log(`page ${m.page.scrollWidth} px wide in a ${m.page.clientWidth} px viewport; images ${JSON.stringify(m.images)}`);
  if (m.widePre.length > 0) t.log(`code blocks that scroll sideways (allowed below the first screen): ${m.widePre.join('; ')}`);

  t.true(m.page.scrollWidth <= WIDTH && m.page.scrollWidth <= m.page.clientWidth, `the page scrolls sideways: ${JSON.stringify(m.page)}`);
  t.deepEqual(m.firstScreen, [], 'nothing on the first screen scrolls sideways');
  t.deepEqual(m.wideTables, [], 'no table is wider than the page');
  const timeline = m.images.find((i) => i.src === 'timeline.svg');
  t.truthy(timeline, 'the report shows the timeline');
  if (timeline === undefined) return;
  t.true(timeline.width >= 900, `timeline shown ${timeline.width} px wide`);
  t.true(timeline.height >= 300, `timeline shown ${timeline.height} px high`);
  t.true(timeline.top < SCREEN, `the timeline starts on the first screen (at ${timeline.top} px)`);
}

const missing = existsSync(CHROMIUM) ? null : `${CHROMIUM} not found (apt-get install chromium)`;

test('the recorded backlog-1 run: its report fits a 1000 px page, the timeline readable', async (t) => {
  if (missing !== null) return void t.log(`skipped: ${missing}`);
  const dir = join(tempDir(t), 'run');
  cpSync(join(ROOT, 'fixtures', 'runs', 'backlog1-rst'), dir, { recursive: true });
  const r = await sockspike(['analyze', dir]);
  t.is(r.exitCode, 0, String(r.stderr));
  await check(t, dir, 'backlog1-rst');
});

test('a default 3 s run: its report fits a 1000 px page, the timeline readable', async (t) => {
  if (missing !== null) return void t.log(`skipped: ${missing}`);
  const dir = join(tempDir(t), 'run');
  const r = await sockspike(['run', '--duration', '3s', '--out', dir, '--no-progress']);
  t.is(r.exitCode, 0, String(r.stderr));
  await check(t, dir, 'default-run');
});
