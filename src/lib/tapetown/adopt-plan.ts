/**
 * What a tapetown database becomes in the catalog (adopt_tapetown; docs/tapetown.md): every
 * row is either imported or reported with the reason, never dropped. Pure: the rows in, the
 * catalog items and the report out.
 *
 *   tapes row    -> a closed, read-only tape of format `tapetown` in pool P (`garbage`: broken)
 *   targets row  -> a target on HOST with its policy's copies unassigned; children excluded
 *   files rows   -> its manifest: md5 and du's size (approximate), no mode or mtime
 *   backups row  -> `recorded`: an archived copy in pool P, `confirmed`: a confirmed one
 *                   (legacy, md5 only); `assigned`/`new`: nothing on tape, nothing more
 */
import type { Copy, CopyPolicy } from '../domain/copies.ts';
import { pathFields, type ManifestEntry } from '../domain/manifest.ts';
import { BARCODE_RE, validateTapeName, type Tape } from '../domain/tape.ts';
import type { TapeFile } from '../domain/tape-file.ts';
import { adoptedScanId, targetId, type Target } from '../domain/target.ts';
import type { TapetownBackupRow, TapetownDatabase, TapetownFileRow, TapetownTargetRow } from './database.ts';

export const ADOPT_TASK_ID = 'adopt-tapetown';

export type Table = 'tapes' | 'targets' | 'files' | 'backups';
export interface NotImported {
  table: Table;
  id: number;
  /** Rows of this table from `id` on reported together (the files rows of a target not adopted). */
  count?: number;
  reason: string;
}

export interface AdoptedTarget {
  target: Target;
  copies: Copy[];
  /** The tapetown copy's tape file (a recorded or confirmed backups row). */
  tapeFile?: TapeFile;
  entries: ManifestEntry[];
  /** Its backups rows adopted (the one on tape, and any assigned or new row): the others are reported. */
  backupRows: number;
}

export interface AdoptPlan {
  tapes: Tape[];
  targets: AdoptedTarget[];
  notImported: NotImported[];
  /** Imported, but worth an operator's eye (an open tape adopted closed, nesting the old tool did not know). */
  notes: string[];
  before: AdoptedBefore;
  rows: Record<Table, number>;
}

export interface AdoptOptions {
  host: string;
  /** The pool the adopted tapes are in. */
  pool: string;
  /** The copy policy adopted targets get: the current pools new copies go to. */
  policy: CopyPolicy;
  now: string;
  /** What the catalog holds already: a tape or target adopted before is left as it is, any other of the name is a conflict. */
  catalog: { tapes: ReadonlyMap<string, Tape>; targets: ReadonlyMap<string, Target> };
}

/** Rows already in the catalog from an earlier adoption of this database: nothing is written for them again. */
export interface AdoptedBefore {
  tapes: string[];
  targets: string[];
}

const MD5_RE = /^[0-9a-f]{32}$/;
const ON_TAPE = new Set(['recorded', 'confirmed']);
const NOT_ON_TAPE = new Set(['assigned', 'new']);

function push<K, V>(m: Map<K, V[]>, k: K, v: V): void {
  const list = m.get(k);
  if (list) list.push(v);
  else m.set(k, [v]);
}

/** `/a/b/` -> `/a/b`; undefined when not an absolute path tapetown could have written. */
function normalPath(name: string | null): string | undefined {
  if (!name?.startsWith('/') || name.includes('\0')) return undefined;
  const parts = name.split('/').filter((p) => p !== '' && p !== '.');
  return parts.includes('..') || !parts.length ? undefined : `/${parts.join('/')}`;
}

