import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runJob, type JobName } from '../../src/lib/jobs/registry.ts';
import { ConflictError, IllegalTransitionError, NotFoundError, UsageError, ValidationError } from '../../src/lib/errors.ts';
import { createTestStack, type TestStack } from '../support/test-stack.ts';
import { completeScan, snapshotCatalog, targetView } from '../support/catalog-helpers.ts';

let stack: TestStack;
beforeAll(async () => {
  stack = await createTestStack();
});
afterAll(async () => stack?.close());

const job = <N extends JobName>(name: N, input: unknown = {}) => runJob(stack.ctx, name, input);

describe('the seed workflow on the catalog', () => {
  it('import requests one scan per new target and is idempotent', async () => {
    const r = await job('import', { content: '/data/a\n/data/b/\r\n# comment\n\n/data/a\nsrv2:/data/c\n', source: 'list.txt' });
    expect(r.imported.map((t) => `${t.host}:${t.path}`)).toEqual(['localhost:/data/a', 'localhost:/data/b', 'srv2:/data/c']);
    expect(r.duplicates).toEqual([{ line: 5, firstLine: 1 }]);
    const scans = (await stack.drain('scans')) as { kind: string; target: { path: string } }[];
    expect(scans.map((s) => s.kind)).toEqual(['scan', 'scan', 'scan']);
    expect(scans.map((s) => s.target.path).sort()).toEqual(['/data/a', '/data/b', '/data/c']);

    // Import order is list order, so archive takes targets in the order of the list.
    const byImport = (await stack.ctx.catalog.listAllTargets()).map((t) => t.path);
    expect(byImport).toEqual(['/data/a', '/data/b', '/data/c']);

    const again = await job('import', { content: '/data/a\n', source: 'list.txt' });
    expect(again.imported).toEqual([]);
    expect(again.alreadyKnown).toHaveLength(1);
    expect(await stack.drain('scans')).toEqual([]);
  });

  it('open_tape registers and puts online; assign defaults to the online tape', async () => {
    const opened = await job('open_tape', { new: true, name: 'tape1', capacity: '10M' });
    expect(opened.registered).toBe(true);
    const a = await job('assign', {});
    expect(a.tape).toBe('tape1');
    expect(a.assigned).toHaveLength(3);
    expect(a.assigned.every((x) => x.awaitingScan)).toBe(true);
    const tapes = await job('tapes');
    expect(tapes.tapes).toMatchObject([{ name: 'tape1', online: true, state: 'registered', targetsAssigned: 3, capacityBytes: 10_000_000 }]);
  });

  it('archive takes only scanned targets and allocates file numbers in order, one write in flight', async () => {
    const idle = await job('archive');
    expect(idle.status).toBe('idle');
    const targets = (await job('targets', { tape: 'tape1' })).targets;
    for (const t of targets) await completeScan(stack, t.id, { fileCount: 2, totalBytes: 1000 });

    const first = await job('archive');
    expect(first).toMatchObject({ status: 'started', tape: 'tape1', fileNumber: 1 });
    await expect(job('archive')).rejects.toThrow(ConflictError);
    const writes = (await stack.drain('tasks')) as { kind: string; fileNumber: number; tapeName: string }[];
    expect(writes).toMatchObject([{ kind: 'write', fileNumber: 1, tapeName: 'tape1' }]);
    const tape = await stack.ctx.catalog.getTape('tape1');
    expect(tape?.writeInFlight?.fileNumber).toBe(1);
    expect(tape?.nextFileNumber).toBe(2);
  });

  it('reassignment is allowed only for targets never written to their tape', async () => {
    await job('open_tape', { new: true, name: 'tape2', capacity: '10M' });
    const rows = (await job('targets', { tape: 'tape1' })).targets;
    const writing = rows.find((t) => t.status === 'writing')!;
    const assigned = rows.find((t) => t.status === 'assigned')!;
    const before = await snapshotCatalog(stack);
    await expect(job('assign', { tape: 'tape2', targetIds: [assigned.id, writing.id] })).rejects.toThrow(IllegalTransitionError);
    expect(await snapshotCatalog(stack)).toEqual(before);
    const moved = await job('assign', { tape: 'tape2', targetIds: [assigned.id] });
    expect(moved.assigned).toMatchObject([{ id: assigned.id, from: 'tape1' }]);
    // back to tape1 for the rest of the test
    await job('assign', { tape: 'tape1', targetIds: [assigned.id] });
    await job('open_tape', { new: true, name: 'tape1' });
  });

  it('confirm refuses files still being written and unknown numbers', async () => {
    await expect(job('confirm', { which: '1' })).rejects.toThrow(IllegalTransitionError);
    await expect(job('confirm', { which: '9' })).rejects.toThrow(NotFoundError);
    await expect(job('confirm', { which: 'abc' })).rejects.toThrow(UsageError);
    expect(await job('confirm', { which: 'next' })).toMatchObject({ status: 'idle' });
  });

  it('close_tape refuses while a write is in flight, then closes and releases outstanding targets', async () => {
    await expect(job('close_tape', { yes: true })).rejects.toThrow(ConflictError);
    // Finish the in-flight write the way the results handler will: archived, flight cleared.
    await stack.ctx.catalog.db.send(
      new (await import('@aws-sdk/client-dynamodb')).UpdateItemCommand({
        TableName: stack.config.names.catalogTable,
        Key: { pk: { S: 'TAPE#tape1' }, sk: { S: 'TAPE' } },
        UpdateExpression: 'REMOVE writeInFlight',
      }),
    );
    const preview = await job('close_tape', {});
    expect(preview.status).toBe('needs-confirmation');
    if (preview.status !== 'needs-confirmation') throw new Error('unreachable');
    expect(preview.warnings.join('\n')).toMatch(/not full/);
    expect(preview.toRelease).toHaveLength(2);
    expect((await stack.ctx.catalog.getTape('tape1'))?.state).toBe('registered');

    const closed = await job('close_tape', { yes: true });
    expect(closed).toMatchObject({ status: 'closed', tape: 'tape1' });
    if (closed.status !== 'closed') throw new Error('unreachable');
    expect(closed.released).toHaveLength(2);
    const tape1 = await stack.ctx.catalog.getTape('tape1');
    expect(tape1).toMatchObject({ state: 'closed', online: false });
    expect(await stack.ctx.catalog.getOnlineTapeName()).toBeUndefined();
    const scanned = (await job('targets', { state: 'scanned' })).targets;
    expect(scanned).toHaveLength(2);

    // The released targets go to the next tape.
    await job('open_tape', { new: true, name: 'tape2' });
    expect((await job('assign', {})).assigned).toHaveLength(2);
    await expect(job('open_tape', { new: true, name: 'tape1' })).rejects.toThrow(IllegalTransitionError);
    await expect(job('assign', { tape: 'tape1' })).rejects.toThrow(IllegalTransitionError);
  });

  it('bad input changes nothing', async () => {
    const before = await snapshotCatalog(stack);
    await expect(job('import', { content: '/ok\nrelative/path\n/bad\u0007name\n', source: 'l' })).rejects.toThrow(ValidationError);
    await expect(job('import', { content: '# only a comment\n\n', source: 'l' })).rejects.toThrow(ValidationError);
    await expect(job('open_tape', { new: true, name: 'bad name' })).rejects.toThrow(UsageError);
    await expect(job('open_tape', { new: true, name: 'tape9', capacity: 'lots' })).rejects.toThrow(UsageError);
    await expect(job('open_tape', { new: true, name: 'tape2', capacity: '5T' })).rejects.toThrow(ValidationError);
    await expect(job('assign', { tape: 'nosuchtape' })).rejects.toThrow(NotFoundError);
    await expect(job('targets', { state: 'bogus' })).rejects.toThrow(UsageError);
    await expect(job('archive', { extra: 1 })).rejects.toThrow(UsageError);
    expect(await snapshotCatalog(stack)).toEqual(before);
    expect(await stack.drain('scans')).toEqual([]);
  });
});

