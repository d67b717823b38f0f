/**
 * Dead ends an operator met, each with its way forward as the test's steps (issue 10): a
 * target whose read-back failed is archived again; a tape disabled for a passing cause is
 * enabled after the agent checks it; a mistyped tape name registers nothing; archive --all
 * says so when the online tape changes under it; the self-test erases only scratch tapes.
 * The real agent process, the virtual tape library, GNU tar on every good tape file.
 */
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { DeleteItemCommand, UpdateItemCommand } from '@aws-sdk/client-dynamodb';
import { marshall } from '@aws-sdk/util-dynamodb';
import { copyFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createHarness, type Harness } from '../support/agent-harness.ts';
import { snapshotCatalog, targetView } from '../support/catalog-helpers.ts';
import { extractWithGnuTar, makeTarget, treeDigest } from '../support/sample-data.ts';
import { createTestStack, type TestStack } from '../support/test-stack.ts';
import { waitUntil } from '../support/wait.ts';
import { FORMAT, writeLabel, writeTargetFile } from '../../src/lib/tape-format/index.ts';
import { isStale } from '../../src/lib/catalog/task-status.ts';

let stack: TestStack;
let h: Harness;

beforeAll(async () => {
  stack = await createTestStack();
  h = await createHarness(stack);
  await h.startAgent();
});
afterAll(async () => {
  await h?.close();
  await stack?.close();
});

const target = (id: string) => targetView(stack, id);
const tape = async (name: string) => (await stack.ctx.catalog.getTape(name))!;
const json = async (args: string[]) => JSON.parse((await h.cli(['--json', ...args])).out);

/** Scanned targets (one per sizes list) assigned to a fresh online tape. */
async function prepare(tapeName: string, targets: number[][], capacity = 100_000_000): Promise<{ id: string; path: string }[]> {
  const out: { id: string; path: string }[] = [];
  const list = join(h.dir, `${tapeName}.txt`);
  for (const [i, sizes] of targets.entries()) out.push({ id: '', path: await makeTarget(join(h.dir, 'data', `${tapeName}-${i}`), sizes) });
  await writeFile(list, out.map((t) => t.path).join('\n') + '\n');
  expect((await h.cli(['import', list])).code).toBe(0);
  const all = await stack.ctx.catalog.listAllTargets();
  for (const t of out) t.id = all.find((x) => x.path === t.path)!.id;
  await waitUntil(async () => (await Promise.all(out.map((t) => target(t.id)))).every((t) => t.scan === 'complete'), 30_000, `scans for ${tapeName}`);
  await h.vtl.createTape(tapeName, { capacityBytes: capacity });
  expect((await h.cli(['open_tape', '--new', tapeName, '--capacity', String(capacity)])).code).toBe(0);
  expect((await h.cli(['assign'])).code).toBe(0);
  return out;
}

/** Archives and confirms the next file, and flips a byte in it so the read-back fails. */
async function archiveWithBadReadBack(tapeName: string, fileNumber: number): Promise<void> {
  expect((await h.cli(['archive'])).code).toBe(0);
  const bytes = (await stack.ctx.catalog.getTapeFile(tapeName, fileNumber))!.bytes!;
  await h.vtl.injectFault(tapeName, { kind: 'flip-byte', fileNumber, offset: Math.floor(bytes / 2) });
  const bad = await h.cli(['confirm', 'next']);
  expect(bad.code).toBe(1);
  expect(bad.out).toMatch(/FAILED verify/);
}

