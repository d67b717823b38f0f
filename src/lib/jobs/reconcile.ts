/**
 * Drives lost work again from the catalog. A task can be lost with its queue (the local SQS
 * keeps nothing across a restart) or stall with a dead agent; the catalog still says what is
 * pending, so re-sending is always possible and always safe: the agent drops a task the
 * catalog no longer wants, and results apply only to the task the catalog waits for.
 * Runs on a schedule (AWS) or from the local stack; `run-job reconcile` runs it by hand.
 */
import { ScanCommand } from '@aws-sdk/client-dynamodb';
import { unmarshall } from '@aws-sdk/util-dynamodb';
import { PROTOCOL_VERSION, type ScanTask, type VerifyTask } from '../protocol/tasks.ts';
import { writeTaskFor } from './workflow.ts';
import type { JobContext } from './context.ts';

export interface ReconcileInput {
  /** Work untouched for this long is considered lost (default 15 minutes). */
  olderThanSeconds?: number;
}

export interface ReconcileResult {
  scansResent: string[];
  writesResent: { tape: string; fileNumber: number; taskId: string }[];
  verifiesResent: { tape: string; fileNumber: number; taskId: string }[];
}

export async function reconcile(ctx: JobContext, input: ReconcileInput): Promise<ReconcileResult> {
  const olderThanMs = (input.olderThanSeconds ?? 900) * 1000;
  const cutoff = ctx.now().getTime() - olderThanMs;
  const stale = (iso: string) => Date.parse(iso) <= cutoff;
  const result: ReconcileResult = { scansResent: [], writesResent: [], verifiesResent: [] };
  const now = ctx.now().toISOString();

  for (const t of await ctx.catalog.listPendingScans()) {
    if (!t.scanId || !stale(t.updatedAt)) continue;
    const task: ScanTask = {
      v: PROTOCOL_VERSION,
      kind: 'scan',
      taskId: ctx.newId(),
      issuedAt: now,
      target: { id: t.id, host: t.host, path: t.path },
      scanId: t.scanId,
    };
    await ctx.queues.sendTask(task);
    result.scansResent.push(t.id);
  }

  for (const tape of await ctx.catalog.listTapes()) {
    const w = tape.writeInFlight;
    if (!w) continue;
    const status = await ctx.tasks.get(w.taskId);
    if (!stale(status?.updatedAt ?? w.startedAt)) continue;
    const target = await ctx.catalog.getTarget(w.targetId);
    if (target?.placement !== 'writing') continue;
    // Same task id: whichever copy an agent runs first is the one the catalog accepts.
    const task = writeTaskFor(target, tape.name, w.fileNumber, w.taskId, now);
    await ctx.queues.sendTask(task);
    result.writesResent.push({ tape: tape.name, fileNumber: w.fileNumber, taskId: w.taskId });
  }

  // Verify requests that never finished.
  let start: Record<string, import('@aws-sdk/client-dynamodb').AttributeValue> | undefined;
  do {
    const out = await ctx.catalog.db.send(
      new ScanCommand({
        TableName: ctx.catalog.tableName,
        FilterExpression: '#t = :task AND kind = :verify AND #s IN (:q, :r)',
        ExpressionAttributeNames: { '#t': 'type', '#s': 'state' },
        ExpressionAttributeValues: { ':task': { S: 'task' }, ':verify': { S: 'verify' }, ':q': { S: 'queued' }, ':r': { S: 'running' } },
        ExclusiveStartKey: start,
      }),
    );
    for (const raw of out.Items ?? []) {
      const s = unmarshall(raw);
      if (!stale(String(s.updatedAt)) || typeof s.tapeName !== 'string' || typeof s.fileNumber !== 'number' || typeof s.targetId !== 'string') continue;
      const task: VerifyTask = {
        v: PROTOCOL_VERSION,
        kind: 'verify',
        taskId: String(s.taskId),
        issuedAt: now,
        tapeName: s.tapeName,
        fileNumber: s.fileNumber,
        targetId: s.targetId,
        updateCatalog: s.updateCatalog !== false,
      };
      await ctx.queues.sendTask(task);
      result.verifiesResent.push({ tape: s.tapeName, fileNumber: s.fileNumber, taskId: task.taskId });
    }
    start = out.LastEvaluatedKey;
  } while (start);
  return result;
}