function adoptTape(row: TapetownDatabase['tapes'][number], o: AdoptOptions, notes: string[]): Tape | string {
  if (!row.name) return 'the tape has no name';
  const bad = validateTapeName(row.name);
  if (bad) return `${bad} Rename it in a copy of the database, then adopt again.`;
  const have = o.catalog.tapes.get(row.name);
  if (have && have.tapetown?.id !== row.id)
    return `a tape named ${row.name} is in the catalog already${have.format ? ' (adopted from another tapetown row)' : ''}: not adopted, nothing on it changed. Remove or rename one of them, then adopt again.`;
  const status = row.status ?? '';
  if (status === 'open') notes.push(`tape ${row.name} was still open in tapetown: adopted closed and read only, as every tapetown tape`);
  else if (status !== 'closed' && status !== 'garbage')
    notes.push(`tape ${row.name} has status "${status}" in tapetown (not open, closed or garbage): adopted closed`);
  const serial = row.serial ?? '';
  return {
    name: row.name,
    barcode: BARCODE_RE.test(serial) ? serial : '',
    pool: o.pool,
    capacityBytes: 1,
    state: status === 'garbage' ? 'broken' : 'closed',
    ...(status === 'garbage' ? { reason: 'marked garbage in tapetown: never read or written' } : {}),
    online: false,
    bytesUsed: 0,
    nextFileNumber: 0,
    filesWritten: 0,
    filesConfirmed: 0,
    format: 'tapetown',
    tapetown: { id: row.id, serial, status, host: o.host },
    createdAt: o.now,
    updatedAt: o.now,
  };
}

function fileEntry(f: TapetownFileRow): ManifestEntry | string {
  const raw = typeof f.name === 'string' ? Buffer.from(f.name) : (f.name ?? Buffer.alloc(0));
  // "./a" and "a/./b" name what tar calls "a" and "a/b".
  const parts = raw.toString('latin1').split('/');
  const shown = raw.toString('latin1');
  if (!raw.length || shown.startsWith('/') || parts.some((p) => p === '..') || parts.every((p) => p === '' || p === '.'))
    return `file name "${shown}" is not a path inside its target`;
  const { path: name, rawPath } = pathFields(Buffer.from(parts.filter((p) => p !== '' && p !== '.').join('/'), 'latin1'));
  const at = rawPath !== undefined ? { path: name, rawPath } : { path: name };
  const size = Math.max(0, f.sizeKb ?? 0) * 1024;
  if (f.md5 === 'symlink') return { ...at, type: 'symlink', size: 0, mtimeMs: 0, mode: 0, approximate: true };
  if (!f.md5 || !MD5_RE.test(f.md5.toLowerCase())) return `md5 "${f.md5 ?? ''}" of ${name} is not 32 hex digits (nor "symlink")`;
  return { ...at, type: 'file', size, mtimeMs: 0, mode: 0, md5: f.md5.toLowerCase(), approximate: true };
}

/** The backups row that gives a target its tapetown copy; the others are reported. */
function pickBackup(rows: TapetownBackupRow[], tapes: Map<number, Tape>, taken: Set<string>, out: NotImported[]): TapetownBackupRow | undefined {
  let chosen: TapetownBackupRow | undefined;
  for (const b of rows) {
    const tape = b.tapeId === null ? undefined : tapes.get(b.tapeId);
    const status = b.status ?? '';
    const why = (reason: string) => out.push({ table: 'backups', id: b.id, reason });
    if (NOT_ON_TAPE.has(status)) continue; // unassigned: nothing on tape; imported as the target's unassigned copies
    if (!ON_TAPE.has(status)) why(`status "${status}" is none of assigned, recorded, confirmed, new`);
    else if (!tape) why(`it names tape id ${b.tapeId ?? 'NULL'}, which is not in the tapes table (or was not adopted)`);
    else if (tape.state === 'broken') why(`its tape ${tape.name} is marked garbage in tapetown`);
    else if (b.fileNumber === null || b.fileNumber < 0) why(`it is ${status} with file number ${b.fileNumber ?? 'NULL'}`);
    else if (taken.has(`${tape.name}#${b.fileNumber}`)) why(`file ${b.fileNumber} of tape ${tape.name} is claimed by an earlier backups row`);
    else if (chosen) why(`the target has an earlier backups row on tape (${chosen.id}): tapetown kept one copy per target`);
    else {
      chosen = b;
      taken.add(`${tape.name}#${b.fileNumber}`);
    }
  }
  return chosen;
}

