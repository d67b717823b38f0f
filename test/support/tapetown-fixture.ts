/**
 * Test support: an archive left by tapetown, the predecessor (see docs on adopting it): a data tree
 * (the "data host"), tapetown's sqlite database written with the sqlite3 CLI, and tape files in
 * tapetown's emulator layout (`tapes/<TAPE>/fileNNNNN.tar`) written by GNU tar as tapetown did.
 * The scan uses du and md5sum and parses their output the way tapetown's taped.py did.
 */
import { content as pseudoRandom } from './fixture-tree.ts';
import { execFile } from 'node:child_process';
import { chmod, lutimes, mkdir, readdir, symlink, utimes, writeFile } from 'node:fs/promises';
import { dirname, join, relative } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

export interface TapetownFile {
  /** Relative to the target (current schema) or the base name (old schema, flat targets). */
  name: string;
  /** 32 hex digits from md5sum, or 'symlink'. */
  md5: string;
  /** `du -k`: allocated KiB (0 for an empty file and for a symlink). */
  sizeKb: number;
}
export type BackupStatus = 'confirmed' | 'recorded' | 'assigned' | 'new';
export interface TapetownTarget {
  id: number;
  /** Absolute path on the data host: targets.name. */
  path: string;
  /** The nearest ancestor target (current schema only). */
  parentId?: number;
  /** targets.scanned; undefined in the old schema (no such column). */
  scanned?: 0 | 1;
  /** The files rows ([] for an unscanned or `--no-scan` target). */
  files: TapetownFile[];
  /** Its backups row, if any (file number -1 when assigned or new). */
  backup?: { tape: string; fileNumber: number; status: BackupStatus };
}
export interface TapetownTape {
  id: number;
  name: string;
  serial: string;
  status: 'open' | 'closed';
  online: 0 | 1;
  /** Its emulator directory. */
  dir: string;
  /** Paths of the tape files the database knows (recorded/confirmed), file 0 first; not the partial. */
  files: string[];
}
export interface BrokenRows {
  missingTapeId: number;
  /** A target whose backups row names tape `missingTapeId`. */
  ghostTarget: string;
  /** A files row with a 31-character md5 on an existing target. */
  shortMd5: { target: string; name: string; md5: string };
}
export interface TapetownFixture {
  dir: string;
  schema: 'current' | 'old';
  dbPath: string;
  /** Root of the data tree: every target path is under it. */
  dataRoot: string;
  tapesDir: string;
  tapes: TapetownTape[];
  targets: TapetownTarget[];
  /** The tar cut short after the tape's last recorded file (the assigned target's), unknown to the database. */
  partial: { tape: string; fileNumber: number; path: string; targetPath: string };
  /** Where tapetown stored (or would have stored) something other than the plain truth. */
  quirks: string[];
  broken?: BrokenRows;
}

// A file's content: text, that many pseudo-random bytes, or a symbolic link.
type Content = string | number | { link: string };
interface Spec {
  rel: string;
  files: Record<string, Content>;
  backup?: [tape: number, fileNumber: number, status: BackupStatus];
  /** 'noscan': imported with `--no-scan` (scanned=1, no files); 'never': scanned=0. */
  scan?: 'noscan' | 'never';
}

const TAPES = [
  { name: 'ACT001', serial: 'HF1001L6', status: 'closed', online: 0 },
  { name: 'ACT002', serial: '', status: 'closed', online: 0 }, // UNIQUE: only one tape can have ''
  { name: 'ACT003', serial: 'HF1003L6', status: 'open', online: 1 },
] as const;
// Together > 100 characters in any member name: GNU tar writes a ././@LongLink entry.
const LONG_DIR = 'observation_run_2019_with_a_directory_name_long_enough_for_gnu';
const LONG_FILE = 'frame_000_with_a_file_name_long_enough_to_need_longlink.dat';
const T0 = Date.parse('2019-06-01T00:00:00Z') / 1000;
const PARTIAL_BYTES = 10240 * 3; // three records of blocking factor 20, then the tape ended

