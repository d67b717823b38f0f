/**
 * Adopting a tapetown archive (issue 14), end to end: a tapetown archive built with the real
 * tools, its emulator directories imported into the virtual tape library as variable-block
 * tapes, `adopt_tapetown --dry-run` then for real, `confirm --all` on every adopted tape through
 * the real agent (every md5 checked, the exact manifest recorded), where_is inside a nested
 * target, a flipped byte found, and the old tapes untouched.
 */
import { createHash, randomUUID } from 'node:crypto';
import { UpdateItemCommand } from '@aws-sdk/client-dynamodb';
import { marshall } from '@aws-sdk/util-dynamodb';
import { writeTask } from '../../src/lib/protocol/build-tasks.ts';
import { execFile } from 'node:child_process';
import { readdir, readFile, rename } from 'node:fs/promises';
import { promisify } from 'node:util';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createHarness, type Harness } from '../support/agent-harness.ts';
import { makeTapetownArchive, type TapetownFixture } from '../support/tapetown-fixture.ts';
import { comparable, snapshotTree } from '../support/tree-snapshot.ts';
import { createTestStack, type TestStack } from '../support/test-stack.ts';

const run = promisify(execFile);
let stack: TestStack;
let h: Harness;
let fx: TapetownFixture;
beforeAll(async () => {
  stack = await createTestStack();
  h = await createHarness(stack);
  await h.startAgent();
  fx = await makeTapetownArchive(join(h.dir, 'tapetown'));
}, 120_000);
afterAll(async () => {
  await h?.close();
  await stack?.close();
});

/** sha256 of every file of the adopted tapes: their emulator directories and the library's copies of them. */
async function fingerprints(): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  for (const root of [fx.tapesDir, join(h.dir, 'vtl', 'tapes')])
    for (const tape of fx.tapes.map((t) => t.name))
      for (const f of (await readdir(join(root, tape))).filter((n) => n !== 'meta.json').sort())
        out[join(root, tape, f)] = createHash('sha256')
          .update(await readFile(join(root, tape, f)))
          .digest('hex');
  return out;
}
const ok = async (args: string[]) => {
  const r = await h.cli(args);
  expect(r.code, `${args.join(' ')}:\n${r.out}\n${r.err}`).toBe(0);
  return r;
};

