/**
 * A write that completed on tape but whose report was not applied yet (lost, or still on the
 * results queue) is sent again to a new agent: it reads the file back and reports it, and
 * never writes that tape file a second time.
 */
import { stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startResultsPump } from '../../src/lib/results/results-pump.ts';
import { createHarness, type Harness } from '../support/agent-harness.ts';
import { extractWithGnuTar, makeTarget, treeDigest } from '../support/sample-data.ts';
import { createTestStack, type TestStack } from '../support/test-stack.ts';
import { waitUntil } from '../support/wait.ts';
import { allTargetViews } from '../support/catalog-helpers.ts';

let stack: TestStack;
let h: Harness;

beforeAll(async () => {
  stack = await createTestStack();
  h = await createHarness(stack, { resultsPump: false }); // reports are applied only when this test says
});
afterAll(async () => {
  await h?.close();
  await stack?.close();
});

describe('a finished write whose report is not applied yet', () => {
  it('is reported from the tape by the next agent that gets the task, not written again', async () => {
    let pump = await startResultsPump(stack.ctx, { waitTimeSeconds: 1 });
    const first = await h.startAgent();
    const path = await makeTarget(join(h.dir, 'data', 'lost'), [250_000, 3000]);
    await writeFile(join(h.dir, 'list.txt'), `${path}\n`);
    expect((await h.cli(['import', join(h.dir, 'list.txt')])).code).toBe(0);
    await waitUntil(async () => (await stack.ctx.catalog.listAllTargets()).some((t) => t.path === path && t.scan === 'complete'), 30_000, 'scan');
    await h.vtl.createTape('lost', { capacityBytes: 100_000_000 });
    expect((await h.cli(['open_tape', '--new', 'lost'])).code).toBe(0);
    expect((await h.cli(['assign'])).code).toBe(0);
    await pump.stop(); // from here the write's report waits on the results queue

    const taskId = JSON.parse((await h.cli(['--json', 'archive', '--no-wait'])).out).taskId as string;
    await first.waitForLog((l) => l.taskId === taskId && l.msg === 'task done');
    expect(await first.stop()).toBe(0);
    const written = await stat(h.vtl.tapeFilePath('lost', 1));

    // The catalog still waits for the write: reconcile sends it again, to a new agent.
    const r = JSON.parse((await h.cli(['--json', 'reconcile', '--older-than', '0', '--stale-after', '0'])).out);
    expect(r.writesResent).toEqual([{ tape: 'lost', fileNumber: 1, taskId }]);
    const second = await h.startAgent();
    await second.waitForLog((l) => l.taskId === taskId && l.msg === 'task done');
    expect(
      second.logs.some(
        (l) => l.taskId === taskId && l.msg === 'the file of an unreported earlier attempt is complete and verified; reporting it, not rewriting',
      ),
    ).toBe(true);
    expect(second.logs.some((l) => l.taskId === taskId && l.msg === 'write complete')).toBe(false);
    expect((await stat(h.vtl.tapeFilePath('lost', 1))).mtimeMs).toBe(written.mtimeMs);

    pump = await startResultsPump(stack.ctx, { waitTimeSeconds: 1 });
    try {
      await waitUntil(async () => (await stack.ctx.tasks.get(taskId))?.state === 'succeeded', 30_000, 'the reports applied');
      await waitUntil(async () => (await allTargetViews(stack)).some((t) => t.path === path && t.placement === 'archived'), 30_000, 'archived');
      expect(await stack.ctx.catalog.getTape('lost')).toMatchObject({ filesWritten: 1, nextFileNumber: 2 });
      expect(await h.vtl.countFiles('lost')).toBe(2);
      const { data } = await extractWithGnuTar(h.vtl.tapeFilePath('lost', 1));
      expect(data).toEqual(await treeDigest(path));
      expect((await h.cli(['confirm', 'next'])).code).toBe(0);
    } finally {
      await pump.stop();
    }
  });

  it('lost on the way, is sent again by the agent that made it when a copy of its task arrives', async () => {
    let pump = await startResultsPump(stack.ctx, { waitTimeSeconds: 1 });
    const agent = h.agents.at(-1)!;
    const path = await makeTarget(join(h.dir, 'data', 'lost2'), [50_000]);
    await writeFile(join(h.dir, 'list2.txt'), `${path}\n`);
    expect((await h.cli(['import', join(h.dir, 'list2.txt')])).code).toBe(0);
    await waitUntil(async () => (await stack.ctx.catalog.listAllTargets()).some((t) => t.path === path && t.scan === 'complete'), 30_000, 'scan');
    await h.vtl.createTape('lost2', { capacityBytes: 100_000_000 });
    expect((await h.cli(['open_tape', '--new', 'lost2'])).code).toBe(0);
    expect((await h.cli(['assign'])).code).toBe(0);
    await pump.stop();

    const taskId = JSON.parse((await h.cli(['--json', 'archive', '--no-wait'])).out).taskId as string;
    await agent.waitForLog((l) => l.taskId === taskId && l.msg === 'task done');
    await stack.drain('results'); // the report is lost
    expect((await stack.ctx.tasks.get(taskId))?.state).not.toBe('succeeded');

    expect(JSON.parse((await h.cli(['--json', 'reconcile', '--older-than', '0', '--stale-after', '0'])).out).writesResent).toHaveLength(1);
    await agent.waitForLog((l) => l.taskId === taskId && l.msg === 'task dropped' && String(l.reason).includes('its report was sent again'));
    pump = await startResultsPump(stack.ctx, { waitTimeSeconds: 1 });
    try {
      await waitUntil(async () => (await stack.ctx.tasks.get(taskId))?.state === 'succeeded', 30_000, 'the report sent again, applied');
      expect(await stack.ctx.catalog.getTape('lost2')).toMatchObject({ filesWritten: 1, nextFileNumber: 2 });
      expect(agent.logs.filter((l) => l.taskId === taskId && l.msg === 'write complete')).toHaveLength(1);
    } finally {
      await pump.stop();
    }
  });
});
