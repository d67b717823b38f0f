import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { handler } from '../../src/handlers/results.ts';
import { setJobContext } from '../../src/handlers/runtime.ts';
import { runJob } from '../../src/lib/jobs/registry.ts';
import { restrict } from '../../src/lib/jobs/context.ts';
import { applyResult } from '../../src/lib/results/apply-result.ts';
import { UndeclaredAccessError } from '../../src/lib/aws/access-guard.ts';
import { ReportTooEarlyError } from '../../src/lib/errors.ts';
import { RESULTS_ACCESS } from '../../src/lib/resources/access.ts';
import { createTestStack, type TestStack } from '../support/test-stack.ts';
import { completeScan, targetView } from '../support/catalog-helpers.ts';

let stack: TestStack;
beforeAll(async () => {
  stack = await createTestStack();
  setJobContext(stack.ctx);
});
afterAll(async () => {
  setJobContext(undefined);
  await stack?.close();
});

/** Receives (and deletes) what is on the results dead-letter queue, with the reason attribute. */
async function deadLetters(): Promise<{ body: string; reason: string }[]> {
  const { GetQueueUrlCommand, ReceiveMessageCommand, DeleteMessageCommand } = await import('@aws-sdk/client-sqs');
  const url = (await stack.clients.sqs.send(new GetQueueUrlCommand({ QueueName: stack.config.names.queues.results.dlqName }))).QueueUrl!;
  const out: { body: string; reason: string }[] = [];
  for (;;) {
    const got = await stack.clients.sqs.send(
      new ReceiveMessageCommand({ QueueUrl: url, MaxNumberOfMessages: 10, WaitTimeSeconds: 1, MessageAttributeNames: ['All'] }),
    );
    if (!got.Messages?.length) return out;
    for (const m of got.Messages) {
      out.push({ body: m.Body ?? '', reason: m.MessageAttributes?.error?.StringValue ?? '' });
      await stack.clients.sqs.send(new DeleteMessageCommand({ QueueUrl: url, ReceiptHandle: m.ReceiptHandle }));
    }
  }
}

const record = (body: unknown) => ({ messageId: randomUUID(), body: typeof body === 'string' ? body : JSON.stringify(body) });

