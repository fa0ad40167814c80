import { readFileSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { basename, dirname, join } from 'node:path';

// A PNG beside each SVG picture (for viewers that do not show SVG), rendered
// with @resvg/resvg-js (prebuilt native binaries per platform). Optional: if
// the module or its binary cannot load here, no PNG and no error.

/** Width of the PNGs, px (height follows the SVG's aspect ratio). */
export const PNG_WIDTH = 1000;

type ResvgModule = typeof import('@resvg/resvg-js');
let loaded: ResvgModule | null | undefined;

/** @resvg/resvg-js, loaded on first use; null when it cannot load on this machine. */
export function loadResvg(): ResvgModule | null {
  if (loaded === undefined) {
    try {
      loaded = createRequire(import.meta.url)('@resvg/resvg-js') as ResvgModule;
    } catch {
      loaded = null;
    }
  }
  return loaded;
}

/**
 * Render the SVG at svgPath to a PNG of the same name beside it (PNG_WIDTH
 * wide, white background); returns the PNG's file name, or null when resvg
 * is unavailable or the rendering failed.
 */
export function svgToPng(svgPath: string): string | null {
  const resvg = loadResvg();
  if (!resvg) return null;
  const name = basename(svgPath).replace(/\.svg$/i, '') + '.png';
  try {
    const r = new resvg.Resvg(readFileSync(svgPath), {
      background: 'white',
      fitTo: { mode: 'width', value: PNG_WIDTH },
      font: { loadSystemFonts: true, defaultFontFamily: 'DejaVu Sans', sansSerifFamily: 'DejaVu Sans' },
    });
    writeFileSync(join(dirname(svgPath), name), r.render().asPng());
    return name;
  } catch {
    return null;
  }
}
