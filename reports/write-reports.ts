import { join } from 'node:path';
import { writeLatencyChart } from './latency-chart.ts';
import { svgToPng } from './png.ts';
import { writeReport, type ReportOptions } from './run-report.ts';
import { writeTimelineChart } from './timeline-chart.ts';

/**
 * Everything the reports stage writes for a run directory whose summary.json
 * is up to date: the timeline picture (timeline.svg), the latency
 * distribution (latency.svg), a PNG beside each (when @resvg/resvg-js loads
 * here), then report.md, which links them.
 */
export async function writeReports(dir: string, opts: ReportOptions = {}): Promise<void> {
  const svgs = [await writeTimelineChart(dir), await writeLatencyChart(dir)];
  for (const svg of svgs) if (svg) svgToPng(join(dir, svg));
  writeReport(dir, opts);
}
