import { createHash } from 'node:crypto';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { main } from '../../src/cli/run-job.ts';
import { snapshotCatalog } from '../support/catalog-helpers.ts';
import { makeTapetownArchive, type TapetownFixture } from '../support/tapetown-fixture.ts';
import { createTestStack, type TestStack } from '../support/test-stack.ts';

let stack: TestStack;
let dir: string;
beforeAll(async () => {
  stack = await createTestStack();
  dir = await mkdtemp(join(tmpdir(), 'adopt-'));
});
afterAll(async () => {
  await stack?.close();
  if (dir) await rm(dir, { recursive: true, force: true });
});

async function cli(args: string[]) {
  const out: string[] = [];
  const err: string[] = [];
  const code = await main(args, { out: (s) => out.push(s), err: (s) => err.push(s), env: stack.env });
  return { code, out: out.join('\n'), err: err.join('\n') };
}
const sha = async (p: string) =>
  createHash('sha256')
    .update(await readFile(p))
    .digest('hex');
const adopt = (fx: TapetownFixture, ...more: string[]) => cli(['--json', 'adopt_tapetown', fx.dbPath, '--host', 'data1', '--copies', 'primary', ...more]);

describe('adopt_tapetown', () => {
  it('dry run changes nothing; the real run brings tapes, targets, files and copies in; a second run changes nothing', async () => {
    const fx = await makeTapetownArchive(join(dir, 'current'));
    const dbBefore = await sha(fx.dbPath);
    const empty = await snapshotCatalog(stack);

    const dry = await adopt(fx, '--dry-run');
    expect(dry.code).toBe(0);
    const plan = JSON.parse(dry.out);
    expect(await snapshotCatalog(stack)).toEqual(empty);
    expect(plan.rows).toEqual({
      tapes: { rows: 3, adopted: 3, before: 0, reported: 0 },
      targets: { rows: fx.targets.length, adopted: fx.targets.length, before: 0, reported: 0 },
      files: { rows: fx.targets.reduce((n, t) => n + t.files.length, 0), adopted: fx.targets.reduce((n, t) => n + t.files.length, 0), before: 0, reported: 0 },
      backups: { rows: fx.targets.filter((t) => t.backup).length, adopted: fx.targets.filter((t) => t.backup).length, before: 0, reported: 0 },
    });
    expect(plan.notes).toContain('tape ACT003 was still open in tapetown: adopted closed and read only, as every tapetown tape');

    const real = await adopt(fx);
    expect(real.code).toBe(0);
    expect(JSON.parse(real.out).rows).toEqual(plan.rows);
    const tapes = await stack.ctx.catalog.listTapes();
    expect(tapes.map((t) => [t.name, t.state, t.format, t.pool, t.barcode])).toEqual([
      ['ACT001', 'closed', 'tapetown', 'tapetown', 'HF1001L6'],
      ['ACT002', 'closed', 'tapetown', 'tapetown', ''],
      ['ACT003', 'closed', 'tapetown', 'tapetown', 'HF1003L6'],
    ]);
    // Every target, with its copies as the backups rows say, and the files with their md5.
    for (const t of fx.targets) {
      const all = await stack.ctx.catalog.listAllTargetCopies();
      const tc = all.find((x) => x.target.path === t.path)!;
      expect(tc.target.host).toBe('data1');
      const legacy = tc.copies.find((c) => c.pool === 'tapetown');
      const want = t.backup && t.backup.status !== 'assigned' ? { confirmed: 'confirmed', recorded: 'archived' }[t.backup.status as 'confirmed'] : undefined;
      expect([legacy?.placement, legacy?.tapeName, legacy?.fileNumber]).toEqual(
        want ? [want, t.backup!.tape, t.backup!.fileNumber] : [undefined, undefined, undefined],
      );
      expect(tc.copies.find((c) => c.pool === 'primary')?.placement).toBe('unassigned');
      if (t.files.length) {
        const entries = await stack.ctx.manifests.readAll(tc.target.id, tc.target.scanId!, tc.target.manifestPages!);
        expect(entries.map((e) => [e.path, e.md5 ?? 'symlink', e.size]).sort()).toEqual(t.files.map((f) => [f.name, f.md5, f.sizeKb * 1024]).sort());
      }
      const children = fx.targets.filter((c) => c.parentId === t.id).map((c) => c.path);
      expect(tc.target.excludes ?? []).toEqual(children);
    }
    // where_is finds a file of a nested target, on its own tape file.
    const child = fx.targets.find((t) => t.parentId !== undefined && t.files.length)!;
    const found = JSON.parse((await cli(['--json', 'where_is', child.files[0]!.name.split('/').pop()!])).out);
    const copies = found.matches.flatMap((m: { dir: string; copies: { tape?: string; fileNumber?: number }[] }) =>
      m.copies.map((c) => [m.dir, c.tape, c.fileNumber]),
    );
    expect(copies).toContainEqual([child.path, child.backup!.tape, child.backup!.fileNumber]);

    expect((await cli(['tapes'])).out).toMatch(/ACT001 .*closed \(tapetown, read only\)/);
    const after = await snapshotCatalog(stack);
    const again = await adopt(fx);
    expect(JSON.parse(again.out).rows.targets).toEqual({ rows: fx.targets.length, adopted: 0, before: fx.targets.length, reported: 0 });
    expect(await snapshotCatalog(stack)).toEqual(after);
    expect(await sha(fx.dbPath)).toBe(dbBefore); // read only

    // Nothing may ever be written to an adopted tape.
    for (const [args, what] of [
      [['assign', 'ACT001'], /cannot assign targets to tape ACT001: tape ACT001 was written by tapetown and adopted read only/],
      [['open_tape', 'ACT002'], /cannot open tape ACT002 for writing: .*adopted read only/],
      [['enable_tape', 'ACT001'], /cannot enable tape ACT001 for writing/],
      [['remove_tape', 'ACT003'], /cannot remove tape ACT003/],
      [['snapshot_catalog', '--tape', 'ACT001'], /cannot append a catalog snapshot to tape ACT001/],
      [['open_tape', '--new', 'ACT001'], /cannot open tape ACT001 for writing: .*adopted read only/],
      [['archive', '--pool', 'tapetown'], /pool tapetown has no online tape/],
    ] as const) {
      const r = await cli([...args]);
      expect(r.code, args.join(' ')).not.toBe(0);
      expect(r.err, args.join(' ')).toMatch(what);
    }
    // Below the jobs, the catalog's own conditions refuse a write or a snapshot on an adopted tape.
    const act1 = (await stack.ctx.catalog.getTape('ACT001'))!;
    const now = new Date().toISOString();
    await expect(stack.ctx.catalog.startSnapshot(act1, { taskId: 'x', fileNumber: act1.nextFileNumber, startedAt: now }, now)).rejects.toThrow();
    expect(await snapshotCatalog(stack)).toEqual(after);
  });

  it('a broken database is adopted with every broken row reported, none dropped', async () => {
    const fx = await makeTapetownArchive(join(dir, 'broken'), { broken: true });
    // (Its tapes have the names and ids of the first test's: adopted before, so the same --host and --pool.)
    const clash = await cli(['adopt_tapetown', fx.dbPath, '--host', 'data2', '--pool', 'legacy', '--copies', 'primary', '--dry-run']);
    expect(clash.code).toBe(1);
    expect(clash.err).toMatch(/adopted before with tape ACT001 in pool tapetown on host data1, .*run it again with the same --pool and --host/);
    const inPolicy = await cli(['adopt_tapetown', fx.dbPath, '--host', 'data1', '--copies', 'primary,tapetown', '--dry-run']);
    expect(inPolicy.err).toMatch(/--copies names pool tapetown, the pool the tapetown tapes go to/);
    const r = await cli(['adopt_tapetown', fx.dbPath, '--host', 'data1', '--copies', 'primary', '--dry-run']);
    expect(r.code, r.err).toBe(0);
    expect(r.out).toMatch(/dry run, nothing changed/);
    expect(r.out).toMatch(new RegExp(`backups row \\d+: it names tape id ${fx.broken!.missingTapeId}, which is not in the tapes table`));
    expect(r.out).toMatch(new RegExp(`files row \\d+: md5 "${fx.broken!.shortMd5.md5}" of ${fx.broken!.shortMd5.name} is not 32 hex digits`));
    expect(r.out).toMatch(/files: \d+ row\(s\): \d+ to adopt, 0 adopted before, 1 not imported/);
    expect(r.out).toMatch(/tapes: 3 row\(s\): 0 to adopt, 3 adopted before, 0 not imported/);
    const bad = await cli(['adopt_tapetown', join(dir, 'nope.sqlite'), '--host', 'h']);
    expect(bad.code).not.toBe(0);
    expect(bad.err).toMatch(/nope.sqlite does not exist; give the path of the tapetown database/);
    const notDb = await cli(['adopt_tapetown', fx.tapes[0]!.files[0]!, '--host', 'h']);
    expect(notDb.err).toMatch(/is not an sqlite database/);
  });
});