// Since 2020: nested targets (a parent's tar excludes its children), names relative to the target.
const CURRENT: Spec[] = [
  {
    rel: 'act/season4',
    backup: [0, 0, 'confirmed'],
    files: { 'notes.txt': 'season 4\n', 'empty.flag': '', 'obs1/frame-000.dat': 20_000, 'obs1/frame-001.dat': 7_000, latest: { link: 'obs1/frame-001.dat' } },
  },
  { rel: 'act/season4/obs2', backup: [0, 1, 'confirmed'], files: { 'frame-000.dat': 9_000, 'cal/dark.dat': 3_000 } },
  { rel: 'act/calib', backup: [0, 2, 'confirmed'], files: { 'big.bin': 300_000, 'readme.txt': 'calibration\n' } },
  {
    rel: 'act/oddnames',
    backup: [1, 0, 'recorded'],
    files: { 'two words.txt': 'a\n', "it's.txt": 'b\n', 'say "hi".txt': 'c\n', 'cost$HOME.txt': 'd\n', '-rf.txt': 'e\n' },
  },
  { rel: 'act/rawdump', scan: 'noscan', backup: [1, 1, 'recorded'], files: { 'plain.dat': 5_000, 'back\\slash.txt': 'f\n' } },
  { rel: `act/${LONG_DIR}`, backup: [2, 0, 'recorded'], files: { [LONG_FILE]: 2_000 } },
  { rel: 'act/bulk', backup: [2, -1, 'assigned'], files: { 'bulk.bin': 200_000 } },
  { rel: 'act/incoming', scan: 'never', files: { 'new.dat': 'not scanned yet\n' } },
];
// Before 2020: flat targets, base names, no scanned column; `new` rows from the 2018 close_tape.
const OLD: Spec[] = [
  { rel: 'act/season4_obs1', backup: [0, 0, 'confirmed'], files: { 'frame-000.dat': 20_000, 'frame-001.dat': 7_000, 'empty.flag': '' } },
  { rel: 'act/season4_obs2', backup: [0, 1, 'confirmed'], files: { 'frame-000.dat': 9_000 } },
  { rel: 'act/calib', backup: [0, 2, 'confirmed'], files: { 'big.bin': 300_000 } },
  { rel: 'act/oddnames', backup: [1, 0, 'recorded'], files: { 'cost$HOME.txt': 'd\n', '-rf.txt': 'e\n', latest: { link: 'cost$HOME.txt' } } },
  { rel: `act/${LONG_DIR}`, backup: [2, 0, 'recorded'], files: { [LONG_FILE]: 2_000 } },
  { rel: 'act/bulk', backup: [2, -1, 'assigned'], files: { 'bulk.bin': 200_000 } },
  { rel: 'act/stray', backup: [0, -1, 'new'], files: { 'left.dat': 'x\n' } },
];
const QUIRKS = {
  current: [
    'act/oddnames: names with spaces, quotes, $ and a leading - are stored as they are (the scan fed them to du and md5sum through `xargs -d "\\n"` and cut the output at a tab / at column 34); confirm split md5sum lines on whitespace, so "two words.txt" broke it: the target stays recorded.',
    'act/rawdump (--no-scan, no files rows) holds "back\\slash.txt": md5sum prints it as "\\<md5>  .../back\\\\slash.txt", tapetown asserted two spaces at column 32 and the import died, so a scan would have stored nothing; `tar -t` lists it as back\\\\slash.txt.',
    'Target and directory names are plain: tapetown put them unquoted into remote shell commands (find, tar --exclude).',
  ],
  old: [
    'The old scan (`find | xargs du`, lines split on whitespace) failed on names with spaces or quotes: only $ and a leading - appear.',
    'act/oddnames holds a symlink: the old confirm only compared md5sum output, so the target stays recorded.',
    'act/stray: a `new` row (2018 close_tape) that still names tape ACT001, file -1: it means unassigned.',
  ],
};

/** `'...'` with single quotes doubled: the names contain quotes. */
const q = (v: string | number | null) => (v === null ? 'NULL' : typeof v === 'number' ? String(v) : `'${v.replaceAll("'", "''")}'`);
const values = (...v: (string | number | null)[]) => `values (${v.map(q).join(', ')});`;

/** Runs SQL through the sqlite3 CLI on stdin; -bail makes the first error fail the run. */
export async function sqlite(dbPath: string, sql: string): Promise<string> {
  const p = run('sqlite3', ['-bail', dbPath]);
  p.child.stdin?.end(sql);
  return (await p).stdout;
}

/** Fixed modes and mtimes, innermost first, so that tar's output is the same every time. */
async function settle(dir: string): Promise<void> {
  for (const e of await readdir(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) await settle(p);
    else if (e.isSymbolicLink()) await lutimes(p, T0, T0);
    else {
      await chmod(p, 0o644);
      await utimes(p, T0, T0);
    }
  }
  await chmod(dir, 0o755);
  await utimes(dir, T0, T0);
}

