// The one formatter of numbers for everything a person reads (reports, cause
// evidence, progress lines, errors): a value, a space, its unit ("4.56 ms",
// "12.5 %", "11 190"), trailing zeros dropped. Machine output (summary.json,
// CSV) carries raw numbers and never goes through here.

/** A decimal with at most `digits` places, trailing zeros dropped: 1.20 -> "1.2", 40.0 -> "40". */
const decimal = (v: number, digits: number): string => String(+v.toFixed(digits));

/** Three significant figures for 1..999, whole numbers above: 4.56, 12.3, 456. */
const sig3 = (v: number): string => decimal(v, Math.abs(v) >= 100 ? 0 : Math.abs(v) >= 10 ? 1 : 2);

/** A duration in nanoseconds: "850 ns", "12.3 us", "4.56 ms", "1.2 s", "2 min 03 s". */
export function formatNs(ns: number): string {
  if (!Number.isFinite(ns)) return '-';
  const a = Math.abs(ns);
  if (a < 1e3) return `${Math.round(ns)} ns`;
  if (a < 1e6) return `${sig3(ns / 1e3)} us`;
  if (a < 1e9) return `${sig3(ns / 1e6)} ms`;
  if (a < 60e9) return `${sig3(ns / 1e9)} s`;
  const s = Math.round(ns / 1e9);
  return `${Math.floor(s / 60)} min ${String(s % 60).padStart(2, '0')} s`;
}

/** A duration in microseconds, as formatNs. */
export const formatUs = (us: number): string => formatNs(us * 1e3);

/** A point on a run's time axis (ns since t0) in seconds: "12.34 s". */
export const formatSeconds = (ns: number, digits = 2): string => `${(ns / 1e9).toFixed(digits)} s`;

/** A fraction as a percentage with `digits` places: 0.1234 -> "12.34 %"; 0 -> "0 %". */
export const formatPercent = (fraction: number, digits = 2): string => (fraction === 0 ? '0 %' : `${(100 * fraction).toFixed(digits)} %`);

/** A fraction as a percentage, places by size: "0.35 %", "4.2 %", "37 %". */
export const formatShare = (fraction: number): string => {
  const p = Math.abs(100 * fraction);
  return formatPercent(fraction, p === 0 || p >= 10 ? 0 : p >= 1 ? 1 : 2);
};

/** A count, grouped by thousands with spaces: 11190 -> "11 190". */
export const formatCount = (n: number): string => Math.round(n).toLocaleString('en-US').replace(/,/g, ' ');

/** A count and its noun, singular or plural: "1 outlier", "2 outliers", "11 190 resets". */
export const formatCountOf = (n: number, noun: string, plural = `${noun}s`): string => `${formatCount(n)} ${Math.round(n) === 1 ? noun : plural}`;

/** Any measured number: whole ones grouped ("11 190"), others to two places ("0.73"). */
export const formatNumber = (v: number): string => (Number.isInteger(v) ? formatCount(v) : v.toFixed(2));

/** CPU time in cores (one core busy for the whole time: 1): "1.6 cores", "0.08 cores". */
export const formatCores = (cores: number): string => `${decimal(cores, Math.abs(cores) >= 1 ? 1 : 2)} cores`;

/** A rate per second: "136/s", "4.5/s". */
export const formatRate = (perSecond: number): string => `${decimal(perSecond, perSecond >= 100 ? 0 : 1)}/s`;

/** Bytes: "512 B", "1.5 KiB", "12.3 MiB", "2.1 GiB". */
export function formatBytes(b: number): string {
  if (b < 1024) return `${Math.round(b)} B`;
  const units = ['KiB', 'MiB', 'GiB', 'TiB'];
  let v = b / 1024;
  let k = 0;
  while (v >= 1024 && k < units.length - 1) {
    v /= 1024;
    k++;
  }
  return `${sig3(v)} ${units[k]}`;
}