describe('a target whose read-back failed can be archived again', () => {
  it('assign --target puts it on the same tape at a new file number; the bad file stays recorded and in its history', async () => {
    const [t] = await prepare('reread', [[300_000, 2000]]);
    await archiveWithBadReadBack('reread', 1);
    expect(await target(t!.id)).toMatchObject({ placement: 'confirm_failed', fileNumber: 1 });

    // Not while a verify of the bad file is still to come: it might confirm it after all.
    expect(await h.agents.at(-1)!.stop()).toBe(0);
    const pending = (await json(['confirm', '1', '--retry', '--no-wait'])).taskId as string;
    const busy = await h.cli(['assign', '--target', t!.id]);
    expect(busy.code).toBe(1);
    expect(busy.err).toMatch(new RegExp(`a verify of reread file 1 \\(target ${t!.id}\\) is still under way \\(task ${pending}\\)`));
    expect((await h.cli(['rescan', t!.id])).code).toBe(1);
    await h.startAgent();
    await waitUntil(async () => (await stack.ctx.tasks.get(pending))?.state === 'failed', 30_000, 'the pending verify fails too');

    expect((await h.cli(['assign', '--target', t!.id])).out).toMatch(/assigned 1 target\(s\) to reread/);
    const again = await h.cli(['archive']);
    expect(again.code).toBe(0);
    expect(again.out).toMatch(/reread file 2/);
    // the fault is on file 1 only: file 2 reads back good
    expect((await h.cli(['confirm', 'next'])).code).toBe(0);
    expect(await target(t!.id)).toMatchObject({ placement: 'confirmed', tapeName: 'reread', fileNumber: 2 });
    expect(await stack.ctx.catalog.getTapeFile('reread', 1)).toMatchObject({ state: 'confirm_failed', targetId: t!.id });
    expect(await tape('reread')).toMatchObject({ nextFileNumber: 3, filesWritten: 2, filesConfirmed: 1 });
    const row = (await json(['targets', '--tape', 'reread'])).targets.find((x: { id: string }) => x.id === t!.id);
    expect(row).toMatchObject({ status: 'confirmed', fileNumber: 2, previousFiles: [{ tapeName: 'reread', fileNumber: 1, state: 'confirm_failed' }] });
    expect(row.previousFiles[0].error).toMatch(/FAILED verify/);
    expect((await h.cli(['targets', '--tape', 'reread'])).out).toMatch(/reread:1/);
    const { data } = await extractWithGnuTar(h.vtl.tapeFilePath('reread', 2));
    expect(data).toEqual(await treeDigest(t!.path));

    // A later verify of the old file changes that file's record only.
    await h.vtl.clearFaults('reread');
    expect((await h.cli(['confirm', '1', '--retry'])).code).toBe(0);
    expect(await stack.ctx.catalog.getTapeFile('reread', 1)).toMatchObject({ state: 'confirmed' });
    expect(await target(t!.id)).toMatchObject({ placement: 'confirmed', fileNumber: 2 });
    expect((await tape('reread')).filesConfirmed).toBe(2);
  });

  it('or it is rescanned and assigned to another tape; the bad file keeps the scan it was written from', async () => {
    const [t] = await prepare('badtape', [[200_000, 3000, 10]]);
    await archiveWithBadReadBack('badtape', 1);
    const firstScan = (await target(t!.id)).scanId;
    await writeFile(join(t!.path, 'added-after.txt'), 'new data since the first archive');
    expect((await h.cli(['rescan', t!.id])).out).toMatch(/rescan requested for 1 target/);
    await waitUntil(async () => (await target(t!.id)).scan === 'complete', 30_000, 'rescan');
    expect(await target(t!.id)).toMatchObject({ placement: 'unassigned', previousFiles: [{ tapeName: 'badtape', fileNumber: 1 }] });
    expect((await stack.ctx.catalog.getTapeFile('badtape', 1))!.scanId).toBe(firstScan);

    await h.vtl.createTape('goodtape', { capacityBytes: 100_000_000 });
    expect((await h.cli(['open_tape', '--new', 'goodtape'])).code).toBe(0);
    expect((await h.cli(['assign'])).code).toBe(0);
    expect((await h.cli(['archive'])).code).toBe(0);
    expect((await h.cli(['confirm', 'next'])).code).toBe(0);
    expect(await target(t!.id)).toMatchObject({ placement: 'confirmed', tapeName: 'goodtape', fileNumber: 1 });
    const { data } = await extractWithGnuTar(h.vtl.tapeFilePath('goodtape', 1));
    expect(data).toEqual(await treeDigest(t!.path));
    // The old bad file, read back against its own (first) scan, still fails: the flipped byte is there.
    const old = await h.cli(['confirm', '1', '--tape', 'badtape', '--retry']);
    expect(old.code).toBe(1);
    expect(old.out).toMatch(/checksum mismatch/);
    expect(old.out).not.toMatch(/added-after/);
    expect(await target(t!.id)).toMatchObject({ placement: 'confirmed', tapeName: 'goodtape' });
  });
});

