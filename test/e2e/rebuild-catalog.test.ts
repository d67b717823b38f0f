/**
 * rebuild_catalog (issue 13): the two-pool workflow through run-job, the real agent process and
 * the virtual tape library; a snapshot of the catalog as gzip'd JSON lines; every table deleted;
 * the catalog rebuilt from the tapes alone and compared with the snapshot: every tape, target,
 * copy, file number, manifest entry and checksum identical (catalog timestamps aside). A second
 * run changes nothing; a catalog of its own is refused without --merge, and --merge adds what is
 * missing and reports every disagreement. A kill -9 of the agent mid-rebuild, and the task
 * completes when it is delivered again, without duplicates.
 */
import { execFile } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { gunzipSync } from 'node:zlib';
import { DeleteItemCommand, DeleteTableCommand, ScanCommand, UpdateItemCommand, waitUntilTableNotExists } from '@aws-sdk/client-dynamodb';
import { unmarshall } from '@aws-sdk/util-dynamodb';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decodeItem } from '../../src/lib/catalog/dynamodb-json.ts';
import { bootstrap } from '../../src/lib/resources/bootstrap.ts';
import { createHarness, type Harness } from '../support/agent-harness.ts';
import { snapshotCatalog } from '../support/catalog-helpers.ts';
import { makeTarget } from '../support/sample-data.ts';
import { createTestStack, type TestStack } from '../support/test-stack.ts';
import { waitUntil } from '../support/wait.ts';

const run = promisify(execFile);
let stack: TestStack;
let h: Harness;
/** The catalog at the end of the two-pool workflow (from its snapshot file). */
let before: Awaited<ReturnType<typeof readDump>>;

beforeAll(async () => {
  stack = await createTestStack();
  h = await createHarness(stack);
  await h.startAgent();
  await h.vtl.createTape('p1', { capacityBytes: 1_000_000 });
  await h.vtl.createTape('p2', { capacityBytes: 100_000_000 });
  await h.vtl.createTape('o1', { capacityBytes: 100_000_000 });
});
afterAll(async () => {
  await h?.close();
  await stack?.close();
});

const ok = async (args: string[]) => {
  const r = await h.cli(args);
  expect(r.code, `${args.join(' ')}: ${r.out}\n${r.err}`).toBe(0);
  return r;
};

type Row = Record<string, unknown>;
/** What a rebuild must bring back, from items (DynamoDB's plain form): catalog timestamps and lifecycle flags left out. */
function model(catalog: Row[], manifests: Row[]) {
  const pick = (o: Row, keys: string[]) => Object.fromEntries(keys.map((k) => [k, o[k]]));
  const of = (type: string) => catalog.filter((i) => i.type === type).sort((a, b) => `${a.pk}/${a.sk}`.localeCompare(`${b.pk}/${b.sk}`));
  return {
    tapes: of('tape').map((t) => pick(t, ['name', 'barcode', 'pool', 'capacityBytes', 'bytesUsed', 'nextFileNumber', 'filesWritten'])),
    tapeFiles: of('tapefile').map((f) =>
      pick(f, ['tapeName', 'fileNumber', 'targetId', 'state', 'taskId', 'scanId', 'manifestPages', 'bytes', 'fileCount', 'sha256']),
    ),
    targets: of('target').map((t) => pick(t, ['id', 'host', 'path', 'scan', 'scanId', 'fileCount', 'totalBytes', 'manifestPages', 'copies', 'skippedCount'])),
    copies: of('copy').map((c) => pick(c, ['targetId', 'pool', 'placement', 'tapeName', 'fileNumber', 'bytes'])),
    // Manifest pages (gzip'd entries, each with its sha256) and the name index of where_is.
    manifests: manifests
      .map((m): Row => ({ ...m, data: m.data ? decodePage(Buffer.from(m.data as Uint8Array)) : undefined }))
      .sort((a, b) => `${a.pk}/${a.sk}`.localeCompare(`${b.pk}/${b.sk}`)),
  };
}