/**
 * tapetown's remote_target_info: per directory, `find D -maxdepth 1 -mindepth 1 -type f | xargs -d '\n' du`
 * ("KB<TAB>path") and `... md5sum` (md5 at columns 0-31, two spaces, the path stripped), symlinks as
 * (0, 'symlink'), then each subdirectory that is not a child target. Keys are absolute paths.
 */
async function scan(dir: string, excluded: string[], out = new Map<string, TapetownFile>()): Promise<Map<string, TapetownFile>> {
  const entries = (await readdir(dir, { withFileTypes: true })).sort((a, b) => (a.name < b.name ? -1 : 1));
  const files = entries.filter((e) => e.isFile()).map((e) => join(dir, e.name));
  if (files.length > 0) {
    const sizes = new Map<string, number>();
    for (const line of (await run('du', ['-k', ...files])).stdout.split('\n').filter((l) => l.trim())) {
      const [size, name] = line.split('\t');
      sizes.set(name!, Number(size));
    }
    for (const line of (await run('md5sum', files)).stdout.split('\n').filter((l) => l.trim())) {
      const name = line.slice(34).trim();
      if (line.slice(32, 34) !== '  ' || !sizes.has(name)) throw new Error(`tapetown's scan would have failed on: ${line}`);
      out.set(name, { name, md5: line.slice(0, 32), sizeKb: sizes.get(name)! });
    }
  }
  for (const e of entries.filter((e) => e.isSymbolicLink())) out.set(join(dir, e.name), { name: join(dir, e.name), md5: 'symlink', sizeKb: 0 });
  for (const e of entries.filter((e) => e.isDirectory() && !excluded.includes(join(dir, e.name)))) await scan(join(dir, e.name), excluded, out);
  return out;
}