describe('catalog items written by release 0.2', () => {
  it("a tape file without a scan id is verified against its target's scan, and can be left after a bad read-back", async () => {
    const [t] = await prepare('oldfile', [[300_000, 100]]);
    expect((await h.cli(['archive'])).code).toBe(0);
    // Release 0.2 wrote tape files without scanId/manifestPages.
    await stack.ctx.catalog.db.send(
      new UpdateItemCommand({
        TableName: stack.ctx.catalog.tableName,
        Key: marshall({ pk: 'TAPE#oldfile', sk: 'FILE#0000001' }),
        UpdateExpression: 'REMOVE scanId, manifestPages',
      }),
    );
    expect((await stack.ctx.catalog.getTapeFile('oldfile', 1))!.scanId).toBeUndefined();
    expect((await h.cli(['confirm', 'next'])).code).toBe(0);
    const scanOfFile1 = (await target(t!.id)).scanId;
    const bytes = (await stack.ctx.catalog.getTapeFile('oldfile', 1))!.bytes!;
    await h.vtl.injectFault('oldfile', { kind: 'flip-byte', fileNumber: 1, offset: Math.floor(bytes / 2) });
    expect((await h.cli(['confirm', '1', '--retry'])).code).toBe(1);
    // Leaving it by a rescan: the old file is stamped with the scan it was written from first.
    expect((await h.cli(['rescan', t!.id])).code).toBe(0);
    await waitUntil(async () => (await target(t!.id)).scan === 'complete', 30_000, 'rescan');
    expect((await stack.ctx.catalog.getTapeFile('oldfile', 1))!.scanId).toBe(scanOfFile1);
    expect((await target(t!.id)).scanId).not.toBe(scanOfFile1);
    expect((await h.cli(['assign', '--target', t!.id])).code).toBe(0);
    expect((await h.cli(['archive'])).code).toBe(0);
    expect((await stack.ctx.catalog.getTapeFile('oldfile', 2))!.scanId).toBe((await target(t!.id)).scanId);
    await h.vtl.clearFaults('oldfile');
  });
});

describe('a disabled tape can be enabled again after the agent checks it', () => {
  it('write protected: tapes shows why; enable_tape refuses while the tab is set, and enables once it is not', async () => {
    const [t] = await prepare('wprot', [[1000, 500]]);
    await h.vtl.setWriteProtected('wprot', true);
    expect((await h.cli(['archive'])).code).toBe(42);
    const row = (await json(['tapes'])).tapes.find((x: { name: string }) => x.name === 'wprot');
    expect(row).toMatchObject({ state: 'disabled', reason: expect.stringMatching(/write protected/) });
    expect((await h.cli(['tapes'])).out).toMatch(/disabled: write refused \(write-protected\)/);
    const st = await json(['status']);
    expect(st.setAside).toContainEqual({ name: 'wprot', state: 'disabled', reason: expect.stringMatching(/write protected/) });
    expect((await h.cli(['status'])).out).toMatch(/wprot is disabled: write refused \(write-protected\).*way forward: "enable_tape wprot"/);

    const still = await h.cli(['enable_tape', 'wprot']);
    expect(still.code).toBe(1);
    expect(still.out).toMatch(/wprot stays disabled: the cartridge is write protected/);
    expect((await tape('wprot')).state).toBe('disabled');

    await h.vtl.setWriteProtected('wprot', false);
    const ok = await h.cli(['enable_tape', 'wprot']);
    expect(ok.code).toBe(0);
    expect(ok.out).toMatch(/wprot enabled: its label and end of data/);
    expect(await tape('wprot')).toMatchObject({ state: 'registered' });
    expect((await tape('wprot')).reason).toBeUndefined();
    expect((await h.cli(['archive'])).code).toBe(0);
    expect(await target(t!.id)).toMatchObject({ placement: 'archived', tapeName: 'wprot', fileNumber: 1 });
  });

  it('a tape whose end of data disagrees with the catalog, or a wrong cartridge, stays disabled', async () => {
    await prepare('drift', [[1000], [2000]]);
    expect((await h.cli(['archive'])).code).toBe(0);
    // Someone overwrote the tape after its label: the catalog's file 1 is gone.
    await (await import('node:fs/promises')).rm(h.vtl.tapeFilePath('drift', 1));
    expect((await h.cli(['archive'])).code).toBe(42);
    expect((await tape('drift')).state).toBe('disabled');
    const r = await h.cli(['enable_tape', 'drift']);
    expect(r.code).toBe(1);
    expect(r.out).toMatch(/drift stays disabled: it holds 1 complete file\(s\), label included, but the catalog expects 2/);
    expect((await tape('drift')).state).toBe('disabled');

    // The wrong cartridge (another tape's label): refused with the label it holds.
    await copyFile(h.vtl.tapeFilePath('wprot', 0), h.vtl.tapeFilePath('drift', 0));
    const wrong = await h.cli(['enable_tape', 'drift']);
    expect(wrong.code).toBe(1);
    expect(wrong.out).toMatch(/drift stays disabled: drive vtl0 holds tape "wprot", expected "drift"/);

    const notDisabled = await h.cli(['enable_tape', 'wprot']);
    expect(notDisabled.code).toBe(1);
    expect(notDisabled.err).toMatch(/wprot is labelled, not disabled; there is nothing to enable/);
    expect((await h.cli(['close_tape', 'drift', '--yes'])).code).toBe(0);
  });
});

