/**
 * A catalog written by release 0.3 (test/fixtures/catalog-0.3: both tables item by item, and
 * the virtual tape they describe, made by test/support/make-catalog-fixture.ts) is loaded into
 * fresh tables. Jobs that read copies refuse until `migrate` has run (changing nothing);
 * `migrate` upgrades it once (a second run changes nothing); then the seed's workflow goes on:
 * the archived file is confirmed, the assigned targets are archived after the files already on
 * tape, the next tape takes the rest, a second pool gets a copy of everything, and every tape
 * file, old and new, reads back with GNU tar equal to its source.
 */
import { cp, readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { BatchWriteItemCommand } from '@aws-sdk/client-dynamodb';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createHarness, type Harness } from '../support/agent-harness.ts';
import { FIXTURE_ROOT, makeFixtureTarget } from '../support/fixture-tree.ts';
import { itemsFromJson } from '../support/dynamodb-json.ts';
import { extractWithGnuTar, treeDigest } from '../support/sample-data.ts';
import { createTestStack, type TestStack } from '../support/test-stack.ts';
import { snapshotCatalog } from '../support/catalog-helpers.ts';

const FIXTURE = join(process.cwd(), 'test/fixtures/catalog-0.3');
const BLOCK_SIZE = 16 * 1024; // what the fixture's tapes were written with

let stack: TestStack;
let h: Harness;

async function load(file: string, table: string): Promise<void> {
  const items = itemsFromJson(await readFile(join(FIXTURE, file), 'utf8'));
  for (let i = 0; i < items.length; i += 25) {
    const out = await stack.ctx.catalog.db.send(
      new BatchWriteItemCommand({ RequestItems: { [table]: items.slice(i, i + 25).map((Item) => ({ PutRequest: { Item } })) } }),
    );
    expect(Object.keys(out.UnprocessedItems ?? {})).toEqual([]);
  }
}

beforeAll(async () => {
  stack = await createTestStack();
  h = await createHarness(stack);
  await load('catalog.json', stack.config.names.catalogTable);
  await load('manifests.json', stack.config.names.manifestTable);
  for (let n = 0; n < 5; n++) await makeFixtureTarget(n);
  await cp(join(FIXTURE, 'tapes'), join(h.vtl.rootDir, 'tapes'), { recursive: true });
  await h.startAgent({ blockSize: BLOCK_SIZE });
});
afterAll(async () => {
  await h?.close();
  await stack?.close();
  await rm(FIXTURE_ROOT, { recursive: true, force: true });
});