/** Builds the archive under `dir`, which must not exist yet or be empty; see TapetownFixture. */
export async function makeTapetownArchive(dir: string, opts: { schema?: 'current' | 'old'; broken?: boolean } = {}): Promise<TapetownFixture> {
  const schema = opts.schema ?? 'current';
  const specs = schema === 'current' ? CURRENT : OLD;
  const dataRoot = join(dir, 'data');
  const tapesDir = join(dir, 'tapes');
  const dbPath = join(dir, 'tapetown.sqlite');
  for (const spec of specs) {
    for (const [name, content] of Object.entries(spec.files)) {
      const path = join(dataRoot, spec.rel, name);
      await mkdir(dirname(path), { recursive: true });
      if (typeof content === 'object') await symlink(content.link, path);
      else await writeFile(path, typeof content === 'number' ? pseudoRandom(`${spec.rel}/${name}`, content) : content);
    }
  }
  await settle(dataRoot);

  const tapes: TapetownTape[] = TAPES.map((t, i) => ({ ...t, id: i + 1, dir: join(tapesDir, t.name), files: [] }));
  const targets: TapetownTarget[] = [];
  for (const [i, spec] of specs.entries()) {
    const path = join(dataRoot, spec.rel);
    // tapetown's get_excluded_subdirs: the targets inside this one, left out of its scan and its tar.
    const children = specs.map((s) => join(dataRoot, s.rel)).filter((p) => p.startsWith(`${path}/`));
    const parent = targets.filter((t) => path.startsWith(`${t.path}/`)).sort((a, b) => b.path.length - a.path.length)[0];
    const files = spec.scan ? [] : [...(await scan(path, children)).values()].map((f) => ({ ...f, name: relative(path, f.name) }));
    const t: TapetownTarget = { id: i + 1, path, files: files.sort((a, b) => (a.name < b.name ? -1 : 1)) };
    if (schema === 'current') t.scanned = spec.scan === 'never' ? 0 : 1;
    if (schema === 'current' && parent) t.parentId = parent.id;
    if (spec.backup) t.backup = { tape: TAPES[spec.backup[0]]!.name, fileNumber: spec.backup[1], status: spec.backup[2] };
    targets.push(t);
  }

  // Tape file N is `ssh HOST tar -c --exclude=CHILD... /abs/target > /dev/nst0`: GNU format, blocking
  // factor 20, member names without the leading '/' (tar says "Removing leading `/'" on stderr).
  const tarOf = async (t: TapetownTarget) => {
    const excludes = targets.filter((c) => c.path.startsWith(`${t.path}/`)).map((c) => `--exclude=${c.path}`);
    return (await run('tar', ['-c', '--format=gnu', '-f', '-', ...excludes, t.path], { encoding: 'buffer', maxBuffer: 1 << 28 })).stdout;
  };
  const tapeFile = (tape: TapetownTape, n: number) => join(tape.dir, `file${String(n).padStart(5, '0')}.tar`);
  for (const tape of tapes) await mkdir(tape.dir, { recursive: true });
  const written = targets.filter((t) => t.backup && t.backup.fileNumber >= 0).sort((a, b) => a.backup!.fileNumber - b.backup!.fileNumber);
  for (const t of written) {
    const tape = tapes.find((x) => x.name === t.backup!.tape)!;
    await writeFile(tapeFile(tape, t.backup!.fileNumber), await tarOf(t));
    tape.files.push(tapeFile(tape, t.backup!.fileNumber));
  }
  // The assigned target's archive failed at the end of the tape: its first records are on the tape,
  // as the file after the last recorded one, and the backups row stayed `assigned`.
  const assigned = targets.find((t) => t.backup?.status === 'assigned')!;
  const ptape = tapes.find((x) => x.name === assigned.backup!.tape)!;
  const full = await tarOf(assigned);
  if (full.length <= PARTIAL_BYTES) throw new Error('the partial target is too small to cut');
  const partial = { tape: ptape.name, fileNumber: ptape.files.length, path: tapeFile(ptape, ptape.files.length), targetPath: assigned.path };
  await writeFile(partial.path, full.subarray(0, PARTIAL_BYTES));

  const cur = schema === 'current';
  const sql = [
    'BEGIN;',
    'create table tapes (id integer primary key autoincrement, name varchar(256) unique, serial varchar(256) unique, status varchar(16), online integer not null default 0);',
    `create table targets (id integer primary key autoincrement, name varchar(2048) unique${cur ? ', scanned integer default 0, parent_id integer default null' : ''});`,
    'create table files (id integer primary key autoincrement, target_id integer, name varchar(512), md5sum varchar(32), size_kb integer, UNIQUE (target_id, name));',
    'create table backups (id integer primary key autoincrement, target_id integer, tape_id integer, file_number integer, status varchar(16));',
    ...tapes.map((t) => `insert into tapes (name, serial, status, online) ${values(t.name, t.serial, t.status, t.online)}`),
    ...targets.map((t) =>
      cur ? `insert into targets (name, scanned, parent_id) ${values(t.path, t.scanned!, t.parentId ?? null)}` : `insert into targets (name) ${values(t.path)}`,
    ),
    ...targets.flatMap((t) => t.files.map((f) => `insert into files (target_id, name, md5sum, size_kb) ${values(t.id, f.name, f.md5, f.sizeKb)}`)),
    ...targets.flatMap(({ id, backup: b }) => {
      const tapeId = tapes.find((x) => x.name === b?.tape)?.id;
      return b && tapeId ? [`insert into backups (target_id, tape_id, file_number, status) ${values(id, tapeId, b.fileNumber, b.status)}`] : [];
    }),
    'COMMIT;',
  ].join('\n');
  await sqlite(dbPath, sql);

  const fx: TapetownFixture = { dir, schema, dbPath, dataRoot, tapesDir, tapes, targets, partial, quirks: QUIRKS[schema] };
  if (opts.broken) fx.broken = await corruptDatabase(fx);
  return fx;
}

/** Adds rows a reader must reject: a backups row naming a tape that does not exist, and a 31-digit md5. */
export async function corruptDatabase(fx: Pick<TapetownFixture, 'dbPath' | 'dataRoot'>): Promise<BrokenRows> {
  const broken: BrokenRows = {
    missingTapeId: 99,
    ghostTarget: join(fx.dataRoot, 'act/ghost'),
    shortMd5: { target: join(fx.dataRoot, 'act/calib'), name: 'short-md5.txt', md5: '0123456789abcdef0123456789abcde' },
  };
  const { ghostTarget, shortMd5: s } = broken;
  await sqlite(
    fx.dbPath,
    `insert into targets (name) values (${q(ghostTarget)});
     insert into backups (target_id, tape_id, file_number, status) select id, ${broken.missingTapeId}, 7, 'recorded' from targets where name = ${q(ghostTarget)};
     insert into files (target_id, name, md5sum, size_kb) select id, ${q(s.name)}, ${q(s.md5)}, 4 from targets where name = ${q(s.target)};`,
  );
  return broken;
}
