import { describe, expect, it } from 'vitest';
import type { Tape } from '../../src/lib/domain/tape.ts';
import type { Target } from '../../src/lib/domain/target.ts';
import { planAdoption, type AdoptOptions } from '../../src/lib/tapetown/adopt-plan.ts';
import type { TapetownDatabase, TapetownFileRow } from '../../src/lib/tapetown/database.ts';

const md5 = (c: string) => c.repeat(32);

/** A database as the reader gives it: the rows, nothing else (the sqlite side is tested on real files). */
function db(over: Partial<Omit<TapetownDatabase, 'files'>> & { files?: TapetownFileRow[] } = {}): TapetownDatabase {
  const files = over.files ?? [
    { id: 1, targetId: 1, name: 'a.dat', md5: md5('a'), sizeKb: 4 },
    { id: 2, targetId: 1, name: 'link', md5: 'symlink', sizeKb: 0 },
    { id: 3, targetId: 2, name: 'b.dat', md5: md5('b'), sizeKb: 8 },
    { id: 4, targetId: 3, name: 'c.dat', md5: md5('c'), sizeKb: 1 },
  ];
  return {
    schema: { scanned: true, parentId: true },
    tapes: [
      { id: 1, name: 'TT001', serial: 'ABC001L6', status: 'closed', online: 0 },
      { id: 2, name: 'TT002', serial: '', status: 'open', online: 1 },
    ],
    targets: [
      { id: 1, name: '/mnt/act6/season4', scanned: 1, parentId: null },
      { id: 2, name: '/mnt/act6/season4/obs2/', scanned: 1, parentId: 1 },
      { id: 3, name: '/mnt/act6/flat', scanned: 1, parentId: null },
      { id: 4, name: '/mnt/act6/later', scanned: 0, parentId: null },
    ],
    backups: [
      { id: 1, targetId: 1, tapeId: 1, fileNumber: 0, status: 'confirmed' },
      { id: 2, targetId: 2, tapeId: 1, fileNumber: 1, status: 'recorded' },
      { id: 3, targetId: 3, tapeId: 2, fileNumber: -1, status: 'assigned' },
    ],
    ...over,
    fileCount: files.length,
    files: () => files,
    close: () => undefined,
  };
}

const opts = (catalog: Partial<AdoptOptions['catalog']> = {}): AdoptOptions => ({
  host: 'data1',
  pool: 'tapetown',
  policy: ['primary'],
  now: '2026-12-03T00:00:00.000Z',
  catalog: { tapes: new Map(), targets: new Map(), ...catalog },
});