describe('results handler (SQS-triggered Lambda)', () => {
  it('applies a write result once, ignores the duplicate, and dead-letters poison records at once with the reason', async () => {
    await runJob(stack.ctx, 'import', { content: '/data/r1\n', source: 'l' });
    await runJob(stack.ctx, 'open_tape', { new: true, name: 'tapeR' });
    await runJob(stack.ctx, 'assign', {});
    const [t] = (await runJob(stack.ctx, 'targets', {})).targets;
    await completeScan(stack, t!.id, { fileCount: 1, totalBytes: 10 });
    const started = await runJob(stack.ctx, 'archive', {});
    if (started.status !== 'started') throw new Error('archive did not start');
    const result = {
      v: 1,
      kind: 'write-result',
      taskId: started.taskId,
      reportedAt: new Date().toISOString(),
      tapeName: 'tapeR',
      fileNumber: 1,
      targetId: t!.id,
      outcome: 'archived',
      bytes: 262144,
      fileCount: 1,
      digest: 'abc',
      labelWritten: true,
    };
    const poison = record('{not json');
    const out = await handler({ Records: [record(result), record(result), poison, record({ ...result, v: 9 })] }, {} as never);
    // the one poison policy: dead-lettered at once with the reason, not retried
    expect(out.batchItemFailures).toEqual([]);
    const dead = await deadLetters();
    expect(dead.map((m) => m.reason).sort()).toEqual([expect.stringMatching(/not JSON/), expect.stringMatching(/unsupported protocol version 9/)].sort());
    expect(await stack.ctx.catalog.getTape('tapeR')).toMatchObject({ filesWritten: 1, bytesUsed: 262144, state: 'labelled' });
    expect((await targetView(stack, t!.id)).placement).toBe('archived');
    expect((await stack.ctx.tasks.get(started.taskId))?.state).toBe('succeeded');
  });

  it('a verify that never read the file (no tape, wrong cartridge) leaves the copy as it was; one that read it bad marks it bad', async () => {
    const [t] = (await runJob(stack.ctx, 'targets', {})).targets;
    const verify = async (extra: Record<string, unknown>) => {
      const req = await runJob(stack.ctx, 'confirm', { which: '1', tape: 'tapeR', retry: true });
      if (req.status !== 'requested') throw new Error(`confirm did not start: ${req.message}`);
      const taskId = req.taskId;
      const base = { v: 1, kind: 'verify-result', taskId, reportedAt: new Date().toISOString(), tapeName: 'tapeR', fileNumber: 1, targetId: t!.id };
      await handler({ Records: [record({ ...base, updateCatalog: true, bytes: 0, fileCount: 0, bad: [], badCount: 0, ...extra })] }, {} as never);
      return (await stack.ctx.tasks.get(taskId))!;
    };
    const notRead = await verify({ outcome: 'failed', error: 'no tape in drive st0; load tape tapeR', notRead: true });
    expect(notRead).toMatchObject({ state: 'failed', outcome: 'not-read' });
    expect(notRead.message).toMatch(/was not read: no tape in drive st0.*The copy is unchanged; load tape tapeR/);
    expect((await targetView(stack, t!.id)).placement).toBe('archived');
    expect((await stack.ctx.catalog.getTapeFile('tapeR', 1))?.state).toBe('archived');
    const bad = await verify({ outcome: 'failed', error: 'checksum mismatch', badCount: 1, bad: [{ path: 'a', reason: 'checksum mismatch' }] });
    expect(bad).toMatchObject({ state: 'failed', outcome: 'failed' });
    expect((await targetView(stack, t!.id)).placement).toBe('confirm_failed');
  });

  it('applies a discover result under its declaration: imports the targets and sends their scans', async () => {
    const discovered = {
      v: 1,
      kind: 'discover-result',
      taskId: randomUUID(),
      reportedAt: new Date().toISOString(),
      ok: true,
      host: 'localhost',
      root: '/data/incoming',
      paths: ['/data/incoming/run-7', '/data/incoming/run-8'],
      part: 1,
      parts: 1,
    };
    await stack.drain('scans');
    const out = await handler({ Records: [record(discovered)] }, {} as never);
    expect(out.batchItemFailures).toEqual([]);
    const paths = (await stack.ctx.catalog.listAllTargets()).map((t) => t.path);
    expect(paths).toEqual(expect.arrayContaining(['/data/incoming/run-7', '/data/incoming/run-8']));
    const scans = (await stack.drain('scans')) as { kind: string; target: { path: string } }[];
    expect(scans.map((m) => m.target.path).sort()).toEqual(['/data/incoming/run-7', '/data/incoming/run-8']);
  });

  it('the same path without the scan queue in its declaration is refused, naming what is missing', async () => {
    const narrow = restrict(stack.ctx, { ...RESULTS_ACCESS, send: [] }, 'function results');
    const discovered = {
      v: 1 as const,
      kind: 'discover-result' as const,
      taskId: randomUUID(),
      reportedAt: new Date().toISOString(),
      ok: true as const,
      host: 'localhost',
      root: '/data/other',
      paths: ['/data/other/run-9'],
      part: 1,
      parts: 1,
    };
    const e = await applyResult(narrow, discovered).catch((x: unknown) => x);
    expect(e).toBeInstanceOf(UndeclaredAccessError);
    expect((e as Error).message).toMatch(/function results is not declared to (look up|send to) the scans queue/);
  });

  it('a job reaching an undeclared table or queue throws instead of failing only on AWS', async () => {
    const readOnly = restrict(stack.ctx, { read: ['catalog'] }, 'job tapes');
    await expect(readOnly.catalog.listTapes()).resolves.toBeDefined();
    await expect(readOnly.manifests.readAll('t-x', 's', 0)).rejects.toThrow(/job tapes is not declared to read the manifests table/);
    const now = new Date().toISOString();
    const t = { id: 't-guard', host: 'h', path: '/p', scan: 'pending' as const, copies: ['default'], importedAt: now, updatedAt: now, version: 1 };
    await expect(readOnly.catalog.createTarget(t, [])).rejects.toThrow(/not declared to write the catalog table/);
    await expect(readOnly.queues.sendJson('tasks', {})).rejects.toThrow(/not declared to (look up|send to) the tasks queue/);
  });

  it('a rebuild end applied before its last tape end is retried, not finished without that tape and its notes', async () => {
    const taskId = randomUUID();
    const now = () => new Date().toISOString();
    await stack.ctx.tasks.create({ taskId, kind: 'rebuild', tapes: ['rb1'], merge: false, bytesTotal: 0, createdAt: now() });
    const tape = {
      v: 1 as const,
      taskId,
      tapeName: 'rb1',
      barcode: 'RB1',
      blockSize: 262144,
      labelledAt: now(),
      filesOnTape: 3,
      verified: false,
      merge: false,
    };
    const end = { v: 1 as const, kind: 'rebuild-result' as const, taskId, reportedAt: now(), tapes: [{ name: 'rb1', outcome: 'rebuilt' as const, files: 1 }] };
    const tooEarly = async () =>
      expect(await applyResult(stack.ctx, { ...end, reportedAt: now() }).catch((e: unknown) => e)).toBeInstanceOf(ReportTooEarlyError);
    await tooEarly(); // not even started
    await applyResult(stack.ctx, { ...tape, kind: 'rebuild-tape-result', phase: 'start', reportedAt: now() });
    await tooEarly(); // started, not read to its end
    expect((await stack.ctx.tasks.get(taskId))?.state).not.toBe('succeeded');
    await applyResult(stack.ctx, {
      ...tape,
      kind: 'rebuild-tape-result',
      phase: 'end',
      reportedAt: now(),
      files: 1,
      bytesUsed: 1000,
      nextFileNumber: 3,
      skipped: [{ fileNumber: 2, reason: 'a catalog snapshot' }],
    });
    // SQS hands the end over again: it is applied now, with the tape's note in place.
    expect((await applyResult(stack.ctx, end)).applied).toBe(true);
    const done = await stack.ctx.tasks.get(taskId);
    expect(done).toMatchObject({ state: 'succeeded', notes: ['tape rb1 file 2 not catalogued: a catalog snapshot'] });
    expect((await applyResult(stack.ctx, end)).applied).toBe(false); // and once only
  });
});
