/** A plain-text table whose cells are escaped and fitted, so hostile values cannot break its layout. */
import { displayWidth, fitCell } from './escape';

export interface Column {
  header: string;
  /** Longest cell in terminal columns; longer values are cut with a marker. */
  max: number;
  /** When the terminal is too narrow, this column may be cut down to `min` columns (absent: never). */
  min?: number;
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
  const maxes = columns.map((c) => c.max);
  const minLast = opts.minLastWidth ?? 24;
  let cells: string[][] = [];
  let widths: number[] = [];
  const layout = (): void => {
    cells = rows.map((row) => columns.map((_, i) => (i === last ? '' : fitCell(row[i] ?? '', maxes[i]!))));
    // Terminal columns, not UTF-16 units: a wide character in a process name must not push a row past the width.
    widths = columns.map((c, i) => (i === last ? 0 : Math.max(displayWidth(c.header), ...cells.map((r) => displayWidth(r[i]!)))));
  };
  layout();
  let lastMax = maxes[last] ?? 0;
  if (opts.width !== undefined && opts.width > 0) {
    // The last column narrows to the room left (not below minLast); when even that does not fit, the
    // widest column that has a `min` gives way, down to it, so a row fits a terminal of 80 columns.
    let room = 0;
    for (let guard = 0; guard <= 4 * columns.length; guard++) {
      room = opts.width - widths.slice(0, last).reduce((a, w) => a + w + GAP.length, 0);
      if (room >= minLast) break;
      let widest = -1;
      for (let i = 0; i < last; i++) {
        const floor = Math.max(columns[i]!.min ?? Infinity, displayWidth(columns[i]!.header));
        if (widths[i]! > floor && (widest < 0 || widths[i]! > widths[widest]!)) widest = i;
      }
      if (widest < 0) break;
      maxes[widest] = Math.max(columns[widest]!.min!, displayWidth(columns[widest]!.header), widths[widest]! - (minLast - room));
      layout();
    }
    lastMax = Math.min(lastMax, Math.max(minLast, room));
  }
  rows.forEach((row, r) => (cells[r]![last] = fitCell(row[last] ?? '', lastMax)));
  const line = (r: readonly string[]) =>
    r
      .map((v, i) => (i === last ? v : v + ' '.repeat(Math.max(0, widths[i]! - displayWidth(v)))))
      .join(GAP)
      .trimEnd();
  return [line(columns.map((c) => c.header)), ...cells.map(line)].join('\n') + '\n';
}
