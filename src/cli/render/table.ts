/** A plain-text table whose cells are escaped and fitted, so hostile values cannot break its layout. */
import { fitCell } from './escape';

export interface Column {
  header: string;
  /** Longest cell in characters; longer values are cut with a marker. */
  max: number;
}

export interface TableOptions {
  /**
   * Terminal width: the last column is narrowed (down to `minLastWidth`) so rows do not wrap.
   * Absent when output is not a terminal.
   */
  width?: number;
  minLastWidth?: number;
}

const GAP = '  ';

export function renderTable(columns: readonly Column[], rows: readonly (readonly string[])[], opts: TableOptions = {}): string {
  const last = columns.length - 1;
  const cells = rows.map((row) => columns.map((c, i) => (i === last ? '' : fitCell(row[i] ?? '', c.max))));
  const widths = columns.map((c, i) => (i === last ? 0 : Math.max(c.header.length, ...cells.map((r) => r[i]!.length))));
  let lastMax = columns[last]?.max ?? 0;
  if (opts.width !== undefined && opts.width > 0) {
    const used = widths.slice(0, last).reduce((a, w) => a + w + GAP.length, 0);
    lastMax = Math.min(lastMax, Math.max(opts.minLastWidth ?? 24, opts.width - used));
  }
  rows.forEach((row, r) => (cells[r]![last] = fitCell(row[last] ?? '', lastMax)));
  const line = (r: readonly string[]) =>
    r
      .map((v, i) => (i === last ? v : v.padEnd(widths[i]!)))
      .join(GAP)
      .trimEnd();
  return [line(columns.map((c) => c.header)), ...cells.map(line)].join('\n') + '\n';
}