describe('the leftover of a failed write (st drives end an aborted file with a filemark)', () => {
  /** Puts a complete file `n` on `tapeName` whose header names `taskId`, as an aborted write leaves on an st drive. */
  async function leaveFile(tapeName: string, n: number, taskId: string): Promise<void> {
    await h.vtl.drive('vtl0').unload(); // the agent is idle between tasks
    const d = h.vtl.drive('labeller');
    await d.load(tapeName);
    await d.seekFile(n);
    const w = await d.openWriter();
    const sha = createHash('sha256').update('part').digest('hex');
    await writeTargetFile({
      writer: w,
      header: {
        tapeName,
        fileNumber: n,
        taskId,
        target: { id: 't-x', host: 'h', path: '/p' },
        scanId: 's',
        writtenAt: new Date().toISOString(),
        manifest: [{ path: 'a', type: 'file', size: 4, mtimeMs: 0, mode: 0o644, sha256: sha }],
      },
      source: [{ entry: { path: 'a', type: 'file', size: 4, mode: 0o644, mtimeMs: 0 }, content: [Buffer.from('part')] }],
    });
    await w.close();
    await d.unload();
  }

  it('is written over after enable_tape, and only when the catalog records that write as failed', async () => {
    const [, second] = await prepare('leftover', [[1000], [300_000]]);
    expect((await h.cli(['archive'])).code).toBe(0);
    await h.vtl.injectFault('leftover', { kind: 'write-error', fileNumber: 2, afterBytes: 100_000, once: true });
    const failed = JSON.parse((await h.cli(['--json', 'archive'])).out).taskId as string;
    expect(await tape('leftover')).toMatchObject({ state: 'disabled', nextFileNumber: 2 });

    // A file 2 from a task the catalog does not know could hold data: the tape stays disabled.
    await leaveFile('leftover', 2, '00000000-0000-4000-8000-000000000000');
    const unknown = await h.cli(['enable_tape', 'leftover']);
    expect(unknown.code).toBe(1);
    expect(unknown.out).toMatch(/leftover stays disabled: it holds 3 complete file\(s\), label included, but the catalog expects 2/);

    // The leftover of the write that failed: enabled, and the next write goes over it. The tape
    // itself remembers that write, so this holds after its task item has expired (TTL).
    expect((await tape('leftover')).lastDiscardedWrite).toEqual({ taskId: failed, fileNumber: 2 });
    await stack.ctx.catalog.db.send(new DeleteItemCommand({ TableName: stack.ctx.catalog.tableName, Key: marshall({ pk: `TASK#${failed}`, sk: 'TASK' }) }));
    await leaveFile('leftover', 2, failed);
    const ok = await h.cli(['enable_tape', 'leftover']);
    expect(ok.code, ok.out).toBe(0);
    expect((await h.cli(['archive'])).code).toBe(0);
    const agent = h.agents.at(-1)!;
    expect(agent.logs.some((l) => l.msg === 'writing over the leftover of a failed write' && l.failedTaskId === failed)).toBe(true);
    expect((await tape('leftover')).lastDiscardedWrite).toBeUndefined();
    expect((await h.cli(['confirm', '--all'])).code).toBe(0);
    const file2 = (await stack.ctx.catalog.getTapeFile('leftover', 2))!;
    const { data } = await extractWithGnuTar(h.vtl.tapeFilePath('leftover', 2));
    expect(data).toEqual(await treeDigest((await target(file2.targetId)).path));
    expect([
      second!.id,
      ...(await stack.ctx.catalog.listCopies({ placement: 'confirmed', pool: 'default', tapeName: 'leftover' })).map((x) => x.targetId),
    ]).toContain(file2.targetId);
  });
});