/** A manifest page's entries (gzip'd JSON); other binary data (the name index) as base64. */
const decodePage = (b: Buffer): unknown => (b[0] === 0x1f && b[1] === 0x8b ? JSON.parse(gunzipSync(b).toString('utf8')) : b.toString('base64'));

async function readDump(file: string) {
  const { stdout } = await run('sh', ['-c', `gzip -dc '${file}'`], { maxBuffer: 256 * 1024 * 1024 });
  const lines = stdout
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l));
  const items = (t: string) => lines.filter((l) => l.t === t).map((l) => unmarshall(decodeItem(l.item)) as Row);
  return model(items('catalog'), items('manifests'));
}

async function liveModel() {
  const manifests = await stack.ctx.clients.dynamodb.send(new ScanCommand({ TableName: stack.config.names.manifestTable }));
  return model(
    await snapshotCatalog(stack),
    (manifests.Items ?? []).map((i) => unmarshall(i)),
  );
}

async function deleteEveryTable(): Promise<void> {
  for (const TableName of stack.resources.tables) {
    await stack.clients.dynamodb.send(new DeleteTableCommand({ TableName }));
    await waitUntilTableNotExists({ client: stack.clients.dynamodb, maxWaitTime: 30 }, { TableName });
  }
  await bootstrap(stack.config, stack.clients);
  expect(await snapshotCatalog(stack)).toEqual([]);
}

