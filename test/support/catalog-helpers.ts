import { ScanCommand } from '@aws-sdk/client-dynamodb';
import { unmarshall } from '@aws-sdk/util-dynamodb';
import type { TestStack } from './test-stack.ts';

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