export function planAdoption(db: TapetownDatabase, o: AdoptOptions): AdoptPlan {
  const notImported: NotImported[] = [];
  const notes: string[] = [];
  const tapes = new Map<number, Tape>();
  for (const row of db.tapes) {
    const t = adoptTape(row, o, notes);
    if (typeof t === 'string') notImported.push({ table: 'tapes', id: row.id, reason: t });
    else tapes.set(row.id, t);
  }
  const before: AdoptedBefore = { tapes: [...tapes.values()].filter((t) => o.catalog.tapes.has(t.name)).map((t) => t.name), targets: [] };
  const rowsById = new Map<number, TapetownTargetRow & { path: string }>();
  const byPath = new Map<string, number>();
  for (const t of db.targets) {
    const path = normalPath(t.name);
    const have = path && o.catalog.targets.get(targetId(o.host, path));
    if (t.badName !== undefined)
      notImported.push({ table: 'targets', id: t.id, reason: `name "${t.badName}" is not valid UTF-8; this release keeps target paths as text` });
    else if (!path) notImported.push({ table: 'targets', id: t.id, reason: `name "${t.name ?? ''}" is not an absolute path` });
    else if (byPath.has(path))
      notImported.push({ table: 'targets', id: t.id, reason: `${path} is also targets row ${byPath.get(path)} (the same directory written two ways)` });
    else if (have && have.adopted?.id !== t.id)
      notImported.push({
        table: 'targets',
        id: t.id,
        reason: `${o.host}:${path} is in the catalog already (target ${have.id}, not adopted from this row): left as it is`,
      });
    else {
      rowsById.set(t.id, { ...t, path });
      byPath.set(path, t.id);
    }
  }
  const children = new Map<number, string[]>();
  for (const t of rowsById.values()) {
    if (t.parentId == null) continue;
    const parent = rowsById.get(t.parentId);
    if (!parent) notes.push(`target ${t.path}: its parent_id ${t.parentId} is not a target; adopted as a target of its own`);
    else if (!t.path.startsWith(`${parent.path}/`)) notes.push(`target ${t.path}: its parent ${parent.path} does not contain it; not excluded from it`);
    else push(children, parent.id, t.path);
  }
  if (!db.schema.parentId) {
    const paths = new Set([...rowsById.values()].map((t) => t.path));
    for (const p of paths)
      for (let up = p.slice(0, p.lastIndexOf('/')); up; up = up.slice(0, up.lastIndexOf('/')))
        if (paths.has(up)) notes.push(`target ${p} lies inside target ${up}, and this database has no parent_id: tapetown wrote its files on both`);
  }

  const entries = new Map<number, ManifestEntry[]>();
  const unscanned = new Set([...rowsById.values()].filter((t) => db.schema.scanned && t.scanned !== 1).map((t) => t.id));
  let orphans: NotImported | undefined; // files rows of one target not adopted, reported as one line
  for (const f of db.files()) {
    if (f.targetId === null || !rowsById.has(f.targetId)) {
      const reason = `their target id ${f.targetId ?? 'NULL'} is not an adopted target`;
      if (orphans?.reason === reason) orphans.count = (orphans.count ?? 1) + 1;
      else notImported.push((orphans = { table: 'files', id: f.id, count: 1, reason }));
      continue;
    }
    const entry = unscanned.has(f.targetId) ? `its target (targets row ${f.targetId}) was never scanned in tapetown: scanned here once adopted` : fileEntry(f);
    if (typeof entry === 'string') notImported.push({ table: 'files', id: f.id, reason: entry });
    else push(entries, f.targetId, entry);
  }
  const backupsOf = new Map<number, TapetownBackupRow[]>();
  for (const b of db.backups) {
    if (b.targetId === null || !rowsById.has(b.targetId))
      notImported.push({ table: 'backups', id: b.id, reason: `its target id ${b.targetId ?? 'NULL'} is not an adopted target` });
    else push(backupsOf, b.targetId, b);
  }

  const taken = new Set<string>();
  const targets: AdoptedTarget[] = [];
  for (const row of rowsById.values()) {
    if (o.catalog.targets.has(targetId(o.host, row.path))) before.targets.push(targetId(o.host, row.path));
    const rows = backupsOf.get(row.id) ?? [];
    const reported = notImported.length;
    const backup = pickBackup(rows, tapes, taken, notImported);
    const t = adoptTarget(row, entries.get(row.id) ?? [], children.get(row.id), backup, tapes, db, o);
    targets.push({ ...t, backupRows: rows.length - (notImported.length - reported) });
  }
  for (const t of targets) {
    const tape = t.tapeFile && [...tapes.values()].find((x) => x.name === t.tapeFile!.tapeName);
    if (!tape || !t.tapeFile) continue;
    tape.filesWritten++;
    if (t.tapeFile.state === 'confirmed') tape.filesConfirmed++;
    tape.nextFileNumber = Math.max(tape.nextFileNumber, t.tapeFile.fileNumber + 1);
    tape.bytesUsed += t.target.totalBytes ?? 0;
    tape.capacityBytes = Math.max(tape.capacityBytes, tape.bytesUsed);
  }
  return {
    tapes: [...tapes.values()],
    targets,
    notImported,
    notes,
    before,
    rows: { tapes: db.tapes.length, targets: db.targets.length, files: db.fileCount, backups: db.backups.length },
  };
}

