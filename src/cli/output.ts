/**
 * Rendering job results for operators: tables that fit the terminal by default (one rule
 * under the header, none between rows, long cells shortened in the middle), `wide` (nothing
 * shortened) and `tsv` (for cut, awk and spreadsheets), and pages of a long listing.
 */
import Table from 'cli-table3';
import { formatBytes } from '../lib/domain/units.ts';
import type { TapeRow } from '../lib/jobs/tapes.ts';
import type { TargetRow } from '../lib/jobs/targets.ts';

export const OUTPUT_FORMATS = ['table', 'wide', 'tsv'] as const;
export type OutputFormat = (typeof OUTPUT_FORMATS)[number];

export interface RenderOptions {
  format?: OutputFormat;
  /** Terminal width; undefined (not a terminal) shortens nothing. */
  width?: number;
}

/** `text` cut to `max` characters, with an ellipsis when cut. */
export function shorten(text: string, max: number): string {
  return text.length <= max ? text : `${text.slice(0, max - 1)}…`;
}

/** `text` cut in the middle to `max` characters: both ends of a path are what tells it apart. */
export function shortenMiddle(text: string, max: number): string {
  if (text.length <= max) return text;
  if (max <= 1) return '…'.slice(0, max);
  const tail = Math.floor((max - 1) / 2);
  return `${text.slice(0, max - 1 - tail)}…${text.slice(text.length - tail)}`;
}

const COMPACT = { mid: '', 'left-mid': '', 'mid-mid': '', 'right-mid': '' };

/**
 * A table; `flex` names the columns that give way (cut in the middle, widest first) when the
 * table is wider than the terminal. In the default format a column empty in every row is
 * left out (`wide` and `tsv` keep every column, for scripts that count them).
 */
export function table(head: string[], rows: (string | number)[][], o: RenderOptions & { flex?: string[] } = {}): string {
  let cells = rows.map((r) => r.map(String));
  if (o.format === 'tsv') {
    const clean = (s: string) => s.replace(/[\t\n\r]/g, ' ');
    return [head, ...cells].map((r) => r.map(clean).join('\t')).join('\n');
  }
  let columns = head;
  if (o.format !== 'wide') {
    const keep = head.map((_, i) => cells.some((r) => r[i] !== ''));
    columns = head.filter((_, i) => keep[i]);
    cells = cells.map((r) => r.filter((_, i) => keep[i]));
    if (o.width)
      fitToWidth(
        columns,
        cells,
        o.width,
        (o.flex ?? []).map((f) => columns.indexOf(f)).filter((i) => i >= 0),
      );
  }
  const t = new Table({ head: columns, chars: COMPACT, style: { head: [], border: [], compact: true } });
  t.push(...cells);
  // One rule, under the header; none between rows.
  const lines = t.toString().split('\n');
  const rule = lines[0]!.replace('┌', '├').replace(/┬/g, '┼').replace('┐', '┤');
  return [lines[0], lines[1], rule, ...lines.slice(2)].join('\n');
}

/** Narrows the flexible columns until the table fits `width` (each cell adds 3: borders and padding). */
function fitToWidth(head: string[], cells: string[][], width: number, flex: number[]): void {
  const widths = head.map((h, i) => Math.max(h.length, ...cells.map((r) => r[i]!.length)));
  const total = () => widths.reduce((a, w) => a + w + 3, 1);
  const MIN = 12;
  while (total() > width) {
    const widest = flex.filter((i) => widths[i]! > MIN).sort((a, b) => widths[b]! - widths[a]!)[0];
    if (widest === undefined) break; // nothing left to give: the terminal wraps
    widths[widest] = Math.max(MIN, widths[widest]! - (total() - width));
  }
  for (const i of flex) for (const r of cells) r[i] = shortenMiddle(r[i]!, widths[i]!);
}

/** Rows `page` (1-based) of `limit` (0: all), and a footer saying what is not shown and how to see it. */
export function paginate<T>(rows: T[], limit: number, page: number, what: string): { rows: T[]; footer?: string } {
  if (!limit || rows.length <= limit) return page > 1 && limit ? { rows: [], footer: `no page ${page}: ${rows.length} ${what} in all` } : { rows };
  const pages = Math.ceil(rows.length / limit);
  const from = (page - 1) * limit;
  const shown = rows.slice(from, from + limit);
  if (!shown.length) return { rows: [], footer: `no page ${page}: ${rows.length} ${what} make ${pages} page(s) of ${limit}` };
  return {
    rows: shown,
    footer: `${what} ${from + 1}-${from + shown.length} of ${rows.length} (page ${page} of ${pages})${page < pages ? `; next: --page ${page + 1}` : ''}`,
  };
}

export function tapesTable(rows: TapeRow[], o: RenderOptions = {}): string {
  if (rows.length === 0) return 'no tapes registered; register one with "open_tape NAME --new".';
  const full = o.format === 'wide' || o.format === 'tsv';
  return table(
    ['tape', 'barcode', 'pool', 'state', 'online', 'used / capacity', 'files', 'confirmed', 'assigned', 'in flight'],
    rows.map((t) => [
      t.name,
      t.barcode || '-',
      t.pool,
      // the reason a tape was set aside is what the operator needs next
      (t.reason && (t.state === 'disabled' || t.state === 'broken') ? `${t.state}: ${full ? t.reason : shorten(t.reason, 60)}` : t.state) +
        (t.format === 'tapetown' ? ' (tapetown, read only)' : ''),
      t.online ? 'yes' : '',
      `${formatBytes(t.bytesUsed)} / ${formatBytes(t.capacityBytes)} (${t.capacityBytes ? ((100 * t.bytesUsed) / t.capacityBytes).toFixed(1) : 0}%)`,
      t.filesWritten,
      t.filesConfirmed,
      t.targetsAssigned,
      t.writeInFlight ? `file ${t.writeInFlight.fileNumber}` : '',
    ]),
    { ...o, flex: ['state'] },
  );
}

export function targetsTable(rows: TargetRow[], o: RenderOptions = {}): string {
  if (rows.length === 0) return 'no targets match.';
  const full = o.format === 'wide' || o.format === 'tsv';
  // With one copy per target (one pool) the row is that copy; with more, each copy is listed.
  const several = rows.some((t) => t.copies.length > 1 || t.policy.length > 1);
  const copyCells = (t: TargetRow) =>
    several
      ? [
          t.copiesStatus,
          t.copies.map((c) => `${c.pool}${c.extra ? '(extra)' : ''} ${c.tape ? `${c.tape}:${c.fileNumber ?? '-'}` : '-'} ${c.status}`).join('; '),
        ]
      : [];
  return table(
    ['id', 'host:path', 'status', 'tape', 'file', ...(several ? ['safe', 'copies'] : []), 'files', 'size', 'skipped', 'error', 'bad files'],
    rows.map((t) => [
      t.id,
      `${t.host}:${t.path}`,
      t.status,
      t.tape ?? '',
      t.fileNumber ?? '',
      ...copyCells(t),
      t.fileCount ?? '',
      t.totalBytes !== undefined ? formatBytes(t.totalBytes) : '',
      t.skippedCount ? `${t.skippedCount} special` : '',
      t.error ? (full ? t.error : shorten(t.error, 60)) : '',
      (t.previousFiles ?? []).map((f) => `${f.tapeName}:${f.fileNumber}`).join(' '),
    ]),
    { ...o, flex: ['host:path', 'error', ...(several ? ['copies'] : [])] },
  );
}