describe('an adopted tapetown archive', () => {
  it('is adopted, confirmed file by file against its md5s, found by where_is, and its tapes are never written', async () => {
    for (const t of fx.tapes) await h.vtl.importTapetownTape(t.name, t.dir);
    const before = await fingerprints();
    const dry = await ok(['adopt_tapetown', fx.dbPath, '--host', 'localhost', '--copies', 'primary', '--dry-run']);
    expect(dry.out).toMatch(/dry run, nothing changed/);
    expect(await stack.ctx.catalog.listTapes()).toEqual([]);
    await ok(['adopt_tapetown', fx.dbPath, '--host', 'localhost', '--copies', 'primary']);

    // confirm --all on every adopted tape: every recorded and tapetown-confirmed file, read back here.
    for (const t of fx.tapes) {
      const r = await ok(['confirm', '--all', '--tape', t.name]);
      expect(r.out).toMatch(new RegExp(`confirm --all on ${t.name}: ${t.files.length} confirmed, 0 failed`));
    }
    for (const t of fx.targets.filter((x) => x.backup && x.backup.status !== 'assigned')) {
      const tc = (await stack.ctx.catalog.listAllTargetCopies()).find((x) => x.target.path === t.path)!;
      const legacy = tc.copies.find((c) => c.pool === 'tapetown')!;
      expect([legacy.placement, legacy.legacy]).toEqual(['confirmed', undefined]);
      const file = (await stack.ctx.catalog.getTapeFile(t.backup!.tape, t.backup!.fileNumber))!;
      expect(file.bytes).toBe((await readFile(join(fx.tapesDir, t.backup!.tape, `file${String(t.backup!.fileNumber).padStart(5, '0')}.tar`))).length);
      // The exact manifest: every file with its real size and SHA-256.
      const entries = await stack.ctx.manifests.readAll(tc.target.id, tc.target.scanId!, tc.target.manifestPages!);
      for (const f of t.files.filter((x) => x.md5 !== 'symlink')) {
        const e = entries.find((x) => x.path === f.name)!;
        const local = await readFile(join(t.path, f.name));
        expect([e.size, e.sha256, e.md5]).toEqual([local.length, createHash('sha256').update(local).digest('hex'), f.md5]);
      }
      if (!t.files.length) expect(tc.target.adopted).toMatchObject({ fileList: false, baselineFromTape: true });
    }

    // where_is inside a nested target: its own tape file, with the SHA-256 measured on tape.
    const child = fx.targets.find((t) => t.parentId !== undefined && t.files.length)!;
    const name = child.files[0]!.name;
    const found = JSON.parse((await ok(['--json', 'where_is', name.split('/').pop()!])).out);
    const m = found.matches.find((x: { dir: string }) => x.dir === child.path);
    expect(m.sha256).toBe(
      createHash('sha256')
        .update(await readFile(join(child.path, name)))
        .digest('hex'),
    );
    expect(m.copies).toContainEqual({ pool: 'tapetown', tape: child.backup!.tape, fileNumber: child.backup!.fileNumber, state: 'confirmed' });

    // tape_detail and status show an adopted tape as any other: file 0 on (no label), every file confirmed.
    const first = fx.tapes[0]!;
    const detail = await ok(['--json', 'tape_detail', first.name]);
    const rows = JSON.parse(detail.out).files as { fileNumber: number; state: string }[];
    expect(rows.map((r) => [r.fileNumber, r.state])).toEqual(first.files.map((_, i) => [i, 'confirmed']));
    expect((await ok(['status', first.name])).out).toMatch(new RegExp(`0 - ${first.files.length - 1} : confirmed`));

    // Read again (confirm --retry, as a scrub does): checked against what the first read measured; the scan stays.
    const scanBefore = (await stack.ctx.catalog.listAllTargets()).find((t) => t.path === fx.targets[0]!.path)!.scanId;
    expect((await ok(['confirm', '0', '--tape', first.name, '--retry'])).out).toMatch(/file 0 on ACT001 confirmed/);
    expect((await stack.ctx.catalog.listAllTargets()).find((t) => t.path === fx.targets[0]!.path)!.scanId).toBe(scanBefore);

    // restore: a file of the nested target, and a whole target (awkward names and all) byte-exact.
    const one = join(h.dir, 'restored-one');
    await ok(['restore', m.targetId, name, '--to', one]);
    expect(await readFile(join(one, name))).toEqual(await readFile(join(child.path, name)));
    const odd = fx.targets.find((t) => t.files.some((f) => f.name.includes('"')))!;
    const oddId = (await stack.ctx.catalog.listAllTargets()).find((t) => t.path === odd.path)!.id;
    const whole = join(h.dir, 'restored-whole');
    const restored = await ok(['restore', oddId, '--to', whole]);
    expect(restored.out).toMatch(/complete and verified/);
    expect(comparable(await snapshotTree(whole))).toEqual(comparable(await snapshotTree(odd.path)));

    // rebuild_catalog reads only tapes of this format: a tapetown tape comes back through its database.
    const rebuilt = await h.cli(['rebuild_catalog', first.name, '--merge']);
    expect(rebuilt.code).not.toBe(0);
    expect(`${rebuilt.out}\n${rebuilt.err}`).toMatch(new RegExp(`tape ${first.name} has no readable label .*adopted again from tapetown's database`));

    // Nothing on the old tapes changed, in the emulator directories or in the library.
    expect(await fingerprints()).toEqual(before);
  });

  it('gives adopted targets new-format copies, from the unchanged source or from the tapetown tape; the old copy stays as an extra', async () => {
    const before = await fingerprints();
    const idOf = async (path: string) => (await stack.ctx.catalog.listAllTargets()).find((t) => t.path === path)!.id;
    await h.vtl.createTape('N1', { capacityBytes: 1_000_000_000 });
    await ok(['open_tape', '--new', 'N1', '--pool', 'primary']);
    // Not confirmed here (tapetown's own "assigned" row): only md5s, nothing a write could check the source against.
    const bulk = fx.targets.find((t) => t.backup?.status === 'assigned' && t.files.length)!;
    const refused = await ok(['assign', 'N1', '--target', await idOf(bulk.path)]);
    expect(refused.out).toMatch(
      /not assigned: not ready: adopted from tapetown, and its file list is tapetown's \(md5s, sizes from du\): it has no tapetown copy on tape; "rescan t-/,
    );

    // From the source, unchanged since the tape was written: checked against the measured manifest while streaming.
    const odd = fx.targets.find((t) => t.files.some((f) => f.name.includes('"')))!;
    await ok(['assign', 'N1', '--target', await idOf(odd.path)]);
    // From the tapetown tape through the staging directory: the data host no longer has it.
    const calib = fx.targets.find((t) => t.files.some((f) => f.sizeKb > 100) && t.backup)!;
    const calibId = await idOf(calib.path);
    await rename(calib.path, `${calib.path}.gone`);
    const staged = await ok(['repair', '--target', calibId, '--from', 'copy']);
    expect(staged.out).toMatch(new RegExp(`${calib.backup!.tape}/${calib.backup!.fileNumber}`));
    await ok(['archive', '--all', '--pool', 'primary']);
    expect((await ok(['confirm', '--all', '--tape', 'N1'])).out).toMatch(/confirm --all on N1: 2 confirmed, 0 failed/);
    await rename(`${calib.path}.gone`, calib.path);

    for (const id of [await idOf(odd.path), calibId]) {
      const tc = (await stack.ctx.catalog.getTargetCopies(id))!;
      expect(tc.copies.map((c) => [c.pool, c.placement, c.tapeName])).toEqual([
        ['primary', 'confirmed', 'N1'],
        ['tapetown', 'confirmed', tc.copies.find((c) => c.pool === 'tapetown')!.tapeName],
      ]);
      const t = JSON.parse((await ok(['--json', 'targets', '--pool', 'primary'])).out).targets.find((x: { id: string }) => x.id === id);
      expect([t.safe, t.copiesStatus]).toEqual([true, 'safe']);
      expect(t.copies.find((c: { pool: string }) => c.pool === 'tapetown')).toMatchObject({ extra: true });
    }
    // The new copies are our own format: GNU tar lists the calib target's files under data/.
    const n1 = (await stack.ctx.catalog.listTapeFiles('N1')).find((f) => f.targetId === calibId)!;
    const listed = (await run('tar', ['-tf', join(h.dir, 'vtl', 'tapes', 'N1', `file-${String(n1.fileNumber).padStart(4, '0')}`)])).stdout;
    for (const f of calib.files) expect(listed).toContain(`data/${f.name}`);
    expect(await fingerprints()).toEqual(before);
  });

  it('a flipped byte in an adopted tape file is found by confirm, and the copy is marked bad', async () => {
    const calib = fx.targets.find((t) => t.files.some((f) => f.sizeKb > 100) && t.backup)!;
    const tar = await readFile(join(fx.tapesDir, calib.backup!.tape, `file${String(calib.backup!.fileNumber).padStart(5, '0')}.tar`));
    const big = calib.files.find((f) => f.sizeKb > 100)!;
    const offset = tar.indexOf(Buffer.from(`${calib.path.slice(1)}/${big.name}`)) + 512 + 4096;
    await h.vtl.injectFault(calib.backup!.tape, { kind: 'flip-byte', fileNumber: calib.backup!.fileNumber, offset });
    const r = await h.cli(['confirm', String(calib.backup!.fileNumber), '--tape', calib.backup!.tape, '--retry']);
    expect(r.code).not.toBe(0);
    expect(`${r.out}\n${r.err}`).toMatch(new RegExp(`${big.name}: md5 mismatch: tapetown recorded ${big.md5}`));
    const tc = (await stack.ctx.catalog.listAllTargetCopies()).find((x) => x.target.path === calib.path)!;
    expect(tc.copies.find((c) => c.pool === 'tapetown')!.placement).toBe('confirm_failed');
  });

  it('the agent refuses to write to an adopted tape even when the catalog was made to ask (defence in depth)', async () => {
    const before = await fingerprints();
    const tape = fx.tapes[1]!;
    const target = (await stack.ctx.catalog.listAllTargets()).find((t) => t.scan === 'complete' && t.adopted)!;
    const taskId = randomUUID();
    const fileNumber = (await stack.ctx.catalog.getTape(tape.name))!.nextFileNumber;
    // What no job does (the catalog's conditions refuse it): a write in flight on an adopted tape.
    await stack.clients.dynamodb.send(
      new UpdateItemCommand({
        TableName: stack.config.names.catalogTable,
        Key: marshall({ pk: `TAPE#${tape.name}`, sk: 'TAPE' }),
        UpdateExpression: 'SET writeInFlight = :w',
        ExpressionAttributeValues: marshall({ ':w': { fileNumber, targetId: target.id, taskId, startedAt: new Date().toISOString() } }),
      }),
    );
    await stack.ctx.queues.sendTask(writeTask({ taskId, issuedAt: new Date().toISOString() }, target, tape.name, fileNumber));
    const refused = await h.agents[0]!.waitForLog((l) => l.msg === 'write refused: an adopted tape is never written' && l.taskId === taskId, 30_000);
    expect(refused.tape).toBe(tape.name);
    await h.agents[0]!.waitForLog((l) => l.msg === 'task done' && l.taskId === taskId, 30_000);
    expect((await stack.ctx.catalog.getTape(tape.name))!.state).toBe('closed');
    expect(await fingerprints()).toEqual(before);
  });
});

