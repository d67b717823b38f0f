/**
 * The tapetown fixture (test/support/tapetown-fixture.ts) checked with the real tools: what sqlite3,
 * GNU tar and md5sum say about it, not what the generator says it wrote.
 */
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { lstat, mkdir, mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeTapetownArchive, type TapetownFixture } from '../support/tapetown-fixture.ts';

const run = promisify(execFile);

async function query(db: string, sql: string): Promise<Record<string, any>[]> {
  const { stdout } = await run('sqlite3', ['-json', db, sql]);
  return stdout.trim() ? JSON.parse(stdout) : [];
}
async function members(tarPath: string): Promise<string[]> {
  return (await run('tar', ['-tf', tarPath])).stdout.split('\n').filter(Boolean);
}
const tapeFile = (fx: TapetownFixture, tape: string, n: number) => join(fx.tapesDir, tape, `file${String(n).padStart(5, '0')}.tar`);
/** The tape files the database knows (recorded or confirmed), as sqlite3 reads them. */
async function written(fx: TapetownFixture): Promise<{ id: number; path: string; tar: string; status: string }[]> {
  const rows = await query(
    fx.dbPath,
    'select T.id, T.name, P.name as tape, B.file_number, B.status from backups B join targets T on T.id = B.target_id join tapes P on P.id = B.tape_id ' +
      "where B.status in ('recorded', 'confirmed') order by P.id, B.file_number",
  );
  return rows.map((r) => ({ id: r.id, path: r.name, tar: tapeFile(fx, r.tape, r.file_number), status: r.status }));
}

let base: string;
beforeAll(async () => {
  base = await mkdtemp(join(tmpdir(), 'tapetown-fixture-'));
});
afterAll(async () => {
  await rm(base, { recursive: true, force: true });
});

