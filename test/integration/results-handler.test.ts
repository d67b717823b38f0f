import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { handler } from '../../src/handlers/results.ts';
import { setJobContext } from '../../src/handlers/runtime.ts';
import { runJob } from '../../src/lib/jobs/registry.ts';
import { createTestStack, type TestStack } from '../support/test-stack.ts';
import { completeScan } from '../support/catalog-helpers.ts';

let stack: TestStack;
beforeAll(async () => {
  stack = await createTestStack();
  setJobContext(stack.ctx);
});
afterAll(async () => {
  setJobContext(undefined);
  await stack?.close();
});

const record = (body: unknown) => ({ messageId: randomUUID(), body: typeof body === 'string' ? body : JSON.stringify(body) });

describe('results handler (SQS-triggered Lambda)', () => {
  it('applies a write result once, ignores the duplicate, and reports poison records as batch failures', async () => {
    await runJob(stack.ctx, 'import', { content: '/data/r1\n', source: 'l' });
    await runJob(stack.ctx, 'open_tape', { name: 'tapeR' });
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
    expect(out.batchItemFailures.map((f) => f.itemIdentifier)).toHaveLength(2);
    expect(out.batchItemFailures[0]!.itemIdentifier).toBe(poison.messageId);
    expect(await stack.ctx.catalog.getTape('tapeR')).toMatchObject({ filesWritten: 1, bytesUsed: 262144, state: 'labelled' });
    expect((await stack.ctx.catalog.getTarget(t!.id))?.placement).toBe('archived');
    expect((await stack.ctx.tasks.get(started.taskId))?.state).toBe('succeeded');
  });
});
