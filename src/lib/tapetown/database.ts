/**
 * A tapetown database (../docs/tapetown.md), read-only and defensively: the sqlite file is
 * opened from its bytes with sql.js (SQLite compiled to WebAssembly, no native build), the
 * schema is read first (`PRAGMA table_info`: columns were added over the years without
 * migrations) and every row comes back as it is, with the column values typed loosely. What a
 * row means, and what is wrong with it, is decided by adopt-plan.ts.
 */
import { readFile } from 'node:fs/promises';
import initSqlJs, { type Database, type SqlValue } from 'sql.js';
import { ValidationError } from '../errors.ts';

export interface TapetownTapeRow {
  id: number;
  name: string | null;
  serial: string | null;
  status: string | null;
  online: number | null;
}
export interface TapetownTargetRow {
  id: number;
  /** null also when its bytes are not valid UTF-8 (then `badName` shows them, Latin-1). */
  name: string | null;
  badName?: string;
  /** Absent before 2020-01-27 (no `scanned` column): every target was scanned on import then. */
  scanned?: number | null;
  /** Absent before 2020-01 (no `parent_id` column): no nesting was known then. */
  parentId?: number | null;
}
export interface TapetownFileRow {
  id: number;
  targetId: number | null;
  /** The name's exact bytes (Python 2 tapetown stored byte strings; they need not be UTF-8). */
  name: Buffer | string | null;
  md5: string | null;
  sizeKb: number | null;
}
export interface TapetownBackupRow {
  id: number;
  targetId: number | null;
  tapeId: number | null;
  fileNumber: number | null;
  status: string | null;
}

export interface TapetownDatabase {
  /** Which optional columns this database has. */
  schema: { scanned: boolean; parentId: boolean };
  tapes: TapetownTapeRow[];
  targets: TapetownTargetRow[];
  backups: TapetownBackupRow[];
  fileCount: number;
  /** The files rows, in target then id order (streamed: a database may hold millions). */
  files(): Iterable<TapetownFileRow>;
  close(): void;
}

const TABLES = {
  tapes: ['id', 'name', 'serial', 'status'],
  targets: ['id', 'name'],
  files: ['id', 'target_id', 'name', 'md5sum', 'size_kb'],
  backups: ['id', 'target_id', 'tape_id', 'file_number', 'status'],
};

const utf8 = new TextDecoder('utf-8', { fatal: true });
/** A TEXT column read as bytes (CAST AS BLOB): sql.js would decode invalid UTF-8 lossily. */
const blob = (v: SqlValue | undefined): Buffer | null => (v instanceof Uint8Array ? Buffer.from(v) : typeof v === 'string' ? Buffer.from(v) : null);
function text(v: SqlValue | undefined): { name: string | null; badName?: string } {
  const b = blob(v);
  if (!b) return { name: null };
  try {
    return { name: utf8.decode(b) };
  } catch {
    return { name: null, badName: b.toString('latin1') };
  }
}
const num = (v: SqlValue | undefined): number | null => (typeof v === 'number' ? v : typeof v === 'string' && /^-?\d+$/.test(v) ? Number(v) : null);
const str = (v: SqlValue | undefined): string | null => (typeof v === 'string' ? v : typeof v === 'number' ? String(v) : null);

function columns(db: Database, table: string): Set<string> {
  const r = db.exec(`PRAGMA table_info(${table})`)[0];
  return new Set((r?.values ?? []).map((row) => String(row[1])));
}

function* rows(db: Database, sql: string): Generator<Record<string, SqlValue>> {
  const stmt = db.prepare(sql);
  try {
    while (stmt.step()) yield stmt.getAsObject();
  } finally {
    stmt.free();
  }
}

/** Opens `path` (never written: sql.js works on a copy in memory). ValidationError when it is not a tapetown database. */
export async function openTapetownDatabase(path: string): Promise<TapetownDatabase> {
  const bytes = await readFile(path);
  if (bytes.subarray(0, 16).toString('latin1') !== 'SQLite format 3\0')
    throw new ValidationError(
      `${path} is not an sqlite database (no "SQLite format 3" header); give the tapetown database file (tape.db). Nothing was changed.`,
    );
  const SQL = await initSqlJs();
  const db = new SQL.Database(bytes);
  try {
    const have = Object.fromEntries(Object.keys(TABLES).map((t) => [t, columns(db, t)])) as Record<keyof typeof TABLES, Set<string>>;
    for (const [table, need] of Object.entries(TABLES) as [keyof typeof TABLES, string[]][]) {
      const missing = need.filter((c) => !have[table].has(c));
      if (missing.length)
        throw new ValidationError(
          `${path} is not a tapetown database: table ${table} ${have[table].size ? `lacks column(s) ${missing.join(', ')}` : 'is missing'}. Nothing was changed.`,
        );
    }
    const schema = { scanned: have.targets.has('scanned'), parentId: have.targets.has('parent_id') };
    const online = have.tapes.has('online') ? ', online' : '';
    const tapes = [...rows(db, `SELECT id, name, serial, status${online} FROM tapes ORDER BY id`)].map((r) => ({
      id: Number(r.id),
      name: str(r.name),
      serial: str(r.serial),
      status: str(r.status),
      online: num(r.online),
    }));
    const extra = `${schema.scanned ? ', scanned' : ''}${schema.parentId ? ', parent_id' : ''}`;
    const targets = [...rows(db, `SELECT id, CAST(name AS BLOB) AS name${extra} FROM targets ORDER BY id`)].map((r) => ({
      id: Number(r.id),
      ...text(r.name),
      ...(schema.scanned ? { scanned: num(r.scanned) } : {}),
      ...(schema.parentId ? { parentId: num(r.parent_id) } : {}),
    }));
    const backups = [...rows(db, 'SELECT id, target_id, tape_id, file_number, status FROM backups ORDER BY id')].map((r) => ({
      id: Number(r.id),
      targetId: num(r.target_id),
      tapeId: num(r.tape_id),
      fileNumber: num(r.file_number),
      status: str(r.status),
    }));
    const fileCount = Number(db.exec('SELECT count(*) FROM files')[0]?.values[0]?.[0] ?? 0);
    return {
      schema,
      tapes,
      targets,
      backups,
      fileCount,
      *files() {
        for (const r of rows(db, 'SELECT id, target_id, CAST(name AS BLOB) AS name, md5sum, size_kb FROM files ORDER BY target_id, id'))
          yield { id: Number(r.id), targetId: num(r.target_id), name: blob(r.name), md5: str(r.md5sum), sizeKb: num(r.size_kb) };
      },
      close: () => db.close(),
    };
  } catch (e) {
    db.close();
    if (e instanceof ValidationError) throw e;
    throw new ValidationError(`${path} could not be read as a tapetown database: ${e instanceof Error ? e.message : String(e)}. Nothing was changed.`);
  }
}