describe('a mistyped tape name registers nothing', () => {
  it('open_tape of an unknown name needs --new; a case variant is refused; an empty tape can be removed', async () => {
    await prepare('tapeA', [[1000]]);
    const before = await snapshotCatalog(stack);
    const typo = await h.cli(['open_tape', 'tapeAA']);
    expect(typo.code).toBe(1);
    expect(typo.err).toMatch(
      /tape tapeAA is not registered \(registered tapes: .*tapeA.*\); to register it as a new tape and bring it online, repeat with --new/,
    );
    const twin = await h.cli(['open_tape', '--new', 'TAPEa']);
    expect(twin.code).toBe(1);
    expect(twin.err).toMatch(/TAPEa differs from the registered tape tapeA only by case/);
    expect(await snapshotCatalog(stack)).toEqual(before);
    expect(await stack.ctx.catalog.getOnlineTapeName()).toBe('tapeA');

    // Registered by mistake after all: it holds nothing, so it can be removed, releasing what was assigned.
    expect((await h.cli(['open_tape', '--new', 'oops'])).code).toBe(0);
    const [t] = await prepare('spareB', [[1000]]);
    expect((await h.cli(['assign', 'oops', '--target', t!.id])).code).toBe(0);
    const onOops = (await stack.ctx.catalog.listCopies({ placement: 'assigned', pool: 'default', tapeName: 'oops' })).length;
    const removed = await h.cli(['remove_tape', 'oops']);
    expect(removed.code).toBe(0);
    expect(removed.out).toMatch(new RegExp(`tape oops removed from the catalog; released ${onOops} assigned target`));
    expect(await stack.ctx.catalog.getTape('oops')).toBeUndefined();
    expect(await target(t!.id)).toMatchObject({ placement: 'unassigned' });

    // tapeA never got a file either: removed, its targets released too.
    const onA = (await stack.ctx.catalog.listCopies({ placement: 'assigned', pool: 'default', tapeName: 'tapeA' })).length;
    expect(onA).toBeGreaterThanOrEqual(1);
    expect((await h.cli(['remove_tape', 'tapeA'])).out).toMatch(new RegExp(`released ${onA} assigned target`));
    expect((await h.cli(['assign'])).out).toMatch(new RegExp(`assigned ${onA + 1} target\\(s\\) to spareB`));
    const onB = (await stack.ctx.catalog.listCopies({ placement: 'assigned', pool: 'default', tapeName: 'spareB' })).length;
    expect((await h.cli(['archive', '--all'])).code).toBe(0);
    expect(await tape('spareB')).toMatchObject({ filesWritten: onB });
    const refused = await h.cli(['remove_tape', 'spareB']);
    expect(refused.code).toBe(1);
    expect(refused.err).toMatch(/spareB holds data .* only a tape with nothing written can be removed/);
    expect(await stack.ctx.catalog.getTape('spareB')).toBeDefined();
  });

  it('archive --all stops with a failure when the online tape changes under it', async () => {
    const targets = await prepare('moving', [[400_000], [1000], [1000]]);
    await h.vtl.injectFault('moving', { kind: 'slow', bytesPerSecond: 400_000 });
    const run = h.cli(['archive', '--all']);
    await waitUntil(async () => (await tape('moving')).writeInFlight !== undefined, 30_000, 'first write under way');
    await h.vtl.createTape('other', { capacityBytes: 100_000_000 });
    expect((await h.cli(['open_tape', '--new', 'other'])).code).toBe(0);
    const r = await run;
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/archive --all stopped after 1 write\(s\): the online tape is now other, not moving/);
    // One file written; every other target assigned to moving is still assigned to it.
    expect(await tape('moving')).toMatchObject({ filesWritten: 1 });
    const left = await stack.ctx.catalog.listCopies({ placement: 'assigned', pool: 'default', tapeName: 'moving' });
    expect(left.length).toBeGreaterThanOrEqual(2);
    expect(targets.filter((t) => left.some((l) => l.targetId === t.id)).length).toBeGreaterThanOrEqual(2);
    expect((await tape('other')).writeInFlight).toBeUndefined();
    await h.vtl.clearFaults('moving');
  });
});

