/**
 * Where a requested tape task stands (queued, running with progress, done), so operators and
 * `run-job archive`/`confirm` can watch it. Kept in the catalog table as `TASK#<id>` items with
 * a TTL; they describe work, not the archive, so `confirm --no-db-update` may still write one.
 */
import {
  ConditionalCheckFailedException,
  GetItemCommand,
  PutItemCommand,
  ScanCommand,
  UpdateItemCommand,
  type AttributeValue,
  type ScanCommandInput,
  type DynamoDBClient,
  type TransactWriteItem,
} from '@aws-sdk/client-dynamodb';
import { marshall, unmarshall } from '@aws-sdk/util-dynamodb';
import { z } from 'zod';

export const TASK_STATES = ['queued', 'running', 'succeeded', 'failed'] as const;
export type TaskState = (typeof TASK_STATES)[number];

/** What a finished restore did (its report's figures). */
export const restoreSummarySchema = z.object({
  restored: z.number(),
  bytes: z.number(),
  skipped: z.number(),
  failed: z.number(),
  targetsDone: z.number(),
  failures: z.array(z.object({ path: z.string(), rawPath: z.string().optional(), reason: z.string(), targetId: z.string().optional() })),
});
export type RestoreSummary = z.infer<typeof restoreSummarySchema>;

/** A task status item as stored; the `task` job answers it (jobs/output-schemas.ts). */
export const taskStatusSchema = z.object({
  taskId: z.string(),
  kind: z.enum(['scan', 'write', 'verify', 'check-tape', 'restore', 'rebuild', 'snapshot', 'read-snapshot']),
  state: z.enum(TASK_STATES),
  tapeName: z.string().optional(),
  fileNumber: z.number().int().optional(),
  targetId: z.string().optional(),
  updateCatalog: z.boolean().optional(),
  /** verify: requested by a scrub (a failed one starts a repair of the copy). */
  scrub: z.boolean().optional(),
  bytesDone: z.number(),
  bytesTotal: z.number(),
  phase: z.string().optional(),
  outcome: z.string().optional(),
  message: z.string().optional(),
  createdAt: z.string(),
  updatedAt: z.string(),
  /** The agent's last sign of life while running it (heartbeat or progress). */
  heartbeatAt: z.string().optional(),
  /** When the agent was first heard working on it. */
  startedAt: z.string().optional(),
  /** restore: where to (`[host:]dir`), and what it did once reported. */
  destination: z.string().optional(),
  restore: restoreSummarySchema.optional(),
  /** rebuild: the tapes asked for (none: every tape in the library), and what it met that an operator must see. */
  tapes: z.array(z.string()).optional(),
  merge: z.boolean().optional(),
  /** Disagreements with the catalog and tape files not catalogued, one line each (a string set: a report applied twice adds nothing). */
  notes: z.preprocess((v) => (v instanceof Set ? [...(v as Set<string>)].sort() : v), z.array(z.string())).optional(),
  /** `cancel TASK` asked the agent to stop it (restores stop cleanly after the current file). */
  cancelRequested: z.boolean().optional(),
});
export type TaskStatus = z.infer<typeof taskStatusSchema>;

/** A running task with no heartbeat for this long counts as dead (the agent sends one every 30 s by default). */
export const STALE_AFTER_SECONDS = 120;

/** A running task whose agent has not been heard from for `staleAfterSeconds`: nothing is working on it. */
export function isStale(s: Pick<TaskStatus, 'state' | 'heartbeatAt' | 'updatedAt'>, now: Date, staleAfterSeconds = STALE_AFTER_SECONDS): boolean {
  return s.state === 'running' && now.getTime() - Date.parse(s.heartbeatAt ?? s.updatedAt) > staleAfterSeconds * 1000;
}

const key = (taskId: string) => marshall({ pk: `TASK#${taskId}`, sk: 'TASK' });
const TTL_SECONDS = 30 * 24 * 3600;
/** Notes kept on a task item (each at most 1000 characters: well under the 400 KB item limit). */
export const MAX_NOTES = 200;

/** Request parameters for one page of the unfinished tasks of `kind` (pure). */
export function unfinishedTasksScan(tableName: string, kind: TaskStatus['kind'], start?: Record<string, AttributeValue>): ScanCommandInput {
  return {
    TableName: tableName,
    FilterExpression: '#t = :task AND kind = :kind AND #s IN (:q, :r)',
    ExpressionAttributeNames: { '#t': 'type', '#s': 'state' },
    ExpressionAttributeValues: { ':task': { S: 'task' }, ':kind': { S: kind }, ':q': { S: 'queued' }, ':r': { S: 'running' } },
    ...(start ? { ExclusiveStartKey: start } : {}),
  };
}

export class TaskStatusStore {
  constructor(
    readonly db: DynamoDBClient,
    readonly tableName: string,
  ) {}

  newItem(s: Omit<TaskStatus, 'state' | 'bytesDone' | 'updatedAt'> & { bytesTotal: number }): TransactWriteItem {
    const item = {
      pk: `TASK#${s.taskId}`,
      sk: 'TASK',
      type: 'task',
      state: 'queued',
      bytesDone: 0,
      updatedAt: s.createdAt,
      expiresAt: Math.floor(Date.parse(s.createdAt) / 1000) + TTL_SECONDS,
      ...s,
    };
    return { Put: { TableName: this.tableName, Item: marshall(item, { removeUndefinedValues: true }), ConditionExpression: 'attribute_not_exists(pk)' } };
  }

