import { ScanCommand } from '@aws-sdk/client-dynamodb';
import { unmarshall } from '@aws-sdk/util-dynamodb';
import type { TestStack } from './test-stack.ts';
import { DEFAULT_POOL } from '../../src/lib/domain/copies.ts';

/** Every item of the catalog table, sorted: equal snapshots mean nothing changed. */
export async function snapshotCatalog(stack: TestStack): Promise<Record<string, unknown>[]> {
  const items: Record<string, unknown>[] = [];
  let start: Record<string, import('@aws-sdk/client-dynamodb').AttributeValue> | undefined;
  do {
    const out = await stack.clients.dynamodb.send(
      new ScanCommand({ TableName: stack.config.names.catalogTable, ExclusiveStartKey: start, ConsistentRead: true }),
    );
    items.push(...(out.Items ?? []).map((i) => unmarshall(i)));
    start = out.LastEvaluatedKey;
  } while (start);
  return items.sort((a, b) => `${a.pk}/${a.sk}`.localeCompare(`${b.pk}/${b.sk}`));
}

/** Marks a target's scan complete directly in the catalog (stands in for the agent's report). */
export async function completeScan(stack: TestStack, id: string, sizes: { fileCount: number; totalBytes: number }): Promise<void> {
  const t = await stack.ctx.catalog.getTarget(id);
  if (!t) throw new Error(`no target ${id}`);
  const ok = await stack.ctx.catalog.updateTarget(t, { ...t, scan: 'complete', manifestPages: 1, ...sizes, version: t.version + 1 });
  if (!ok) throw new Error(`target ${id} changed concurrently`);
}

/**
 * A target seen through its copy in `pool` (the default pool unless named): its scan and that
 * copy's placement, tape, file and error in one object, as the tests of one-copy workflows check them.
 */
export async function targetView(stack: TestStack, id: string, pool = DEFAULT_POOL) {
  const tc = await stack.ctx.catalog.getTargetCopies(id);
  if (!tc) throw new Error(`no target ${id}`);
  const copy = tc.copies.find((c) => c.pool === pool);
  if (!copy) throw new Error(`target ${id} has no copy in pool ${pool}`);
  return { ...tc.target, ...copy, id, targetVersion: tc.target.version };
}

/** Every target seen through its default-pool copy (see targetView). */
export async function allTargetViews(stack: TestStack, pool = DEFAULT_POOL) {
  return (await stack.ctx.catalog.listAllTargetCopies()).flatMap((tc) => {
    const copy = tc.copies.find((c) => c.pool === pool);
    return copy ? [{ ...tc.target, ...copy, id: tc.target.id }] : [];
  });
}
