import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ConflictError } from '../../src/lib/errors.ts';
import { runJob, type JobName } from '../../src/lib/jobs/registry.ts';
import { createTestStack, type TestStack } from '../support/test-stack.ts';
import { completeScan } from '../support/catalog-helpers.ts';

let stack: TestStack;
beforeAll(async () => {
  stack = await createTestStack();
});
afterAll(async () => stack?.close());
const job = <N extends JobName>(name: N, input: unknown = {}) => runJob(stack.ctx, name, input);

describe('parallel archive calls', () => {
  it('never give two targets the same file number nor put two writes in flight on one tape', async () => {
    const paths = Array.from({ length: 8 }, (_, i) => `/data/run-${i}`);
    await job('import', { content: paths.join('\n'), source: 'list' });
    await job('open_tape', { new: true, name: 'tapeC' });
    await job('assign', {});
    for (const t of (await job('targets', {})).targets) await completeScan(stack, t.id, { fileCount: 1, totalBytes: 100 });

    const started: number[] = [];
    for (let round = 0; round < 8; round++) {
      const outcomes = await Promise.allSettled(Array.from({ length: 6 }, () => job('archive')));
      const wins = outcomes.flatMap((o) => (o.status === 'fulfilled' && o.value.status === 'started' ? [o.value] : []));
      const losses = outcomes.filter((o) => o.status === 'rejected');
      expect(wins).toHaveLength(1);
      for (const l of losses) expect((l as PromiseRejectedResult).reason).toBeInstanceOf(ConflictError);
      const win = wins[0]!;
      started.push(win.fileNumber);
      // Complete the write as the results handler does, then the next round may start.
      const tape = (await stack.ctx.catalog.getTape('tapeC'))!;
      expect(tape.writeInFlight?.taskId).toBe(win.taskId);
      await stack.ctx.catalog.finishWrite(
        tape,
        { taskId: win.taskId, fileNumber: win.fileNumber, targetId: win.targetId, bytes: 100, fileCount: 1, sha256: 'x' },
        new Date().toISOString(),
      );
    }
    expect(started).toEqual([1, 2, 3, 4, 5, 6, 7, 8]);
    const files = await stack.ctx.catalog.listTapeFiles('tapeC');
    expect(files.map((f) => f.fileNumber)).toEqual([1, 2, 3, 4, 5, 6, 7, 8]);
    expect(new Set(files.map((f) => f.targetId)).size).toBe(8);
    const writes = (await stack.drain('tasks')) as { fileNumber: number }[];
    expect(writes.map((w) => w.fileNumber).sort((a, b) => a - b)).toEqual([1, 2, 3, 4, 5, 6, 7, 8]);
    const tapes = (await job('tapes')).tapes;
    expect(tapes).toMatchObject([{ name: 'tapeC', filesWritten: 8, bytesUsed: 800, nextFileNumber: 9, state: 'labelled', targetsAssigned: 0 }]);
  });

  it('a duplicate write report changes nothing', async () => {
    const tape = (await stack.ctx.catalog.getTape('tapeC'))!;
    const file = (await stack.ctx.catalog.getTapeFile('tapeC', 3))!;
    await expect(
      stack.ctx.catalog.finishWrite(
        tape,
        { taskId: file.taskId, fileNumber: 3, targetId: file.targetId, bytes: 100, fileCount: 1, sha256: 'x' },
        new Date().toISOString(),
      ),
    ).rejects.toThrow(/condition failed/);
    expect((await stack.ctx.catalog.getTape('tapeC'))?.filesWritten).toBe(8);
  });
});