interface Row {
  path: string;
  status: string;
  tape?: string;
  fileNumber?: number;
  safe: boolean;
  copies: { pool: string; status: string; tape?: string; fileNumber?: number }[];
}
const targets = async () => JSON.parse((await h.cli(['--json', 'targets'])).out).targets as Row[];
const byRun = async () => Object.fromEntries((await targets()).map((t) => [t.path.replace(/.*\//, ''), t]));

describe('a catalog written by release 0.3', () => {
  it('jobs that read copies refuse until migrate has run, changing nothing; migrate upgrades it once', async () => {
    const before = await snapshotCatalog(stack);
    for (const args of [['targets'], ['assign'], ['archive'], ['status'], ['open_tape', 'tape2']]) {
      const r = await h.cli(['--json', ...args]);
      expect(r.code, args.join(' ')).toBe(1);
      expect(JSON.parse(r.err).error).toMatchObject({ code: 'CATALOG_UPGRADE_NEEDED', message: expect.stringMatching(/run "run-job migrate" once/) });
    }
    expect(await snapshotCatalog(stack)).toEqual(before);
    // Its manifests have no name index yet: where_is finds nothing, and says how to fix that.
    const unindexed = await h.cli(['where_is', 'notes.txt']);
    expect(unindexed.code).toBe(40);
    expect(unindexed.out).toMatch(/nothing matches "notes.txt".*run-job migrate/s);

    const first = await h.cli(['--json', 'migrate']);
    expect(first.code, first.err).toBe(0);
    expect(JSON.parse(first.out)).toMatchObject({ migrated: 5, alreadyUpgraded: 0, namesIndexed: 5 });
    const after = await snapshotCatalog(stack);
    expect(after.filter((i) => i.type === 'copy')).toHaveLength(5);
    // A copy keeps what its tape file says of it; the online pointer now names its pool.
    const confirmed = after.find((i) => i.type === 'copy' && i.placement === 'confirmed')!;
    const file = after.find((i) => i.type === 'tapefile' && i.targetId === confirmed.targetId)!;
    expect(confirmed).toMatchObject({ pool: 'default', tapeName: 'tape1', bytes: file.bytes, archivedAt: file.archivedAt, verifiedAt: file.verifiedAt });
    expect(after.find((i) => i.pk === 'ONLINE')).toMatchObject({ sk: 'ONLINE', tapeName: 'tape1', pool: 'default' });
    expect(after.filter((i) => i.type === 'target' && 'placement' in i)).toEqual([]);
    const again = await h.cli(['--json', 'migrate']);
    expect(JSON.parse(again.out)).toMatchObject({ migrated: 0, alreadyUpgraded: 5, namesIndexed: 0 });
    expect(await snapshotCatalog(stack)).toEqual(after);
    // Now every target's files are found by name, with the copies release 0.3 wrote.
    const found = JSON.parse((await h.cli(['--json', 'where_is', 'sub/notes.txt'])).out);
    expect(found.matches).toHaveLength(5);
    const run0 = found.matches.find((m: { dir: string }) => m.dir.endsWith('/run-0'));
    expect(run0).toMatchObject({
      path: 'sub/notes.txt',
      size: 300,
      current: true,
      copies: [{ pool: 'default', tape: 'tape1', fileNumber: 1, state: 'confirmed' }],
    });
    expect(run0.sha256).toMatch(/^[0-9a-f]{64}$/);
  });

  it('reads as it was left: tapes, files, targets and the online tape', async () => {
    expect(await byRun()).toMatchObject({
      'run-0': { status: 'confirmed', tape: 'tape1', fileNumber: 1 },
      'run-1': { status: 'archived', tape: 'tape1', fileNumber: 2 },
      'run-2': { status: 'assigned', tape: 'tape1' },
      'run-3': { status: 'assigned', tape: 'tape1' },
      'run-4': { status: 'scanned' },
    });
    const tapes = JSON.parse((await h.cli(['--json', 'tapes'])).out).tapes;
    expect(tapes).toMatchObject([
      { name: 'tape1', state: 'labelled', online: true, nextFileNumber: 3, filesWritten: 2, filesConfirmed: 1, barcode: 'FIX001L9' },
      { name: 'tape2', state: 'registered', online: false },
    ]);
    expect((await h.cli(['status'])).out).toMatch(/online tape: tape1/);
  });

  it('the workflow goes on: confirm, archive after the old files, close, the next tape; every file reads back equal to its source', async () => {
    const c2 = await h.cli(['confirm', 'next']); // file 2, written by 0.3
    expect(c2.code, c2.out + c2.err).toBe(0);
    const archived = await h.cli(['archive', '--all']);
    expect(archived.code, archived.err).toBe(0);
    expect(archived.out).toMatch(/tape1 file 3: archived/);
    expect(archived.out).toMatch(/tape1 file 4: archived/);
    expect((await h.cli(['confirm', '--all'])).out).toMatch(/confirm --all on tape1: 2 confirmed, 0 failed/);
    expect((await h.cli(['confirm', '1', '--retry'])).code).toBe(0); // the oldest file, read back again
    expect((await h.cli(['close_tape', '--yes'])).code).toBe(0);
    expect((await h.cli(['open_tape', 'tape2'])).code).toBe(0);
    expect((await h.cli(['assign'])).out).toMatch(/assigned 1 target\(s\) to tape2/);
    expect((await h.cli(['archive'])).code).toBe(0);
    expect((await h.cli(['confirm', 'next'])).code).toBe(0);

    const all = await targets();
    expect(all.map((t) => t.status)).toEqual(['confirmed', 'confirmed', 'confirmed', 'confirmed', 'confirmed']);
    expect(all.every((t) => t.safe)).toBe(true);
    for (const t of all) {
      const { data } = await extractWithGnuTar(h.vtl.tapeFilePath(t.tape!, t.fileNumber!));
      expect(data, t.path).toEqual(await treeDigest(t.path));
    }
  });

  it('a second pool added to the upgraded catalog: every target ends with two confirmed copies on tapes of two pools', async () => {
    await h.vtl.createTape('off1', { capacityBytes: 1_000_000_000 });
    expect((await h.cli(['open_tape', '--new', 'off1', '--pool', 'offsite'])).code).toBe(0);
    const raised = await h.cli(['set_copies', '--all-imported', '--pools', 'default,offsite']);
    expect(raised.out).toMatch(/5 target\(s\) changed/);
    expect((await targets()).every((t) => !t.safe)).toBe(true);
    expect((await h.cli(['assign'])).out).toMatch(/assigned 5 target\(s\) to off1 \(pool offsite\)/);
    const archived = await h.cli(['archive', '--all', '--pool', 'offsite']);
    expect(archived.code, archived.err).toBe(0);
    expect((await h.cli(['confirm', '--all', '--pool', 'offsite'])).out).toMatch(/confirm --all on off1: 5 confirmed, 0 failed/);
    const all = await targets();
    for (const t of all) {
      expect(t.safe, t.path).toBe(true);
      expect(t.copies.map((c) => [c.pool, c.status])).toEqual([
        ['default', 'confirmed'],
        ['offsite', 'confirmed'],
      ]);
      const off = t.copies.find((c) => c.pool === 'offsite')!;
      expect(off.tape).toBe('off1');
      const { data } = await extractWithGnuTar(h.vtl.tapeFilePath(off.tape!, off.fileNumber!));
      expect(data, t.path).toEqual(await treeDigest(t.path));
    }
  });
});