describe('adopting a tapetown database (the plan)', () => {
  it('makes read-only closed tapes, targets with their policy, and a legacy copy for each recorded or confirmed row', () => {
    const p = planAdoption(db(), opts());
    expect(p.notImported).toEqual([]);
    expect(p.tapes.map((t) => [t.name, t.state, t.format, t.barcode, t.filesWritten, t.filesConfirmed, t.nextFileNumber])).toEqual([
      ['TT001', 'closed', 'tapetown', 'ABC001L6', 2, 1, 2],
      ['TT002', 'closed', 'tapetown', '', 0, 0, 0],
    ]);
    expect(p.notes).toEqual(['tape TT002 was still open in tapetown: adopted closed and read only, as every tapetown tape']);
    const [parent, child, flat, later] = p.targets;
    expect(parent!.target).toMatchObject({
      host: 'data1',
      path: '/mnt/act6/season4',
      scan: 'complete',
      excludes: ['/mnt/act6/season4/obs2'],
      copies: ['primary'],
    });
    expect(child!.target.path).toBe('/mnt/act6/season4/obs2');
    expect(parent!.entries.map((e) => [e.path, e.type, e.size, e.md5])).toEqual([
      ['a.dat', 'file', 4096, md5('a')],
      ['link', 'symlink', 0, undefined],
    ]);
    const placements = (i: number) => p.targets[i]!.copies.map((c) => [c.pool, c.placement, c.tapeName, c.fileNumber, c.legacy]);
    expect(placements(0)).toEqual([
      ['primary', 'unassigned', undefined, undefined, undefined],
      ['tapetown', 'confirmed', 'TT001', 0, 'tapetown-md5'],
    ]);
    expect(placements(1)[1]).toEqual(['tapetown', 'archived', 'TT001', 1, 'tapetown-md5']);
    // assigned (file -1): nothing on tape; the target waits, unassigned, in the current pools.
    expect(placements(2)).toEqual([['primary', 'unassigned', undefined, undefined, undefined]]);
    expect(flat!.backupRows).toBe(1);
    expect(later!.target.scan).toBe('pending');
    expect(parent!.tapeFile).toMatchObject({ tapeName: 'TT001', fileNumber: 0, state: 'confirmed', format: 'tapetown', scanId: 'tapetown-1' });
  });

  it('reports every broken row with its reason and imports the rest: the counts add up to the rows', () => {
    const files = [
      { id: 1, targetId: 1, name: 'a.dat', md5: md5('a').slice(1), sizeKb: 4 },
      { id: 2, targetId: 1, name: 'ok.dat', md5: md5('d'), sizeKb: 4 },
      { id: 3, targetId: 9, name: 'x', md5: md5('e'), sizeKb: 1 },
      { id: 4, targetId: 9, name: 'y', md5: md5('e'), sizeKb: 1 },
      { id: 5, targetId: 3, name: '../up', md5: md5('f'), sizeKb: 1 },
    ];
    const broken = db({
      files,
      tapes: [...db().tapes, { id: 3, name: 'bad name!', serial: 'x', status: 'closed', online: 0 }],
      backups: [
        { id: 1, targetId: 1, tapeId: 1, fileNumber: 0, status: 'confirmed' },
        { id: 2, targetId: 2, tapeId: 7, fileNumber: 3, status: 'recorded' },
        { id: 3, targetId: 3, tapeId: 1, fileNumber: 0, status: 'recorded' },
        { id: 4, targetId: 1, tapeId: 2, fileNumber: 5, status: 'recorded' },
        { id: 5, targetId: 4, tapeId: 1, fileNumber: 9, status: 'lost' },
      ],
    });
    const p = planAdoption(broken, opts());
    expect(p.notImported.map((n) => [n.table, n.id, n.count ?? 1])).toEqual([
      ['tapes', 3, 1],
      ['files', 1, 1],
      ['files', 3, 2],
      ['files', 5, 1],
      ['backups', 4, 1],
      ['backups', 2, 1],
      ['backups', 3, 1],
      ['backups', 5, 1],
    ]);
    const why = Object.fromEntries(p.notImported.map((n) => [`${n.table}${n.id}`, n.reason]));
    expect(why.files1).toMatch(/md5 "a{31}" of a.dat is not 32 hex digits/);
    expect(why.backups2).toMatch(/names tape id 7, which is not in the tapes table/);
    expect(why.backups3).toMatch(/file 0 of tape TT001 is claimed by an earlier backups row/);
    expect(why.backups4).toMatch(/earlier backups row on tape \(1\): tapetown kept one copy/);
    expect(why.tapes3).toMatch(/tape name "bad name!" is invalid/);
    // Every row: imported (entries, backup rows of targets) or reported.
    const entries = p.targets.reduce((n, t) => n + t.entries.length, 0);
    const reportedFiles = p.notImported.filter((n) => n.table === 'files').reduce((n, r) => n + (r.count ?? 1), 0);
    expect(entries + reportedFiles).toBe(files.length);
    const backups = p.targets.reduce((n, t) => n + t.backupRows, 0) + p.notImported.filter((n) => n.table === 'backups').length;
    expect(backups).toBe(5);
  });

  it('an old database (no scanned, no parent_id): every target was scanned, nesting is only noted', () => {
    const old = db({
      schema: { scanned: false, parentId: false },
      targets: db().targets.map(({ id, name }) => ({ id, name })),
    });
    const p = planAdoption(old, opts());
    expect(p.targets.every((t) => t.target.scan === 'complete' && !t.target.excludes)).toBe(true);
    expect(p.notes).toContain(
      'target /mnt/act6/season4/obs2 lies inside target /mnt/act6/season4, and this database has no parent_id: tapetown wrote its files on both',
    );
    // A scanned target without files rows (tapetown's --no-scan) has no file list: confirm takes the baseline.
    expect(p.targets[3]!.target.adopted).toEqual({ from: 'tapetown', id: 4, fileList: false });
  });

  it('what the catalog has: adopted before is left alone, a tape or target of its own under the same name is reported', () => {
    const first = planAdoption(db(), opts());
    const again = planAdoption(
      db(),
      opts({ tapes: new Map(first.tapes.map((t) => [t.name, t])), targets: new Map(first.targets.map((t) => [t.target.id, t.target])) }),
    );
    expect(again.before).toEqual({ tapes: ['TT001', 'TT002'], targets: first.targets.map((t) => t.target.id) });
    expect(again.notImported).toEqual([]);

    const own = { ...first.tapes[0]!, format: undefined, tapetown: undefined } as Tape;
    const ownTarget = { ...first.targets[2]!.target, adopted: undefined } as Target;
    const clash = planAdoption(db(), opts({ tapes: new Map([['TT001', own]]), targets: new Map([[ownTarget.id, ownTarget]]) }));
    expect(clash.notImported.map((n) => [n.table, n.id])).toEqual([
      ['tapes', 1],
      ['targets', 3],
      ['files', 4],
      ['backups', 3],
      ['backups', 1],
      ['backups', 2],
    ]);
    expect(clash.notImported[0]!.reason).toMatch(/a tape named TT001 is in the catalog already: not adopted/);
  });

  it('one directory written two ways, a name not UTF-8, files of a target never scanned, "./" in a name: each is handled and said', () => {
    const files = [
      { id: 1, targetId: 1, name: './a.dat', md5: md5('a'), sizeKb: 4 },
      { id: 2, targetId: 4, name: 'x.dat', md5: md5('b'), sizeKb: 4 },
      { id: 3, targetId: 1, name: Buffer.from([0x66, 0xe9]), md5: md5('c'), sizeKb: 1 },
    ];
    const p = planAdoption(
      db({
        files,
        targets: [
          ...db().targets,
          { id: 5, name: '/mnt/act6/flat/', scanned: 1, parentId: null },
          { id: 6, name: null, badName: '/mnt/f\u00e9', scanned: 1, parentId: null },
        ],
      }),
      opts(),
    );
    const why = Object.fromEntries(p.notImported.map((n) => [`${n.table}${n.id}`, n.reason]));
    expect(why.targets5).toBe('/mnt/act6/flat is also targets row 3 (the same directory written two ways)');
    expect(why.targets6).toMatch(/is not valid UTF-8/);
    expect(why.files2).toMatch(/was never scanned in tapetown: scanned here once adopted/);
    const parent = p.targets.find((t) => t.target.path === '/mnt/act6/season4')!;
    // The name's exact bytes are kept (Latin-1 stand-in in path, the bytes in rawPath).
    expect(parent.entries.map((e) => [e.path, e.rawPath])).toEqual([
      ['a.dat', undefined],
      ['f\u00e9', Buffer.from([0x66, 0xe9]).toString('base64')],
    ]);
  });
});
