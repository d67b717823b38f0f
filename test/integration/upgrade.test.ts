/**
 * A catalog written by release 0.3 (test/fixtures/catalog-0.3) with a write of 0.3 still in
 * flight at upgrade time: its report is not lost (refused for a retry until `migrate` has run,
 * then applied to the migrated copy); importing a list naming a 0.3 target reports its status
 * instead of failing halfway; nothing refuses after having changed something.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { BatchWriteItemCommand } from '@aws-sdk/client-dynamodb';
import { marshall, unmarshall } from '@aws-sdk/util-dynamodb';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CatalogUpgradeError } from '../../src/lib/errors.ts';
import { runJob, type JobName } from '../../src/lib/jobs/registry.ts';
import { report } from '../../src/lib/protocol/build-tasks.ts';
import { applyResult } from '../../src/lib/results/apply-result.ts';
import { snapshotCatalog, targetView } from '../support/catalog-helpers.ts';
import { itemsFromJson } from '../support/dynamodb-json.ts';
import { createTestStack, type TestStack } from '../support/test-stack.ts';

let stack: TestStack;
const job = <N extends JobName>(name: N, input: unknown = {}) => runJob(stack.ctx, name, input);
const TASK = '5b0c2a4e-9f1d-4c3b-8a7e-000000000003';
let writing: Record<string, unknown>;

beforeAll(async () => {
  stack = await createTestStack();
  const items = itemsFromJson(await readFile(join(process.cwd(), 'test/fixtures/catalog-0.3/catalog.json'), 'utf8')).map((i) => unmarshall(i));
  // Release 0.3 in the middle of a write: an assigned target writing tape1 file 3.
  const target = items.find((i) => i.type === 'target' && i.placement === 'assigned')!;
  const tape = items.find((i) => i.type === 'tape' && i.name === 'tape1')!;
  const now = new Date().toISOString();
  writing = { ...target, placement: 'writing', fileNumber: 3, gsi1pk: 'PLACE#writing#tape1', version: Number(target.version) + 1 };
  Object.assign(target, writing);
  tape.writeInFlight = { fileNumber: 3, targetId: target.id, taskId: TASK, startedAt: now };
  tape.nextFileNumber = 4;
  items.push({
    pk: 'TAPE#tape1',
    sk: 'FILE#0000003',
    type: 'tapefile',
    tapeName: 'tape1',
    fileNumber: 3,
    targetId: target.id,
    state: 'writing',
    taskId: TASK,
    startedAt: now,
  });
  const table = stack.config.names.catalogTable;
  for (let i = 0; i < items.length; i += 25) {
    await stack.ctx.catalog.db.send(
      new BatchWriteItemCommand({
        RequestItems: { [table]: items.slice(i, i + 25).map((item) => ({ PutRequest: { Item: marshall(item, { removeUndefinedValues: true }) } })) },
      }),
    );
  }
});
afterAll(async () => stack?.close());

describe('a release-0.3 catalog with a write in flight', () => {
  it('the write report is refused for a retry before migrate, and applied to the migrated copy after', async () => {
    const r = report(
      {
        kind: 'write-result',
        taskId: TASK,
        tapeName: 'tape1',
        fileNumber: 3,
        targetId: String(writing.id),
        outcome: 'archived',
        bytes: 4096,
        fileCount: 1,
        digest: 'd',
      },
      new Date().toISOString(),
    );
    const before = await snapshotCatalog(stack);
    await expect(applyResult(stack.ctx, r)).rejects.toThrow(CatalogUpgradeError);
    expect(await snapshotCatalog(stack)).toEqual(before);

    // Importing a list naming a 0.3 target reports it as known; only the new one is created.
    const imported = await job('import', { content: `${String(writing.path)}\n/data/new-after-upgrade\n`, source: 'list' });
    expect(imported.alreadyKnown).toEqual([expect.objectContaining({ id: writing.id, status: 'writing' })]);
    expect(imported.imported).toHaveLength(1);

    expect(await job('migrate')).toMatchObject({ migrated: 5 });
    expect(await targetView(stack, String(writing.id))).toMatchObject({ placement: 'writing', tapeName: 'tape1', fileNumber: 3 });
    expect(await applyResult(stack.ctx, r)).toMatchObject({ applied: true });
    expect(await targetView(stack, String(writing.id))).toMatchObject({ placement: 'archived', tapeName: 'tape1', fileNumber: 3, bytes: 4096 });
    expect(await stack.ctx.catalog.getTape('tape1')).toMatchObject({ filesWritten: 3, nextFileNumber: 4 });
    expect((await stack.ctx.catalog.getTape('tape1'))?.writeInFlight).toBeUndefined();
    // The new target (created in the new shape before migrate) and the old ones read alike.
    expect((await job('targets', {})).targets).toHaveLength(6);
  });

  it('a removed tape name comes back only once its assigned copies are released', async () => {
    await job('open_tape', { name: 'gone', new: true });
    const t = (await job('targets', { state: 'scanned' })).targets[0]!;
    expect((await job('assign', { tape: 'gone', targetIds: [t.id] })).assigned).toHaveLength(1);
    // remove_tape interrupted after the removal, before the release:
    await stack.ctx.catalog.removeTape((await stack.ctx.catalog.getTape('gone'))!);
    await expect(job('open_tape', { name: 'gone', new: true, pool: 'offsite' })).rejects.toThrow(
      /still assigned to the removed tape gone; run "remove_tape gone"/,
    );
    expect((await job('remove_tape', { name: 'gone' })).released).toEqual([t.id]);
    await expect(job('open_tape', { name: 'gone', new: true, pool: 'offsite' })).resolves.toMatchObject({ registered: true });
  });
});
