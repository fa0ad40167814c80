import { writeReport } from './run-report.ts';
import { writeTimelineChart } from './timeline-chart.ts';

/**
 * Everything the reports stage writes for a run directory whose summary.json
 * is up to date: the timeline picture (timeline.svg), then report.md, which
 * links it.
 */
export async function writeReports(dir: string): Promise<void> {
  await writeTimelineChart(dir);
  writeReport(dir);
}
