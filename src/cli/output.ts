/** Rendering job results for operators: readable tables by default, JSON for scripts. */
import Table from 'cli-table3';
import { formatBytes } from '../lib/domain/units.ts';
import type { TapeRow } from '../lib/jobs/tapes.ts';
import type { TargetRow } from '../lib/jobs/targets.ts';

export function table(head: string[], rows: (string | number)[][]): string {
  const t = new Table({ head, style: { head: [], border: [] } });
  t.push(...rows.map((r) => r.map(String)));
  return t.toString();
}

/** `text` cut to `max` characters, with an ellipsis when cut. */
export function shorten(text: string, max: number): string {
  return text.length <= max ? text : `${text.slice(0, max - 1)}…`;
}

export function tapesTable(rows: TapeRow[]): string {
  if (rows.length === 0) return 'no tapes registered; register one with "open_tape NAME".';
  return table(
    ['tape', 'barcode', 'pool', 'state', 'online', 'used / capacity', 'files', 'confirmed', 'assigned', 'in flight'],
    rows.map((t) => [
      t.name,
      t.barcode || '-',
      t.pool,
      // the reason a tape was set aside is what the operator needs next
      t.reason && (t.state === 'disabled' || t.state === 'broken') ? `${t.state}: ${shorten(t.reason, 60)}` : t.state,
      t.online ? 'yes' : '',
      `${formatBytes(t.bytesUsed)} / ${formatBytes(t.capacityBytes)} (${t.capacityBytes ? ((100 * t.bytesUsed) / t.capacityBytes).toFixed(1) : 0}%)`,
      t.filesWritten,
      t.filesConfirmed,
      t.targetsAssigned,
      t.writeInFlight ? `file ${t.writeInFlight.fileNumber}` : '',
    ]),
  );
}

export function targetsTable(rows: TargetRow[]): string {
  if (rows.length === 0) return 'no targets match.';
  return table(
    ['id', 'host:path', 'status', 'tape', 'file', 'files', 'size', 'skipped', 'error', 'bad files'],
    rows.map((t) => [
      t.id,
      `${t.host}:${t.path}`,
      t.status,
      t.tape ?? '',
      t.fileNumber ?? '',
      t.fileCount ?? '',
      t.totalBytes !== undefined ? formatBytes(t.totalBytes) : '',
      t.skippedCount ? `${t.skippedCount} special` : '',
      t.error ? shorten(t.error, 60) : '',
      (t.previousFiles ?? []).map((f) => `${f.tapeName}:${f.fileNumber}`).join(' '),
    ]),
  );
}