  async create(s: Parameters<TaskStatusStore['newItem']>[0]): Promise<void> {
    await this.db.send(new PutItemCommand(this.newItem(s).Put!));
  }

  /**
   * Tasks of `kind` still queued or running (a table Scan: fine for an operator catalog; a
   * GSI on task state would serve a larger one). Malformed items are left out.
   */
  async listUnfinished(kind: TaskStatus['kind']): Promise<TaskStatus[]> {
    const out: TaskStatus[] = [];
    let start: Record<string, AttributeValue> | undefined;
    do {
      const page = await this.db.send(new ScanCommand(unfinishedTasksScan(this.tableName, kind, start)));
      for (const raw of page.Items ?? []) {
        const parsed = taskStatusSchema.safeParse(unmarshall(raw));
        if (parsed.success) out.push(parsed.data);
      }
      start = page.LastEvaluatedKey;
    } while (start);
    return out;
  }

  async get(taskId: string): Promise<TaskStatus | undefined> {
    const out = await this.db.send(new GetItemCommand({ TableName: this.tableName, Key: key(taskId), ConsistentRead: true }));
    if (!out.Item) return undefined;
    return taskStatusSchema.parse(unmarshall(out.Item));
  }

  /** Progress only moves a task that is not finished yet (a late progress report is dropped). */
  progress(taskId: string, p: { bytesDone: number; bytesTotal: number; phase: string }, now: string): Promise<boolean> {
    return this.markRunning(taskId, 'bytesDone = :d, bytesTotal = :t, phase = :p', { ':d': p.bytesDone, ':t': p.bytesTotal, ':p': p.phase }, now);
  }

  /** The agent is alive and on this task: running, heartbeat now. False for a finished or unknown task. */
  heartbeat(taskId: string, now: string): Promise<boolean> {
    return this.markRunning(taskId, undefined, {}, now);
  }

  /** A sign of life from the agent (with `set` besides): running, heartbeat now, started once; only while unfinished. */
  private async markRunning(taskId: string, set: string | undefined, values: Record<string, unknown>, now: string): Promise<boolean> {
    try {
      await this.db.send(
        new UpdateItemCommand({
          TableName: this.tableName,
          Key: key(taskId),
          UpdateExpression: `SET #s = :running, ${set ? `${set}, ` : ''}updatedAt = :now, heartbeatAt = :now, startedAt = if_not_exists(startedAt, :now)`,
          ConditionExpression: 'attribute_exists(pk) AND #s IN (:queued, :running)',
          ExpressionAttributeNames: { '#s': 'state' },
          ExpressionAttributeValues: marshall({ ':running': 'running', ':queued': 'queued', ':now': now, ...values }),
        }),
      );
      return true;
    } catch (e) {
      if (e instanceof ConditionalCheckFailedException) return false;
      throw e;
    }
  }

  /** Adds lines to a task's notes (at most MAX_NOTES kept; a line already there is not added twice). */
  async note(taskId: string, lines: string[]): Promise<void> {
    if (!lines.length) return;
    try {
      await this.db.send(
        new UpdateItemCommand({
          TableName: this.tableName,
          Key: key(taskId),
          UpdateExpression: 'ADD notes :n',
          ConditionExpression: 'attribute_exists(pk) AND (attribute_not_exists(notes) OR size(notes) < :max)',
          ExpressionAttributeValues: { ':n': { SS: [...new Set(lines.map((l) => l.slice(0, 1000)))] }, ':max': { N: String(MAX_NOTES) } },
        }),
      );
    } catch (e) {
      if (!(e instanceof ConditionalCheckFailedException)) throw e;
    }
  }

  /** Asks the agent to stop a queued or running task; false when it is finished or unknown. */
  async requestCancel(taskId: string, now: string): Promise<boolean> {
    try {
      await this.db.send(
        new UpdateItemCommand({
          TableName: this.tableName,
          Key: key(taskId),
          UpdateExpression: 'SET cancelRequested = :t, updatedAt = :now',
          ConditionExpression: 'attribute_exists(pk) AND #s IN (:queued, :running)',
          ExpressionAttributeNames: { '#s': 'state' },
          ExpressionAttributeValues: marshall({ ':t': true, ':now': now, ':queued': 'queued', ':running': 'running' }),
        }),
      );
      return true;
    } catch (e) {
      if (e instanceof ConditionalCheckFailedException) return false;
      throw e;
    }
  }

  /** Records the outcome; `restore` also the figures of a restore. */
  async finish(taskId: string, state: 'succeeded' | 'failed', outcome: string, message: string, now: string, restore?: RestoreSummary): Promise<void> {
    try {
      await this.db.send(
        new UpdateItemCommand({
          TableName: this.tableName,
          Key: key(taskId),
          UpdateExpression: `SET #s = :state, outcome = :o, message = :m, updatedAt = :now${restore ? ', #r = :r' : ''}`,
          ConditionExpression: 'attribute_exists(pk)',
          ExpressionAttributeNames: { '#s': 'state', ...(restore ? { '#r': 'restore' } : {}) },
          ExpressionAttributeValues: marshall(
            { ':state': state, ':o': outcome, ':m': message.slice(0, 4000), ':now': now, ...(restore ? { ':r': restore } : {}) },
            { removeUndefinedValues: true },
          ),
        }),
      );
    } catch (e) {
      if (!(e instanceof ConditionalCheckFailedException)) throw e;
    }
  }
}
