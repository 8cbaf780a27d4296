/**
 * Number formatting for the report and the gate: compact, three significant digits, SI suffixes
 * (1.23M), and the "median (p25 – p75, n)" cell of a record. Pure functions, so the report is
 * byte-for-byte the same for the same input.
 */
import type { BenchRecord } from '@raftlab/benchmarks/dist/results.js';

const scales: readonly (readonly [number, string])[] = [
  [1e3, 'k'],
  [1e6, 'M'],
  [1e9, 'G'],
  [1e12, 'T'],
];

/** Strips trailing zeros of a fixed-point string ("1.50" -> "1.5", "2.00" -> "2"). */
function trimZeros(text: string): string {
  return text.includes('.') && !text.includes('e') ? text.replace(/\.?0+$/, '') : text;
}

/** A number in at most three significant digits with an SI suffix from 10 000 up: 1.23M, 45.6k, 0.008. */
export function formatNumber(value: number): string {
  if (!Number.isFinite(value)) return String(value);
  if (value === 0) return '0';
  const magnitude = Math.abs(value);
  if (magnitude < 10_000) {
    if (Number.isInteger(value) || magnitude >= 999.5) return String(Math.round(value));
    if (magnitude < 1e-4) return value.toExponential(2);
    return trimZeros(value.toPrecision(3));
  }
  for (const [scale, suffix] of scales) {
    const text = (value / scale).toPrecision(3);
    // 999 950 is "1.00e+3" in thousands: move on to the next suffix.
    if (!text.includes('e')) return `${trimZeros(text)}${suffix}`;
  }
  return value.toExponential(2);
}

/** The unit as a short suffix inside a cell: rates keep "/s", times keep their unit, others none. */
export function unitSuffix(unit: string): string {
  if (unit.endsWith('/s')) return '/s';
  if (unit === 'ms' || unit === 'us' || unit === 'µs' || unit === 'ns' || unit === 's') return ` ${unit}`;
  if (unit === '%') return '%';
  return '';
}

/** A table cell: `1.23M/s (p25 1.20M – p75 1.25M, n=10)`, or the exact figure alone. */
export function formatCell(record: Pick<BenchRecord, 'value' | 'unit' | 'samples' | 'spread'>): string {
  const suffix = unitSuffix(record.unit);
  const value = `${formatNumber(record.value)}${suffix}`;
  if (record.spread === null) return record.samples > 1 ? `${value} (n=${record.samples})` : value;
  return `${value} (p25 ${formatNumber(record.spread.p25)} – p75 ${formatNumber(record.spread.p75)}, n=${record.samples})`;
}

/** A signed percentage with two decimals: +3.14%, -0.02%. */
export function formatPercent(value: number): string {
  if (!Number.isFinite(value)) return String(value);
  const rounded = value.toFixed(2);
  return `${value >= 0 && !rounded.startsWith('-') ? '+' : ''}${rounded}%`;
}

/** An integer with thousands separators: 1,387,142,251. */
export function formatCount(value: number): string {
  return Math.round(value).toString().replace(/\B(?=(\d{3})+(?!\d))/g, ',');
}

/** Bytes in binary units: 23.4 GiB. */
export function formatBytes(bytes: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit += 1;
  }
  return `${unit === 0 ? String(value) : trimZeros(value.toFixed(1))} ${units[unit] as string}`;
}

/** A duration: 850 ms, 12.3 s, 4 min 05 s. */
export function formatDuration(milliseconds: number): string {
  if (milliseconds < 1000) return `${Math.round(milliseconds)} ms`;
  if (milliseconds < 60_000) return `${trimZeros((milliseconds / 1000).toFixed(1))} s`;
  const seconds = Math.round(milliseconds / 1000);
  return `${Math.floor(seconds / 60)} min ${String(seconds % 60).padStart(2, '0')} s`;
}

/** Escapes text for a markdown table cell. */
export function escapeCell(text: string): string {
  return text.replace(/\\/g, '\\\\').replace(/\|/g, '\\|').replace(/\n/g, ' ');
}

/** A markdown table; cells are escaped and padded so the source reads as a table too. */
export function markdownTable(header: readonly string[], rows: readonly (readonly string[])[], align?: readonly ('left' | 'right')[]): string {
  const escaped = [header, ...rows].map((row) => header.map((_, i) => escapeCell(row[i] ?? '')));
  const widths = header.map((_, i) => Math.max(3, ...escaped.map((row) => (row[i] as string).length)));
  const right = (i: number): boolean => (align?.[i] ?? 'left') === 'right';
  const line = (cells: readonly string[]): string =>
    `| ${cells.map((cell, i) => (right(i) ? cell.padStart(widths[i] as number) : cell.padEnd(widths[i] as number))).join(' | ')} |`;
  const rule = widths.map((width, i) => (right(i) ? `${'-'.repeat(width - 1)}:` : '-'.repeat(width)));
  const [head, ...body] = escaped;
  return [line(head as string[]), `| ${rule.join(' | ')} |`, ...body.map(line)].join('\n');
}
