// A plain-text table with aligned columns: names left, figures right.

export type Cell = string | number;

export function formatTable(header: readonly string[], rows: readonly (readonly Cell[])[]): string {
  const text = (cell: Cell): string => String(cell);
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((row) => text(row[i] ?? '').length)));
  const line = (cells: readonly Cell[], numeric: (i: number) => boolean): string =>
    cells
      .map((cell, i) => (numeric(i) ? text(cell).padStart(widths[i]!) : text(cell).padEnd(widths[i]!)))
      .join('  ')
      .trimEnd();
  // A column of names (every cell starts with a letter) is left-aligned; figures, ranges and '-' right.
  const isFigure = (i: number): boolean => !rows.every((row) => /^[a-z]/i.test(text(row[i] ?? '')));
  return [line(header, isFigure), widths.map((w) => '-'.repeat(w)).join('  '), ...rows.map((row) => line(row, isFigure))].join('\n');
}
