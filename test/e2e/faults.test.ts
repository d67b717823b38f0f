/**
 * Every fault a tape archive must survive, end to end with the real agent process, the
 * virtual tape library's fault injection, and the catalog checked afterwards.
 */
import { readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { ReceiveMessageCommand, SendMessageCommand, GetQueueUrlCommand } from '@aws-sdk/client-sqs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createHarness, type AgentProcess, type Harness } from '../support/agent-harness.ts';
import { extractWithGnuTar, makeTarget, treeDigest } from '../support/sample-data.ts';
import { createTestStack, type TestStack } from '../support/test-stack.ts';
import { waitUntil } from '../support/wait.ts';
import { writeLabel, FORMAT } from '../../src/lib/tape-format/index.ts';
import { targetView } from '../support/catalog-helpers.ts';

let stack: TestStack;
let h: Harness;
let agent: AgentProcess;

beforeAll(async () => {
  stack = await createTestStack();
  h = await createHarness(stack);
  agent = await h.startAgent();
});
afterAll(async () => {
  await h?.close();
  await stack?.close();
});

/** A scanned target assigned to a fresh online tape. */
async function prepare(tape: string, sizes: number[], capacity = 100_000_000): Promise<{ id: string; path: string }> {
  const path = await makeTarget(join(h.dir, 'data', tape), sizes);
  const list = join(h.dir, `${tape}.txt`);
  await writeFile(list, path + '\n');
  expect((await h.cli(['import', list])).code).toBe(0);
  const id = (await stack.ctx.catalog.listAllTargets()).find((t) => t.path === path)!.id;
  await waitUntil(async () => (await stack.ctx.catalog.getTarget(id))?.scan === 'complete', 30_000, `scan of ${path}`);
  await h.vtl.createTape(tape, { capacityBytes: capacity });
  expect((await h.cli(['open_tape', '--new', tape, '--capacity', String(capacity)])).code).toBe(0);
  expect((await h.cli(['assign'])).code).toBe(0);
  return { id, path };
}

const target = (id: string) => targetView(stack, id);
const tape = async (name: string) => (await stack.ctx.catalog.getTape(name))!;

describe('faults', () => {
  it('duplicate delivery of a write or verify task writes no second tape file and counts once', async () => {
    const t = await prepare('dup', [100_000, 5000]);
    const a = await h.cli(['--json', 'archive', '--no-wait']);
    const taskId = JSON.parse(a.out).taskId as string;
    // The same task again, as a redelivery or a reconcile would send it.
    expect((await h.cli(['reconcile', '--older-than', '0', '--stale-after', '0'])).out).toMatch(/1 write/);
    await waitUntil(async () => (await stack.ctx.tasks.get(taskId))?.state === 'succeeded', 30_000, 'write done');
    // The copy is dropped (by the agent that ran it, or because the catalog no longer wants it), never run again.
    await waitUntil(async () => agent.logs.some((l) => l.taskId === taskId && l.msg === 'task dropped'), 30_000, 'the copy dropped');
    expect(agent.logs.filter((l) => l.taskId === taskId && l.msg === 'write complete')).toHaveLength(1);
    expect(agent.logs.some((l) => l.taskId === taskId && l.msg === 'rewriting file of an unreported earlier attempt')).toBe(false);
    expect(await h.vtl.countFiles('dup')).toBe(2);
    expect(await tape('dup')).toMatchObject({ filesWritten: 1, nextFileNumber: 2 });

    const c = JSON.parse((await h.cli(['--json', 'confirm', '1', '--no-wait'])).out);
    await stack.ctx.queues.sendTask({
      v: 1,
      kind: 'verify',
      taskId: c.taskId,
      issuedAt: new Date().toISOString(),
      tapeName: 'dup',
      fileNumber: 1,
      targetId: t.id,
      updateCatalog: true,
    });
    await waitUntil(async () => agent.logs.some((l) => l.taskId === c.taskId && l.msg === 'task dropped'), 30_000, 'the copy of the verify dropped');
    await waitUntil(async () => (await target(t.id)).placement === 'confirmed', 10_000, 'confirmed');
    expect((await tape('dup')).filesConfirmed).toBe(1);
  });

  it('an agent killed mid-write leaves a partial file that the redelivered task overwrites', async () => {
    const t = await prepare('killed', [3_000_000, 1000]);
    await h.vtl.injectFault('killed', { kind: 'slow', bytesPerSecond: 1_000_000 });
    const taskId = JSON.parse((await h.cli(['--json', 'archive', '--no-wait'])).out).taskId as string;
    await waitUntil(async () => ((await stack.ctx.tasks.get(taskId))?.bytesDone ?? 0) > 300_000, 30_000, 'write under way');
    expect(await agent.stop('SIGKILL')).toBe(null);
    expect((await readdir(h.vtl.tapeDir('killed'))).filter((f) => f.endsWith('.partial'))).toHaveLength(1);
    expect((await target(t.id)).placement).toBe('writing');
    await h.vtl.clearFaults('killed');
    agent = await h.startAgent();
    await waitUntil(async () => (await stack.ctx.tasks.get(taskId))?.state === 'succeeded', 60_000, 'redelivered write done');
    expect((await readdir(h.vtl.tapeDir('killed'))).filter((f) => f.endsWith('.partial'))).toHaveLength(0);
    expect(await h.vtl.countFiles('killed')).toBe(2);
    const { data } = await extractWithGnuTar(h.vtl.tapeFilePath('killed', 1));
    expect(data).toEqual(await treeDigest(t.path));
  });

  it('an I/O error on write discards the file, keeps the target assigned and disables the tape', async () => {
    const t = await prepare('wioerr', [600_000]);
    await h.vtl.injectFault('wioerr', { kind: 'write-error', fileNumber: 1, afterBytes: 300_000 });
    const r = await h.cli(['archive']);
    expect(r.code).toBe(42);
    expect(r.out).toMatch(/I\/O error writing file 1/);
    expect(await target(t.id)).toMatchObject({ placement: 'assigned', tapeName: 'wioerr' });
    expect(await tape('wioerr')).toMatchObject({ state: 'disabled', nextFileNumber: 1, filesWritten: 0 });
    expect(await stack.ctx.catalog.listTapeFiles('wioerr')).toEqual([]);
    expect((await h.cli(['archive'])).err).toMatch(/wioerr is disabled/);
    // Released to the next tape by close_tape.
    expect((await h.cli(['close_tape', '--yes'])).out).toMatch(/released 1 target/);
    expect((await target(t.id)).placement).toBe('unassigned');
    await h.vtl.createTape('wio2', { capacityBytes: 100_000_000 });
    await h.cli(['open_tape', '--new', 'wio2']);
    await h.cli(['assign']);
    expect((await h.cli(['archive'])).code).toBe(0);
  });

  it('an I/O error on read and a flipped byte fail confirm visibly; a retry after the fault passes', async () => {
    const t = await prepare('readerr', [400_000, 300_000]);
    expect((await h.cli(['archive'])).code).toBe(0);
    await h.vtl.injectFault('readerr', { kind: 'read-error', fileNumber: 1, afterBytes: 200_000, once: true });
    const r = await h.cli(['confirm', 'next']);
    expect(r.code).toBe(1);
    expect(r.out).toMatch(/FAILED verify/);
    expect(await target(t.id)).toMatchObject({ placement: 'confirm_failed' });
    expect((await stack.ctx.catalog.getTapeFile('readerr', 1))?.state).toBe('confirm_failed');
    expect((await h.cli(['confirm', '1'])).err).toMatch(/--retry/);
    expect((await h.cli(['confirm', '1', '--retry'])).code).toBe(0);
    expect((await tape('readerr')).filesConfirmed).toBe(1);

    const bytes = (await stack.ctx.catalog.getTapeFile('readerr', 1))!.bytes!;
    await h.vtl.injectFault('readerr', { kind: 'flip-byte', fileNumber: 1, offset: Math.floor(bytes / 2) });
    const flipped = await h.cli(['confirm', '1', '--retry']);
    expect(flipped.code).toBe(1);
    expect(flipped.out).toMatch(/FAILED verify \(\d bad\): file-\d\.dat: checksum mismatch/);
    expect((await tape('readerr')).filesConfirmed).toBe(0);
    // --no-db-update reports without touching the catalog.
    await h.vtl.clearFaults('readerr');
    const dry = await h.cli(['confirm', '1', '--retry', '--no-db-update']);
    expect(dry.code).toBe(0);
    expect((await target(t.id)).placement).toBe('confirm_failed');
  });

  it('refuses a wrong tape, a tape whose file count disagrees with the catalog, and a write-protected tape', async () => {
    const w = await prepare('wrongtape', [1000]);
    const drive = h.vtl.drive('labeller');
    await drive.load('wrongtape');
    const lw = await drive.openWriter();
    await writeLabel(lw, { format: FORMAT, tapeName: 'someone-else', barcode: '', createdAt: new Date().toISOString(), blockSize: h.vtl.blockSize });
    await lw.close();
    await drive.unload();
    const r1 = await h.cli(['archive']);
    expect(r1.code).toBe(42);
    expect(r1.out).toMatch(/holds tape "someone-else", expected "wrongtape"/);
    expect(await tape('wrongtape')).toMatchObject({ state: 'disabled' });
    expect(await target(w.id)).toMatchObject({ placement: 'assigned' });
    expect(await h.vtl.countFiles('wrongtape')).toBe(1);
    await h.cli(['close_tape', '--yes']);

    await prepare('position', [1000, 2000]);
    expect((await h.cli(['archive'])).code).toBe(0);
    const p2path = await makeTarget(join(h.dir, 'data', 'position-2'), [1000]);
    await writeFile(join(h.dir, 'p2.txt'), p2path + '\n');
    await h.cli(['import', join(h.dir, 'p2.txt')]);
    await waitUntil(async () => (await stack.ctx.catalog.listAllTargets()).some((t) => t.path === p2path && t.scan === 'complete'), 30_000, 'scan');
    await h.cli(['assign']);
    // Someone rewound and overwrote the tape: only the label is left.
    await (await import('node:fs/promises')).rm(h.vtl.tapeFilePath('position', 1));
    const r2 = await h.cli(['archive']);
    expect(r2.code).toBe(42);
    expect(r2.out).toMatch(/holds 1 complete file\(s\) .* catalog expects 2; refusing to write/);
    expect(await tape('position')).toMatchObject({ state: 'disabled', nextFileNumber: 2 });
    await h.cli(['close_tape', '--yes']);

    const wp = await prepare('protected', [1000]);
    await h.vtl.setWriteProtected('protected', true);
    const r3 = await h.cli(['archive']);
    expect(r3.code).toBe(42);
    expect(r3.out).toMatch(/write protected/);
    expect(await target(wp.id)).toMatchObject({ placement: 'assigned' });
    expect(await h.vtl.countFiles('protected')).toBe(0);
    await h.cli(['close_tape', '--yes']);
    // Leave nothing unassigned for the next test.
    await h.vtl.createTape('spare', { capacityBytes: 100_000_000 });
    await h.cli(['open_tape', '--new', 'spare']);
    await h.cli(['assign']);
    expect((await h.cli(['archive', '--all'])).code).toBe(0);
  });

  it('a source file changed after its scan fails the write with a record, and nothing is on tape', async () => {
    const t = await prepare('changed', [50_000, 60_000]);
    await writeFile(join(t.path, 'file-0.dat'), 'changed since the scan');
    const r = await h.cli(['archive']);
    expect(r.code).toBe(42);
    expect(r.out).toMatch(/source changed since its scan \(1 file\(s\): file-0\.dat/);
    expect(await target(t.id)).toMatchObject({ placement: 'write_failed', lastError: expect.stringMatching(/file-0\.dat/) });
    expect(await tape('changed')).toMatchObject({ nextFileNumber: 1, filesWritten: 0, state: 'labelled' });
    expect(await h.vtl.countFiles('changed')).toBe(1); // the label only
    // Once the source has settled: rescan, assign, archive.
    expect((await h.cli(['rescan', t.id])).out).toMatch(/rescan requested for 1 target/);
    await waitUntil(async () => (await target(t.id)).scan === 'complete', 30_000, 'rescan');
    expect((await target(t.id)).placement).toBe('unassigned');
    await h.cli(['assign']);
    expect((await h.cli(['archive'])).code).toBe(0);
    const { data } = await extractWithGnuTar(h.vtl.tapeFilePath('changed', 1));
    expect(data).toEqual(await treeDigest(t.path));
  });

  it('a poison message ends in the dead-letter queue with its reason', async () => {
    const url = stack.resources.queueUrls.tasks;
    await stack.clients.sqs.send(new SendMessageCommand({ QueueUrl: url, MessageBody: '{"v":1,"kind":"erase-everything"}' }));
    const dlq = (await stack.clients.sqs.send(new GetQueueUrlCommand({ QueueName: stack.config.names.queues.tasks.dlqName }))).QueueUrl!;
    let got: { Body?: string; MessageAttributes?: Record<string, { StringValue?: string }> } | undefined;
    await waitUntil(
      async () => {
        const out = await stack.clients.sqs.send(new ReceiveMessageCommand({ QueueUrl: dlq, MessageAttributeNames: ['All'], WaitTimeSeconds: 1 }));
        got = out.Messages?.[0];
        return !!got;
      },
      30_000,
      'message in the DLQ',
    );
    expect(got!.Body).toBe('{"v":1,"kind":"erase-everything"}');
    expect(got!.MessageAttributes?.error?.StringValue).toMatch(/kind/);
  });

  it('scans and writes lost with their queue are driven again from the catalog by reconcile', async () => {
    expect(await agent.stop('SIGTERM')).toBe(0);
    const path = await makeTarget(join(h.dir, 'data', 'lost'), [70_000]);
    await writeFile(join(h.dir, 'lost.txt'), path + '\n');
    await h.cli(['import', join(h.dir, 'lost.txt')]);
    expect(await stack.drain('scans')).toHaveLength(1); // the queue loses the scan request
    agent = await h.startAgent();
    expect((await h.cli(['reconcile', '--older-than', '0'])).out).toMatch(/re-sent 1 scan/);
    await waitUntil(
      async () => (await stack.ctx.catalog.listAllTargets()).some((t) => t.path === path && t.scan === 'complete'),
      30_000,
      'scan after reconcile',
    );

    expect(await agent.stop('SIGTERM')).toBe(0);
    await h.vtl.createTape('lost', { capacityBytes: 100_000_000 });
    await h.cli(['open_tape', '--new', 'lost']);
    await h.cli(['assign']);
    const taskId = JSON.parse((await h.cli(['--json', 'archive', '--no-wait'])).out).taskId as string;
    expect(await stack.drain('tasks')).toHaveLength(1); // and the write request
    expect((await h.cli(['reconcile', '--older-than', '0'])).out).toMatch(/1 write/);
    agent = await h.startAgent();
    await waitUntil(async () => (await stack.ctx.tasks.get(taskId))?.state === 'succeeded', 30_000, 'write after reconcile');
    const { data } = await extractWithGnuTar(h.vtl.tapeFilePath('lost', 1));
    expect(data).toEqual(await treeDigest(path));
  });

  it('end of medium in the middle of a file discards it and marks the tape full', async () => {
    // A first target fills file 1; the end of medium comes in file 2 (an empty tape is never
    // marked full: see faithful-archive.test.ts, "too large for the tape").
    const first = await prepare('eom', [100_000]);
    expect((await h.cli(['archive'])).code).toBe(0);
    expect(await target(first.id)).toMatchObject({ placement: 'archived', fileNumber: 1 });
    const path = await makeTarget(join(h.dir, 'data', 'eom-second'), [1_500_000]);
    await writeFile(join(h.dir, 'eom-second.txt'), path + '\n');
    await h.cli(['import', join(h.dir, 'eom-second.txt')]);
    const id = (await stack.ctx.catalog.listAllTargets()).find((x) => x.path === path)!.id;
    await waitUntil(async () => (await target(id)).scan === 'complete', 30_000, 'scan of the second target');
    await h.cli(['assign']);
    await h.vtl.injectFault('eom', { kind: 'end-of-medium', afterBytes: 1_000_000 });
    const r = await h.cli(['archive']);
    expect(r.code).toBe(42);
    expect(r.out).toMatch(/end of medium/);
    expect(await tape('eom')).toMatchObject({ state: 'full', nextFileNumber: 2, filesWritten: 1 });
    expect(await target(id)).toMatchObject({ placement: 'assigned', tapeName: 'eom' });
    expect(await h.vtl.countFiles('eom')).toBe(2);
    expect((await h.cli(['close_tape', '--yes'])).out).toMatch(/released 1 target/);
    await h.vtl.createTape('eom2', { capacityBytes: 100_000_000 });
    await h.cli(['open_tape', '--new', 'eom2']);
    await h.cli(['assign']);
    expect((await h.cli(['archive'])).code).toBe(0);
    expect(await target(id)).toMatchObject({ placement: 'archived', tapeName: 'eom2', fileNumber: 1 });
  });

  it('SIGTERM mid-write finishes the tape file, reports it, then exits', async () => {
    const t = await prepare('sigterm', [2_000_000]);
    await h.vtl.injectFault('sigterm', { kind: 'slow', bytesPerSecond: 1_500_000 });
    const taskId = JSON.parse((await h.cli(['--json', 'archive', '--no-wait'])).out).taskId as string;
    await waitUntil(async () => ((await stack.ctx.tasks.get(taskId))?.bytesDone ?? 0) > 200_000, 30_000, 'write under way');
    expect(await agent.stop('SIGTERM')).toBe(0);
    await waitUntil(async () => (await stack.ctx.tasks.get(taskId))?.state === 'succeeded', 15_000, 'write reported');
    expect((await target(t.id)).placement).toBe('archived');
    const { data } = await extractWithGnuTar(h.vtl.tapeFilePath('sigterm', 1));
    expect(data).toEqual(await treeDigest(t.path));
  });
});