describe('rebuild_catalog: the catalog from the tapes alone', () => {
  it('recreates every tape, target, copy, file number, manifest entry and checksum of a two-pool workflow', async () => {
    await ok(['open_tape', '--new', 'p1', '--pool', 'primary', '--capacity', '1000000']);
    await ok(['open_tape', '--new', 'o1', '--pool', 'offsite']);
    const paths: string[] = [];
    for (let i = 0; i < 4; i++) paths.push(await makeTarget(join(h.dir, 'data', `obs-${i}`), [150_000, 100_000]));
    await writeFile(join(h.dir, 'obs.txt'), `${paths.join('\n')}\n`);
    await ok(['import', join(h.dir, 'obs.txt'), '--copies', 'primary,offsite']);
    await waitUntil(async () => (await stack.ctx.catalog.listAllTargets()).every((t) => t.scan === 'complete'), 30_000, 'scans');
    await ok(['assign']);
    expect((await h.cli(['archive', '--all'])).code).toBe(42); // p1 fills up after two files
    await ok(['confirm', '--all', '--pool', 'primary']);
    // p1 is full to its end: no room for the catalog; the tape is closed all the same.
    expect((await ok(['close_tape', 'p1', '--yes'])).out).toMatch(
      /warning: no catalog snapshot was written to p1: end of medium.*Its catalogued files are untouched/,
    );
    await ok(['open_tape', '--new', 'p2', '--pool', 'primary']);
    await ok(['assign', 'p2']);
    await ok(['archive', '--all', '--pool', 'primary']);
    await ok(['confirm', '--all', '--pool', 'primary']);
    await ok(['confirm', '--all', '--pool', 'offsite']);
    expect((await ok(['status'])).out).toMatch(/copies: 4 target\(s\) safe/);
    // Closing a tape appends the catalog to it (p1 got one when it filled up and was closed).
    expect((await ok(['close_tape', 'p2', '--yes'])).out).toMatch(/catalog snapshot written as file 3 of p2: \d+ catalog item\(s\)/);
    expect((await ok(['close_tape', 'o1', '--yes'])).out).toMatch(/catalog snapshot written as file 5 of o1/);

    const dump = join(h.dir, 'catalog.jsonl.gz');
    await ok(['snapshot_catalog', '--to', dump]);
    before = await readDump(dump);
    expect(before.tapes.map((t) => [t.name, t.nextFileNumber, t.filesWritten])).toEqual([
      ['o1', 6, 4],
      ['p1', 3, 2],
      ['p2', 4, 2],
    ]);
    expect(before.tapes.map((t) => t.name)).toEqual(['o1', 'p1', 'p2']);
    expect(before.copies.filter((c) => c.placement === 'confirmed')).toHaveLength(8);

    await deleteEveryTable();
    const refusedBoth = await h.cli(['rebuild_catalog', 'p1', '--all']);
    expect(refusedBoth.code).toBe(2);
    expect(refusedBoth.err).toMatch(/name tapes or use --all, not both/);

    const rebuilt = await ok(['rebuild_catalog', '--all', '--verify']);
    expect(rebuilt.out).toMatch(/rebuild succeeded: 3 tape\(s\), 8 file\(s\) catalogued; o1: 4 file\(s\); p1: 2 file\(s\); p2: 2 file\(s\)/);
    // The snapshot files are not targets: named in the notes, and the next write goes after them.
    expect(rebuilt.out).toMatch(/2 note\(s\):/);
    for (const [tape, n] of [
      ['o1', 5],
      ['p2', 3],
    ])
      expect(rebuilt.out).toMatch(
        new RegExp(`tape ${tape} file ${n} not catalogued: a catalog snapshot of \\S+ \\(\\d+ catalog item\\(s\\)\\); "restore_catalog --tape" loads it`),
      );
    expect(await liveModel()).toEqual(before);
    // What is not on tape comes back as the safe value: the tapes are disabled until enable_tape checks them.
    expect((await stack.ctx.catalog.listTapes()).map((t) => [t.name, t.state])).toEqual([
      ['o1', 'disabled'],
      ['p1', 'disabled'],
      ['p2', 'disabled'],
    ]);
    expect((await ok(['status'])).out).toMatch(/copies: 4 target\(s\) safe/);
    const found = JSON.parse((await ok(['--json', 'where_is', 'file-0.dat'])).out);
    expect(found.matches).toHaveLength(4);

    // Again: every tape was read to its end, nothing is read or added twice.
    const items = await snapshotCatalog(stack);
    const again = await ok(['rebuild_catalog', '--all']);
    expect(again.out).toMatch(/o1: 4 file\(s\) \(rebuilt before\)/);
    const notTasks = (xs: Row[]) => xs.filter((i) => i.type !== 'task');
    expect(notTasks(await snapshotCatalog(stack))).toEqual(notTasks(items));
  });

  it('refuses a catalog of its own without --merge; --merge adds what is missing and reports every disagreement', async () => {
    await ok(['open_tape', '--new', 'x1', '--pool', 'primary']);
    const refused = await h.cli(['rebuild_catalog', '--all']);
    expect(refused.code).toBe(1);
    expect(refused.err).toMatch(/the catalog is not empty: it holds 1 tape\(s\) that were not rebuilt from tape \(x1\).*--merge/);

    // Lose a target, and make the catalog disagree with a tape about a file's checksum.
    const lost = (await stack.ctx.catalog.listTapeFiles('p2'))[0]!;
    const tc = (await stack.ctx.catalog.getTargetCopies(lost.targetId))!;
    const table = stack.config.names.catalogTable;
    for (const sk of ['TARGET', ...tc.copies.map((c) => `COPY#${c.pool}`)])
      await stack.clients.dynamodb.send(new DeleteItemCommand({ TableName: table, Key: { pk: { S: `TARGET#${lost.targetId}` }, sk: { S: sk } } }));
    await stack.clients.dynamodb.send(
      new UpdateItemCommand({
        TableName: table,
        Key: { pk: { S: 'TAPE#o1' }, sk: { S: 'FILE#0000001' } },
        UpdateExpression: 'SET sha256 = :x',
        ExpressionAttributeValues: { ':x': { S: 'not-the-digest' } },
      }),
    );
    const merged = await h.cli(['rebuild_catalog', 'p2', 'o1', '--merge']);
    expect(merged.code, merged.out + merged.err).toBe(0);
    expect(merged.out).toMatch(/tape o1 file 1: the catalog has sha256 "not-the-digest", the tape "[0-9a-f]{64}"/);
    const back = (await stack.ctx.catalog.getTargetCopies(lost.targetId))!;
    expect(back.target.path).toBe(tc.target.path);
    expect(back.copies.map((c) => [c.pool, c.tapeName])).toEqual(tc.copies.map((c) => [c.pool, c.tapeName]));
    // Nothing the catalog had was changed.
    expect((await stack.ctx.catalog.getTapeFile('o1', 1))?.sha256).toBe('not-the-digest');
  });

  it('a kill -9 of the agent mid-rebuild: the task is delivered again and completes without duplicates', async () => {
    const dump = join(h.dir, 'catalog-2.jsonl.gz');
    await deleteEveryTable();
    await ok(['rebuild_catalog', 'o1', 'p1', 'p2']);
    const complete = await liveModel();
    await ok(['snapshot_catalog', '--to', dump]);
    await deleteEveryTable();

    const agent = h.agents[0]!;
    await h.vtl.injectFault('p1', { kind: 'slow', bytesPerSecond: 50_000 }); // so that the kill lands while p1 is read
    const r = JSON.parse((await ok(['--json', 'rebuild_catalog', 'o1', 'p1', 'p2', '--no-wait'])).out);
    await agent.waitForLog((l) => l.msg === 'tape rebuilt' && l.tape === 'o1' && l.taskId === r.taskId, 60_000);
    expect(await agent.stop('SIGKILL')).toBe(null);
    await h.vtl.clearFaults('p1');
    await h.startAgent();
    await waitUntil(async () => (await stack.ctx.tasks.get(r.taskId))?.state === 'succeeded', 90_000, 'the rebuild delivered again');
    const s = (await stack.ctx.tasks.get(r.taskId))!;
    expect(s.message).toMatch(/o1: 4 file\(s\) \(rebuilt before\); p1: 2 file\(s\); p2: 2 file\(s\)/);
    expect(await liveModel()).toEqual(complete);
    expect(await readDump(dump)).toEqual(complete);
  });
});