describe.each(['current', 'old'] as const)('a tapetown archive, %s schema', (schema) => {
  let fx: TapetownFixture;
  beforeAll(async () => {
    fx = await makeTapetownArchive(join(base, schema), { schema });
  });

  it('has the columns of its age', async () => {
    const cols = (await query(fx.dbPath, 'PRAGMA table_info(targets)')).map((r) => r.name);
    expect(cols).toEqual(schema === 'current' ? ['id', 'name', 'scanned', 'parent_id'] : ['id', 'name']);
  });

  it('holds three tapes (one with an empty serial) and every backups status of its age', async () => {
    expect(await query(fx.dbPath, 'select name, serial, status, online from tapes order by id')).toEqual([
      { name: 'ACT001', serial: 'HF1001L6', status: 'closed', online: 0 },
      { name: 'ACT002', serial: '', status: 'closed', online: 0 },
      { name: 'ACT003', serial: 'HF1003L6', status: 'open', online: 1 },
    ]);
    const statuses = (await query(fx.dbPath, 'select distinct status from backups order by status')).map((r) => r.status);
    expect(statuses).toEqual(schema === 'current' ? ['assigned', 'confirmed', 'recorded'] : ['assigned', 'confirmed', 'new', 'recorded']);
    expect(await query(fx.dbPath, "select file_number from backups where status in ('assigned', 'new')")).toEqual(
      schema === 'current' ? [{ file_number: -1 }] : [{ file_number: -1 }, { file_number: -1 }],
    );
    expect((await written(fx)).length).toBeGreaterThanOrEqual(5);
  });

  it('has an unscanned target and a --no-scan one with a tape file but no files rows (current schema; the old one has no scanned column)', async () => {
    if (schema === 'old') {
      expect((await query(fx.dbPath, 'select count(*) as n from targets T where not exists (select 1 from files F where F.target_id = T.id)'))[0]!.n).toBe(0);
      return;
    }
    const rows = await query(
      fx.dbPath,
      'select T.name, T.scanned, B.status, (select count(*) from files F where F.target_id = T.id) as n from targets T left join backups B on B.target_id = T.id where n = 0 order by T.id',
    );
    expect(rows).toEqual([
      { name: join(fx.dataRoot, 'act/rawdump'), scanned: 1, status: 'recorded', n: 0 },
      { name: join(fx.dataRoot, 'act/incoming'), scanned: 0, status: null, n: 0 },
    ]);
    // The name tapetown's scan could not have taken, as `tar -t` escapes it.
    expect(await members(tapeFile(fx, 'ACT002', 1))).toContain(`${fx.dataRoot.slice(1)}/act/rawdump/back\\\\slash.txt`);
  });

  it('has GNU tars of the targets: members are the target path without its leading /, the regular members are the files rows', async () => {
    for (const w of await written(fx)) {
      const raw = await readFile(w.tar);
      expect(raw.length % 10240).toBe(0);
      expect(raw.subarray(257, 265).toString('latin1')).toBe('ustar  \0');
      const prefix = w.path.slice(1);
      const list = await members(w.tar);
      // Fixed mtimes, so the tar is the same whenever it is built.
      const verbose = (await run('tar', ['-tvf', w.tar, '--full-time'], { env: { ...process.env, TZ: 'UTC' } })).stdout.trim().split('\n');
      expect(verbose.filter((l) => !l.includes(' 2019-06-01 00:00:00 '))).toEqual([]);
      expect(list[0]).toBe(`${prefix}/`);
      for (const m of list) expect(m.startsWith(`${prefix}/`)).toBe(true);
      const rows = (await query(fx.dbPath, `select name from files where target_id = ${w.id} order by name`)).map((r) => r.name);
      if (rows.length === 0) continue; // --no-scan
      // Old schema: flat targets, so the base names are the names relative to the target.
      expect(
        list
          .filter((m) => !m.endsWith('/'))
          .map((m) => m.slice(prefix.length + 1))
          .sort(),
      ).toEqual(rows.sort());
    }
  });

  it("leaves a child target's subtree out of its parent's tar (the old schema: flat targets, none inside another)", async () => {
    if (schema === 'old') {
      const paths = (await query(fx.dbPath, 'select name from targets')).map((r) => String(r.name));
      expect(paths.filter((p) => paths.some((q) => p.startsWith(`${q}/`)))).toEqual([]);
      return;
    }
    const rows = await query(fx.dbPath, 'select C.name as child, P.name as parent from targets C join targets P on P.id = C.parent_id');
    expect(rows).toEqual([{ child: join(fx.dataRoot, 'act/season4/obs2'), parent: join(fx.dataRoot, 'act/season4') }]);
    const all = await written(fx);
    const parentTar = all.find((w) => w.path === rows[0]!.parent)!.tar;
    const childTar = all.find((w) => w.path === rows[0]!.child)!.tar;
    const childPrefix = `${rows[0]!.child.slice(1)}/`;
    expect((await members(childTar)).filter((m) => m.startsWith(childPrefix)).length).toBeGreaterThan(2);
    expect((await members(parentTar)).filter((m) => m.startsWith(childPrefix) || m === childPrefix.slice(0, -1))).toEqual([]);
    expect(await members(parentTar)).toContain(`${rows[0]!.parent.slice(1)}/obs1/frame-000.dat`);
  });

  it('gives md5sum of every extracted file of a confirmed target the md5 of its files row', async () => {
    let checked = 0;
    for (const w of (await written(fx)).filter((x) => x.status === 'confirmed')) {
      const out = join(base, `${schema}-x${w.id}`);
      await mkdir(out);
      await run('tar', ['-xf', w.tar, '-C', out]);
      for (const f of await query(fx.dbPath, `select name, md5sum, size_kb from files where target_id = ${w.id}`)) {
        const path = join(out, w.path, f.name);
        if (f.md5sum === 'symlink') {
          expect((await lstat(path)).isSymbolicLink()).toBe(true);
          expect(f.size_kb).toBe(0);
          continue;
        }
        expect(f.md5sum).toMatch(/^[0-9a-f]{32}$/);
        expect((await run('md5sum', [path])).stdout.slice(0, 32)).toBe(f.md5sum);
        expect(f.size_kb).toBe(Number((await run('du', ['-k', join(w.path, f.name)])).stdout.split('\t')[0]));
        checked++;
      }
    }
    expect(checked).toBeGreaterThanOrEqual(5);
    const big = await query(fx.dbPath, "select size_kb from files where name = 'big.bin'");
    expect(big[0]!.size_kb).toBeGreaterThanOrEqual(293); // 300,000 bytes allocate at least 293 KiB
  });

  it('has a partial tar after the last recorded file of a tape, unknown to the database, that tar cannot list', async () => {
    const [last] = await query(fx.dbPath, "select max(file_number) as n from backups B join tapes P on P.id = B.tape_id where P.name = 'ACT003'");
    const path = tapeFile(fx, 'ACT003', last!.n + 1);
    expect(fx.partial.path).toBe(path);
    expect((await readdir(join(fx.tapesDir, 'ACT003'))).sort()).toEqual(['file00000.tar', 'file00001.tar']);
    expect((await readFile(path)).length).toBe(30720);
    const err = await run('tar', ['-tf', path]).then(
      () => null,
      (e: { code: number; stderr: string }) => e,
    );
    expect(err?.code).not.toBe(0);
    expect(err?.stderr).toContain('Unexpected EOF');
  });

  it('has a target whose member names need a GNU ././@LongLink entry', async () => {
    const w = (await written(fx)).find((x) => x.path.includes('observation_run'))!;
    expect((await readFile(w.tar)).includes(Buffer.from('././@LongLink'))).toBe(true);
    expect(Math.max(...(await members(w.tar)).map((m) => m.length))).toBeGreaterThan(100);
  });

  it('stores the awkward names tapetown could take as they are', async () => {
    const rows = await query(fx.dbPath, `select F.name from files F join targets T on T.id = F.target_id where T.name like '%/act/oddnames' order by F.name`);
    const names = rows.map((r) => r.name);
    expect(names).toEqual(
      schema === 'current' ? ['-rf.txt', 'cost$HOME.txt', "it's.txt", 'say "hi".txt', 'two words.txt'] : ['-rf.txt', 'cost$HOME.txt', 'latest'],
    );
    expect(fx.quirks.length).toBeGreaterThan(0);
  });

  it('is the same byte for byte when built again in the same place', async () => {
    const digest = async () => {
      const h = createHash('sha256');
      for (const tape of fx.tapes) for (const f of (await readdir(tape.dir)).sort()) h.update(f).update(await readFile(join(tape.dir, f)));
      return h.update((await run('sqlite3', [fx.dbPath, '.dump'])).stdout).digest('hex');
    };
    const before = await digest();
    await rm(fx.dir, { recursive: true });
    fx = await makeTapetownArchive(fx.dir, { schema });
    expect(await digest()).toBe(before);
  });
});

describe('a broken tapetown database', () => {
  it('has a backups row naming a missing tape and a files row with a 31-character md5', async () => {
    const fx = await makeTapetownArchive(join(base, 'broken'), { broken: true });
    expect(
      await query(fx.dbPath, 'select T.name, B.tape_id from backups B join targets T on T.id = B.target_id where B.tape_id not in (select id from tapes)'),
    ).toEqual([{ name: join(fx.dataRoot, 'act/ghost'), tape_id: 99 }]);
    expect(await query(fx.dbPath, 'select name, md5sum from files where length(md5sum) != 32 and md5sum != "symlink"')).toEqual([
      { name: 'short-md5.txt', md5sum: '0123456789abcdef0123456789abcde' },
    ]);
  });
});