describe('archive --all and confirm --all say where they are', () => {
  it('archive --all --json streams one line per event with n of N and a summary; confirm next three times verifies three files; confirm --all the rest', async () => {
    const targets = await prepare('many', [[1000], [2000], [3000], [4000]]);
    const assigned = (await stack.ctx.catalog.listCopies({ placement: 'assigned', pool: 'default', tapeName: 'many' })).length;
    expect(assigned).toBeGreaterThanOrEqual(targets.length);
    const r = await h.cli(['--json', 'archive', '--all']);
    expect(r.code).toBe(0);
    const events = r.out.split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
    const started = events.filter((e) => e.event === 'started');
    expect(started.map((e) => [e.n, e.of])).toEqual(started.map((_, i) => [i + 1, assigned]));
    expect(events.filter((e) => e.event === 'done').every((e) => e.outcome === 'archived')).toBe(true);
    expect(events.at(-1)).toMatchObject({ event: 'summary', tape: 'many', archived: assigned, failed: 0, leftAssigned: 0, stopped: 'nothing more to archive' });
    const human = await h.cli(['archive', '--all']);
    expect(human.out).toMatch(/archive --all on many: 0 archived \(0 B\), 0 failed, 0 still assigned; stopped: nothing more to archive/);

    // Three requests without waiting: three different files, not one file three times.
    const asked = [];
    for (let i = 0; i < 3; i++) asked.push((await json(['confirm', 'next', '--no-wait'])).fileNumber);
    expect(asked).toEqual([1, 2, 3]);
    await waitUntil(async () => (await tape('many')).filesConfirmed === 3, 30_000, 'three verifies');
    const all = await h.cli(['confirm', '--all']);
    expect(all.code).toBe(0);
    expect(all.out).toMatch(new RegExp(`confirm --all on many: ${assigned - 3} confirmed, 0 failed`));
    expect((await tape('many')).filesConfirmed).toBe(assigned);
  });
});