describe('a failed scan stays visible', () => {
  it('assign reports a target whose scan failed as not ready and leaves it scan_failed; one assigned before its scan failed shows scan_failed too', async () => {
    await job('import', { content: '/data/sf-1\n/data/sf-2\n', source: 'sf.txt' });
    await stack.drain('scans');
    const [t1, t2] = (await stack.ctx.catalog.listAllTargets()).filter((t) => t.path.startsWith('/data/sf-'));
    await job('open_tape', { new: true, name: 'tapeSF' });
    // sf-2 is assigned while its scan is pending, then its scan fails
    expect((await job('assign', { targetIds: [t2!.id] })).assigned).toHaveLength(1);
    for (const t of [t1!, t2!]) {
      const cur = (await stack.ctx.catalog.getTarget(t.id))!;
      await stack.ctx.catalog.updateTarget(cur, { ...cur, scan: 'failed', scanError: 'permission denied', version: cur.version + 1 });
    }
    const r = await job('assign', {});
    expect(r.assigned.map((a) => a.id)).not.toContain(t1!.id);
    expect(r.refused).toContainEqual({
      id: t1!.id,
      reason: expect.stringMatching(/^not ready: its scan failed \(permission denied\); fix the cause, then "rescan /),
    });
    expect((await targetView(stack, t1!.id)).placement).toBe('unassigned');
    const failed = (await job('targets', { state: 'scan_failed' })).targets.map((t) => t.id).sort();
    expect(failed).toEqual([t1!.id, t2!.id].sort());
  });
});