function adoptTarget(
  row: TapetownTargetRow & { path: string },
  entries: ManifestEntry[],
  excludes: string[] | undefined,
  backup: TapetownBackupRow | undefined,
  tapes: Map<number, Tape>,
  db: TapetownDatabase,
  o: AdoptOptions,
): Omit<AdoptedTarget, 'backupRows'> {
  const id = targetId(o.host, row.path);
  // Before 2020-01-27 there was no --no-scan: every target was scanned when imported.
  const scanned = !db.schema.scanned || row.scanned === 1;
  const fileList = scanned && entries.length > 0;
  const scanId = adoptedScanId(row.id);
  entries.sort((a, b) => Buffer.compare(Buffer.from(a.path), Buffer.from(b.path)));
  const target: Target = {
    id,
    host: o.host,
    path: row.path,
    scan: scanned ? 'complete' : 'pending',
    ...(scanned ? { scanId, fileCount: entries.length, totalBytes: entries.reduce((n, e) => n + e.size, 0), manifestPages: entries.length ? 1 : 0 } : {}),
    copies: [...o.policy],
    ...(excludes?.length ? { excludes: excludes.sort() } : {}),
    adopted: { from: 'tapetown', id: row.id, fileList },
    importedAt: o.now,
    updatedAt: o.now,
    version: 1,
  };
  const unassigned = (pool: string): Copy => ({ targetId: id, pool, placement: 'unassigned', importedAt: o.now, updatedAt: o.now, version: 1 });
  const copies = o.policy.filter((p) => p !== o.pool).map(unassigned);
  const tape = backup?.tapeId != null ? tapes.get(backup.tapeId) : undefined;
  if (!backup || !tape) return { target, copies, entries };
  const state = backup.status === 'confirmed' ? 'confirmed' : 'archived';
  const tapeFile: TapeFile = {
    tapeName: tape.name,
    fileNumber: backup.fileNumber!,
    targetId: id,
    state,
    taskId: ADOPT_TASK_ID,
    format: 'tapetown',
    // Recorded even when empty: a target imported inside it later must not change what this file is checked against.
    excludes: target.excludes ?? [],
    ...(scanned ? { scanId, manifestPages: target.manifestPages, fileCount: entries.length } : {}),
    startedAt: o.now,
    archivedAt: o.now,
  };
  copies.push({
    targetId: id,
    pool: o.pool,
    placement: state,
    tapeName: tape.name,
    fileNumber: backup.fileNumber!,
    archivedAt: o.now,
    legacy: 'tapetown-md5',
    importedAt: o.now,
    updatedAt: o.now,
    version: 1,
  });
  return { target, copies, tapeFile, entries };
}