describe('a task whose agent died is found by its missing heartbeat', () => {
  it('task shows it stale and reconcile drives it again at once, not after 15 minutes', async () => {
    const [t] = await prepare('heartbeat', [[2_000_000]]);
    await h.vtl.injectFault('heartbeat', { kind: 'slow', bytesPerSecond: 500_000 });
    const taskId = (await json(['archive', '--no-wait'])).taskId as string;
    await waitUntil(async () => (await stack.ctx.tasks.get(taskId))?.heartbeatAt !== undefined, 30_000, 'first heartbeat');
    const live = await json(['task', taskId]);
    expect(live).toMatchObject({ state: 'running', stale: false });
    expect((await json(['status'])).tasks).toMatchObject({ running: 1, stale: [] });
    // The whole agent dies mid-write (and with it the message's visibility extension).
    const agent = h.agents.at(-1)!;
    expect(await agent.stop('SIGKILL')).toBe(null);
    await new Promise((r) => setTimeout(r, 3500));
    expect((await json(['reconcile', '--stale-after', '60'])).writesResent).toEqual([]); // heartbeat younger than 60 s: alive
    const dead = await h.cli(['task', taskId]);
    expect(dead.out).toMatch(/running/);
    expect((await json(['task', taskId])).stale).toBe(false); // default: 120 s
    // status and task call it stale once the heartbeat is missing for the limit (120 s by default: shown here with the clock moved on)
    const later = { ...stack.ctx, now: () => new Date(Date.now() + 200_000) };
    const { runJob } = await import('../../src/lib/jobs/registry.ts');
    expect((await runJob(later, 'status', {})).tasks.stale).toEqual([expect.objectContaining({ taskId, kind: 'write', tapeName: 'heartbeat', fileNumber: 1 })]);
    expect((await runJob(later, 'task', { taskId })).stale).toBe(true);
    const r = await json(['reconcile', '--stale-after', '3']);
    expect(r.writesResent).toEqual([{ tape: 'heartbeat', fileNumber: 1, taskId }]);
    await h.vtl.clearFaults('heartbeat');
    await h.startAgent();
    await waitUntil(async () => (await stack.ctx.tasks.get(taskId))?.state === 'succeeded', 60_000, 'the re-driven write');
    expect(await target(t!.id)).toMatchObject({ placement: 'archived', fileNumber: 1 });
    const { data } = await extractWithGnuTar(h.vtl.tapeFilePath('heartbeat', 1));
    expect(data).toEqual(await treeDigest(t!.path));
  });

  it('a running task is stale only when its heartbeat is older than the limit', () => {
    const now = new Date('2026-12-02T10:00:00Z');
    const running = { state: 'running' as const, updatedAt: '2026-12-02T09:00:00Z' };
    expect(isStale({ ...running, heartbeatAt: '2026-12-02T09:59:00Z' }, now)).toBe(false);
    expect(isStale({ ...running, heartbeatAt: '2026-12-02T09:57:59Z' }, now)).toBe(true);
    expect(isStale(running, now)).toBe(true); // no heartbeat ever: its last update counts
    expect(isStale({ state: 'queued', updatedAt: '2026-12-01T00:00:00Z' }, now)).toBe(false);
  });
});

describe('the self-test erases only scratch tapes', () => {
  const selftest = (args: string[]) =>
    new Promise<{ code: number | null; out: string }>((resolve) => {
      const p = spawn(
        process.execPath,
        [
          'bin/tape-agent.js',
          'selftest',
          '--vtl',
          h.vtl.rootDir,
          '--yes-erase',
          '--files',
          '3',
          '--size',
          '200KiB',
          '--block-size',
          String(h.vtl.blockSize),
          ...args,
        ],
        {
          env: { ...process.env, ...stack.env },
        },
      );
      let out = '';
      p.stdout.on('data', (d) => (out += d));
      p.stderr.on('data', (d) => (out += d));
      p.on('close', (code) => resolve({ code, out }));
    });

  it('refuses a catalogued tape even with --force, a labelled or written tape without --force, and tests a blank one', async () => {
    const files = await h.vtl.countFiles('spareB');
    const known = await selftest(['--tape', 'spareB', '--force']);
    expect(known.code).toBe(1);
    expect(known.out).toMatch(/is spareB, which the catalog knows \(labelled, \d+ file\(s\) recorded/);
    expect(known.out).not.toMatch(/\n\s+at /); // no stack trace
    expect(await h.vtl.countFiles('spareB')).toBe(files);

    await h.vtl.createTape('foreign', { capacityBytes: 100_000_000 });
    const drive = h.vtl.drive('labeller');
    await drive.load('foreign');
    const w = await drive.openWriter();
    await writeLabel(w, { format: FORMAT, tapeName: 'not-ours', barcode: '', createdAt: new Date().toISOString(), blockSize: h.vtl.blockSize });
    await w.close();
    await drive.unload();
    const labelled = await selftest(['--tape', 'foreign']);
    expect(labelled.code).toBe(1);
    expect(labelled.out).toMatch(/is labelled not-ours \(not in the catalog\) and has 1 file\(s\); the self-test would erase them.*--force/);
    expect(await h.vtl.countFiles('foreign')).toBe(1);
    const forced = await selftest(['--tape', 'foreign', '--force']);
    expect(forced.out).toMatch(/erasing 1 file\(s\) of tape not-ours/);
    expect(forced.code).toBe(0);

    const blank = await selftest(['--tape', 'scratch1']);
    expect(blank.code).toBe(0);
    expect(blank.out).toMatch(/"passed": true/);
  });
});