describe('an adopted tapetown archive of the old schema (no parent_id, no scanned, a "new" row)', () => {
  let s2: TestStack;
  let h2: Harness;
  afterAll(async () => {
    await h2?.close();
    await s2?.close();
  });

  it('is adopted and every tape file confirmed against its md5s', async () => {
    s2 = await createTestStack();
    h2 = await createHarness(s2);
    await h2.startAgent();
    const old = await makeTapetownArchive(join(h2.dir, 'tapetown-old'), { schema: 'old' });
    for (const t of old.tapes) await h2.vtl.importTapetownTape(t.name, t.dir);
    const r = await h2.cli(['--json', 'adopt_tapetown', old.dbPath, '--host', 'localhost']);
    expect(r.code, r.err).toBe(0);
    const report = JSON.parse(r.out);
    expect(report.schema).toEqual({ scanned: false, parentId: false });
    for (const table of ['tapes', 'targets', 'files', 'backups'])
      expect(report.rows[table].adopted + report.rows[table].reported).toBe(report.rows[table].rows);
    for (const t of old.tapes) {
      const c = await h2.cli(['confirm', '--all', '--tape', t.name]);
      expect(c.out, c.err).toMatch(new RegExp(`confirm --all on ${t.name}: ${t.files.length} confirmed, 0 failed`));
    }
    // The "new" row (a 2018 close_tape): nothing on tape, the target waits unassigned in the current pool.
    const stray = old.targets.find((t) => t.backup?.status === 'new')!;
    const tc = (await s2.ctx.catalog.listAllTargetCopies()).find((x) => x.target.path === stray.path)!;
    expect(tc.copies.map((c) => [c.pool, c.placement])).toEqual([['default', 'unassigned']]);
  });
});