describe('restore_catalog --tape: the catalog from the snapshot a tape got when it was closed', () => {
  it('is a tape file GNU tar, gzip and jq read, and loads into an empty catalog as it was', async () => {
    // An operator's look at it with standard tools: the member, its lines, its end line.
    const tapeFile = h.vtl.tapeFilePath('o1', 5);
    const { stdout: members } = await run('tar', ['-tf', tapeFile]);
    expect(members.trim().split('\n')).toEqual(['header.json', 'catalog.jsonl.gz', 'trailer.json']);
    const { stdout: header } = await run('sh', ['-c', `tar -xOf '${tapeFile}' header.json | jq -r '.kind + " " + .tapeName + " " + (.fileNumber|tostring)'`]);
    expect(header.trim()).toBe('catalog-snapshot o1 5');
    const { stdout: end } = await run('sh', ['-c', `tar -xOf '${tapeFile}' catalog.jsonl.gz | gzip -dc | tail -n 1 | jq -c '.end'`]);
    expect(end.trim()).toBe('true');

    await deleteEveryTable();
    const via = join(h.dir, 'from-o1.jsonl.gz');
    const r = await ok(['restore_catalog', '--tape', 'o1', '--via', via]);
    expect(r.out).toMatch(/catalog restored from .*from-o1\.jsonl\.gz \(file 5 of o1\)/);
    expect(await liveModel()).toEqual(before);
    // A second load is refused: the catalog is no longer empty.
    const again = await h.cli(['restore_catalog', '--tape', 'o1', '--via', join(h.dir, 'again.jsonl.gz')]);
    expect(again.code).toBe(1);
    expect(again.err).toMatch(/is not empty; restore_catalog loads a snapshot into an empty catalog only/);
  });

  it('refuses a tape that holds no snapshot, and an open tape for snapshot_catalog --tape', async () => {
    await h.vtl.createTape('x9', { capacityBytes: 10_000_000 });
    await ok(['open_tape', '--new', 'x9', '--pool', 'primary']);
    const open = await h.cli(['snapshot_catalog', '--tape', 'x9']);
    expect(open.code).toBe(1);
    expect(open.err).toMatch(/tape x9 is registered; a catalog snapshot is appended to a closed tape only/);
    const none = await h.cli(['restore_catalog', '--tape', 'x9', '--via', join(h.dir, 'x9.jsonl.gz')]);
    expect(none.code).toBe(1);
    expect(none.err).toMatch(/tape x9 (in drive \S+ is blank|holds no complete catalog snapshot)/);
  });
});
