/**
 * The catalog repository: tapes, targets, tape files and the online pointer in one
 * DynamoDB table. Every state change is a conditional write (or a transaction of them) so
 * that a refused change is never half applied and racing callers cannot both win.
 */
import {
  ConditionalCheckFailedException,
  GetItemCommand,
  PutItemCommand,
  QueryCommand,
  ScanCommand,
  TransactionCanceledException,
  TransactWriteItemsCommand,
  type DynamoDBClient,
  type QueryCommandInput,
  type TransactWriteItem,
} from '@aws-sdk/client-dynamodb';
import { marshall, unmarshall } from '@aws-sdk/util-dynamodb';
import { ConflictError } from '../errors.ts';
import { ONLINE_TAPE_STATES, WRITABLE_TAPE_STATES, type Tape, type WriteInFlight } from '../domain/tape.ts';
import type { Placement, Target } from '../domain/target.ts';
import type { TapeFile } from '../domain/tape-file.ts';
import { keys, placementIndexKey, tapeCodec, tapeFileCodec, targetCodec } from './items.ts';

const m = (o: Record<string, unknown>) => marshall(o, { removeUndefinedValues: true });

export class ConditionFailed extends Error {
  override readonly name = 'ConditionFailed';
  constructor(readonly reasons: (string | undefined)[] = []) {
    super(`condition failed: ${reasons.join(', ')}`);
  }
}

/**
 * `#s IN (:s0, :s1, ...)` for a state list of the domain model, with its values: conditions
 * derive from src/lib/domain, never from a list written here (pure).
 */
export function stateIn(states: readonly string[], prefix = 's'): { expression: string; values: Record<string, string> } {
  const values = Object.fromEntries(states.map((s, i) => [`:${prefix}${i}`, s]));
  return { expression: `#s IN (${Object.keys(values).join(', ')})`, values };
}

const onlineStates = stateIn(ONLINE_TAPE_STATES, 'on');
const writableStates = stateIn(WRITABLE_TAPE_STATES, 'wr');

export class Catalog {
  constructor(
    readonly db: DynamoDBClient,
    readonly tableName: string,
  ) {}

  // ---- low-level helpers -------------------------------------------------

  private async get(key: { pk: string; sk: string }, consistent = true): Promise<Record<string, unknown> | undefined> {
    const out = await this.db.send(new GetItemCommand({ TableName: this.tableName, Key: m(key), ConsistentRead: consistent }));
    return out.Item ? unmarshall(out.Item) : undefined;
  }

  private async queryAll(input: Omit<QueryCommandInput, 'TableName'>): Promise<Record<string, unknown>[]> {
    const items: Record<string, unknown>[] = [];
    let start: QueryCommandInput['ExclusiveStartKey'];
    do {
      const out = await this.db.send(new QueryCommand({ TableName: this.tableName, ...input, ExclusiveStartKey: start }));
      items.push(...(out.Items ?? []).map((i) => unmarshall(i)));
      start = out.LastEvaluatedKey;
    } while (start);
    return items;
  }

  /** Runs a transaction; a failed condition becomes ConditionFailed with per-item reasons. */
  async transact(items: TransactWriteItem[]): Promise<void> {
    try {
      await this.db.send(new TransactWriteItemsCommand({ TransactItems: items }));
    } catch (e) {
      if (e instanceof TransactionCanceledException) {
        const reasons = (e.CancellationReasons ?? []).map((r) => r.Code);
        if (reasons.some((r) => r === 'ConditionalCheckFailed')) throw new ConditionFailed(reasons);
        if (reasons.some((r) => r === 'TransactionConflict'))
          throw new ConflictError('another change to the same items ran at the same moment; nothing was changed. Run the job again.');
      }
      throw e;
    }
  }

  // ---- tapes -------------------------------------------------------------

  async getTape(name: string): Promise<Tape | undefined> {
    const item = await this.get(keys.tape(name));
    return item ? tapeCodec.fromItem(item) : undefined;
  }

  async listTapes(): Promise<Tape[]> {
    const items = await this.queryAll({
      IndexName: 'byPlacement',
      KeyConditionExpression: 'gsi1pk = :p',
      ExpressionAttributeValues: m({ ':p': 'TAPES' }),
    });
    return items.map(tapeCodec.fromItem);
  }

  putNewTapeItem(tape: Tape): TransactWriteItem {
    return { Put: { TableName: this.tableName, Item: m(tapeCodec.toItem(tape)), ConditionExpression: 'attribute_not_exists(pk)' } };
  }

  async getOnlineTapeName(): Promise<string | undefined> {
    const item = await this.get(keys.online());
    return typeof item?.tapeName === 'string' ? item.tapeName : undefined;
  }

  /**
   * Makes `name` the online tape in one transaction: pointer, new tape flag, old tape flag.
   * `expectedPrevious` guards against a concurrent open_tape.
   */
  async setOnline(name: string, expectedPrevious: string | undefined, now: string, newTape?: Tape): Promise<void> {
    const items: TransactWriteItem[] = [];
    items.push({
      Put: {
        TableName: this.tableName,
        Item: m({ ...keys.online(), type: 'online', tapeName: name, updatedAt: now }),
        ...(expectedPrevious
          ? { ConditionExpression: 'tapeName = :prev', ExpressionAttributeValues: m({ ':prev': expectedPrevious }) }
          : { ConditionExpression: 'attribute_not_exists(pk)' }),
      },
    });
    if (newTape) {
      items.push(this.putNewTapeItem({ ...newTape, online: true }));
    } else {
      items.push({
        Update: {
          TableName: this.tableName,
          Key: m(keys.tape(name)),
          UpdateExpression: 'SET #o = :t, updatedAt = :now',
          ConditionExpression: `attribute_exists(pk) AND ${onlineStates.expression}`,
          ExpressionAttributeNames: { '#s': 'state', '#o': 'online' },
          ExpressionAttributeValues: m({ ':t': true, ':now': now, ...onlineStates.values }),
        },
      });
    }
    if (expectedPrevious && expectedPrevious !== name) {
      items.push({
        Update: {
          TableName: this.tableName,
          Key: m(keys.tape(expectedPrevious)),
          UpdateExpression: 'SET #o = :f, updatedAt = :now',
          ConditionExpression: 'attribute_exists(pk)',
          ExpressionAttributeNames: { '#o': 'online' },
          ExpressionAttributeValues: m({ ':f': false, ':now': now }),
        },
      });
    }
    await this.transact(items);
  }

  /** Closes a tape: state closed, offline, pointer cleared if it pointed here. */
  async closeTape(tape: Tape, now: string): Promise<void> {
    const items: TransactWriteItem[] = [
      {
        Update: {
          TableName: this.tableName,
          Key: m(keys.tape(tape.name)),
          UpdateExpression: 'SET #s = :closed, #o = :f, updatedAt = :now',
          ConditionExpression: '#s = :from AND attribute_not_exists(writeInFlight)',
          ExpressionAttributeNames: { '#s': 'state', '#o': 'online' },
          ExpressionAttributeValues: m({ ':closed': 'closed', ':f': false, ':now': now, ':from': tape.state }),
        },
      },
    ];
    if (tape.online) {
      items.push({
        Delete: {
          TableName: this.tableName,
          Key: m(keys.online()),
          ConditionExpression: 'tapeName = :n',
          ExpressionAttributeValues: m({ ':n': tape.name }),
        },
      });
    }
    await this.transact(items);
  }

  // ---- targets -----------------------------------------------------------

  async getTarget(id: string): Promise<Target | undefined> {
    const item = await this.get(keys.target(id));
    return item ? targetCodec.fromItem(item) : undefined;
  }

  /** Creates the target unless it exists; returns false (and changes nothing) if it does. */
  async createTarget(t: Target): Promise<boolean> {
    try {
      await this.db.send(new PutItemCommand({ TableName: this.tableName, Item: m(targetCodec.toItem(t)), ConditionExpression: 'attribute_not_exists(pk)' }));
      return true;
    } catch (e) {
      if (e instanceof ConditionalCheckFailedException) return false;
      throw e;
    }
  }

  async listTargetsByPlacement(placement: Placement, tapeName?: string, limit?: number): Promise<Target[]> {
    const input: Omit<QueryCommandInput, 'TableName'> = {
      IndexName: 'byPlacement',
      KeyConditionExpression: 'gsi1pk = :p',
      ExpressionAttributeValues: m({ ':p': placementIndexKey(placement, tapeName) }),
      ...(limit ? { Limit: limit } : {}),
    };
    if (!tapeName && placement !== 'unassigned') {
      // Across all tapes: the index key carries the tape, so scan by prefix instead.
      return (await this.listAllTargets()).filter((t) => t.placement === placement);
    }
    return (await this.queryAll(input)).map(targetCodec.fromItem);
  }

  async listAllTargets(): Promise<Target[]> {
    const items: Record<string, unknown>[] = [];
    let start: Record<string, import('@aws-sdk/client-dynamodb').AttributeValue> | undefined;
    do {
      const out = await this.db.send(
        new ScanCommand({
          TableName: this.tableName,
          FilterExpression: '#t = :t',
          ExpressionAttributeNames: { '#t': 'type' },
          ExpressionAttributeValues: m({ ':t': 'target' }),
          ExclusiveStartKey: start,
          ConsistentRead: true,
        }),
      );
      items.push(...(out.Items ?? []).map((i) => unmarshall(i)));
      start = out.LastEvaluatedKey;
    } while (start);
    return items.map(targetCodec.fromItem).sort((a, b) => a.importedAt.localeCompare(b.importedAt) || a.id.localeCompare(b.id));
  }

  /**
   * Writes `next` over `current` only if the stored item still has `current.version`
   * (optimistic lock); `next.version` must be current + 1.
   */
  targetUpdateItem(current: Target, next: Target): TransactWriteItem {
    if (next.version !== current.version + 1) throw new Error('target version must advance by one');
    return {
      Put: {
        TableName: this.tableName,
        Item: m(targetCodec.toItem(next)),
        ConditionExpression: 'version = :v',
        ExpressionAttributeValues: m({ ':v': current.version }),
      },
    };
  }

  async updateTarget(current: Target, next: Target): Promise<boolean> {
    try {
      await this.db.send(new PutItemCommand(this.targetUpdateItem(current, next).Put!));
      return true;
    } catch (e) {
      if (e instanceof ConditionalCheckFailedException) return false;
      throw e;
    }
  }

  /** Counts targets per (placement, tape) for the tapes table. */
  async countAssigned(tapeName: string): Promise<number> {
    let count = 0;
    let start: QueryCommandInput['ExclusiveStartKey'];
    do {
      const out = await this.db.send(
        new QueryCommand({
          TableName: this.tableName,
          IndexName: 'byPlacement',
          KeyConditionExpression: 'gsi1pk = :p',
          ExpressionAttributeValues: m({ ':p': placementIndexKey('assigned', tapeName) }),
          Select: 'COUNT',
          ExclusiveStartKey: start,
        }),
      );
      count += out.Count ?? 0;
      start = out.LastEvaluatedKey;
    } while (start);
    return count;
  }

  // ---- tape files and writes ---------------------------------------------

  async getTapeFile(tapeName: string, fileNumber: number): Promise<TapeFile | undefined> {
    const item = await this.get(keys.tapeFile(tapeName, fileNumber));
    return item ? tapeFileCodec.fromItem(item) : undefined;
  }

  async listTapeFiles(tapeName: string): Promise<TapeFile[]> {
    const items = await this.queryAll({
      KeyConditionExpression: 'pk = :pk AND begins_with(sk, :f)',
      ExpressionAttributeValues: m({ ':pk': keys.tape(tapeName).pk, ':f': 'FILE#' }),
      ConsistentRead: true,
    });
    return items.map(tapeFileCodec.fromItem);
  }

  /**
   * Allocates the tape's next file number to `target` and marks the write in flight, in one
   * transaction. It fails (ConditionFailed) if the number was taken, a write is already in
   * flight on the tape, the tape is no longer writable/online, or the target changed.
   */
  async startWrite(tape: Tape, target: Target, writing: Target, flight: WriteInFlight, now: string, extra: TransactWriteItem[] = []): Promise<void> {
    const fileNumber = flight.fileNumber;
    await this.transact([
      {
        Update: {
          TableName: this.tableName,
          Key: m(keys.tape(tape.name)),
          UpdateExpression: 'SET nextFileNumber = :next, writeInFlight = :w, updatedAt = :now',
          ConditionExpression: `nextFileNumber = :n AND attribute_not_exists(writeInFlight) AND #o = :t AND ${writableStates.expression}`,
          ExpressionAttributeNames: { '#s': 'state', '#o': 'online' },
          ExpressionAttributeValues: m({
            ':next': fileNumber + 1,
            ':n': fileNumber,
            ':w': flight,
            ':now': now,
            ':t': true,
            ...writableStates.values,
          }),
        },
      },
      {
        Put: {
          TableName: this.tableName,
          Item: m(
            tapeFileCodec.toItem({
              tapeName: tape.name,
              fileNumber,
              targetId: target.id,
              state: 'writing',
              taskId: flight.taskId,
              startedAt: now,
            }),
          ),
          ConditionExpression: 'attribute_not_exists(pk)',
        },
      },
      this.targetUpdateItem(target, writing),
      ...extra,
    ]);
  }

  /** The target's side of ending a write: placement `to`, only if it is still writing that file. */
  private targetAfterWriteItem(
    tapeName: string,
    fileNumber: number,
    targetId: string,
    to: Placement,
    now: string,
    extra: Record<string, unknown> = {},
  ): TransactWriteItem {
    const sets = Object.keys(extra).map((_k, i) => `#x${i} = :x${i}`);
    const names = Object.fromEntries(Object.keys(extra).map((k, i) => [`#x${i}`, k]));
    const values = Object.fromEntries(Object.values(extra).map((v, i) => [`:x${i}`, v]));
    const keepNumber = to === 'archived' || to === 'confirmed' || to === 'confirm_failed';
    return {
      Update: {
        TableName: this.tableName,
        Key: m(keys.target(targetId)),
        UpdateExpression: `SET placement = :to, gsi1pk = :g, updatedAt = :now, version = version + :one${sets.length ? ', ' + sets.join(', ') : ''}${keepNumber ? '' : ' REMOVE fileNumber'}`,
        ConditionExpression: 'placement = :writing AND tapeName = :t AND fileNumber = :n',
        ...(sets.length ? { ExpressionAttributeNames: names } : {}),
        ExpressionAttributeValues: m({
          ':to': to,
          ':g': placementIndexKey(to, tapeName),
          ':now': now,
          ':one': 1,
          ':writing': 'writing',
          ':t': tapeName,
          ':n': fileNumber,
          ...values,
        }),
      },
    };
  }

  /**
   * Records a completed write (trailer and filemark on tape): tape file archived, target
   * archived, usage counted, the in-flight mark cleared. Conditional on the task id, so a
   * duplicate or late report fails its condition and changes nothing.
   */
  async finishWrite(
    tape: Tape,
    w: { taskId: string; fileNumber: number; targetId: string; bytes: number; fileCount: number; sha256: string },
    now: string,
  ): Promise<void> {
    const labelled = tape.state === 'registered' ? ', #s = :labelled' : '';
    await this.transact([
      {
        Update: {
          TableName: this.tableName,
          Key: m(keys.tape(tape.name)),
          UpdateExpression: `SET bytesUsed = bytesUsed + :b, filesWritten = filesWritten + :one, updatedAt = :now${labelled} REMOVE writeInFlight`,
          ConditionExpression: 'writeInFlight.taskId = :task AND writeInFlight.fileNumber = :n',
          ...(labelled ? { ExpressionAttributeNames: { '#s': 'state' } } : {}),
          ExpressionAttributeValues: m({
            ':b': w.bytes,
            ':one': 1,
            ':now': now,
            ':task': w.taskId,
            ':n': w.fileNumber,
            ...(labelled ? { ':labelled': 'labelled' } : {}),
          }),
        },
      },
      {
        Update: {
          TableName: this.tableName,
          Key: m(keys.tapeFile(tape.name, w.fileNumber)),
          UpdateExpression: 'SET #s = :archived, bytes = :b, fileCount = :fc, sha256 = :sha, archivedAt = :now',
          ConditionExpression: '#s = :writing AND taskId = :task AND targetId = :target',
          ExpressionAttributeNames: { '#s': 'state' },
          ExpressionAttributeValues: m({
            ':archived': 'archived',
            ':b': w.bytes,
            ':fc': w.fileCount,
            ':sha': w.sha256,
            ':now': now,
            ':writing': 'writing',
            ':task': w.taskId,
            ':target': w.targetId,
          }),
        },
      },
      this.targetAfterWriteItem(tape.name, w.fileNumber, w.targetId, 'archived', now),
    ]);
  }

  /**
   * Gives a write up: the tape file record is removed and its number handed back (the next
   * write overwrites it on tape), the target returns to `targetPlacement`. With `tapeState`
   * the tape becomes full (end of medium) or disabled (refused or failing, with a reason). Conditional on the task id, like finishWrite.
   */
  async discardWrite(
    tape: Tape,
    w: { taskId: string; fileNumber: number; targetId: string },
    outcome: { targetPlacement: 'assigned' | 'write_failed'; tapeState?: 'full' | 'disabled' | 'labelled'; reason?: string; error?: string },
    now: string,
  ): Promise<void> {
    const full = outcome.tapeState ? `, #s = :full${outcome.reason ? ', reason = :reason' : ''}` : '';
    await this.transact([
      {
        Update: {
          TableName: this.tableName,
          Key: m(keys.tape(tape.name)),
          UpdateExpression: `SET nextFileNumber = :n, updatedAt = :now${full} REMOVE writeInFlight`,
          ConditionExpression: 'writeInFlight.taskId = :task AND writeInFlight.fileNumber = :n',
          ...(full ? { ExpressionAttributeNames: { '#s': 'state' } } : {}),
          ExpressionAttributeValues: m({
            ':n': w.fileNumber,
            ':now': now,
            ':task': w.taskId,
            ...(outcome.tapeState ? { ':full': outcome.tapeState } : {}),
            ...(outcome.tapeState && outcome.reason ? { ':reason': outcome.reason } : {}),
          }),
        },
      },
      {
        Delete: {
          TableName: this.tableName,
          Key: m(keys.tapeFile(tape.name, w.fileNumber)),
          ConditionExpression: '#s = :writing AND taskId = :task',
          ExpressionAttributeNames: { '#s': 'state' },
          ExpressionAttributeValues: m({ ':writing': 'writing', ':task': w.taskId }),
        },
      },
      this.targetAfterWriteItem(tape.name, w.fileNumber, w.targetId, outcome.targetPlacement, now, outcome.error ? { lastError: outcome.error } : {}),
    ]);
  }

  /**
   * Applies a read-back verify to the tape file and its target. Idempotent per verify task:
   * the file remembers the last verify task applied, and the confirmed count moves only when
   * the file's state really changes.
   */
  async recordVerify(file: TapeFile, v: { taskId: string; ok: boolean; error?: string }, now: string): Promise<void> {
    const to = v.ok ? 'confirmed' : 'confirm_failed';
    const delta = (to === 'confirmed' ? 1 : 0) - (file.state === 'confirmed' ? 1 : 0);
    const items: TransactWriteItem[] = [
      {
        Update: {
          TableName: this.tableName,
          Key: m(keys.tapeFile(file.tapeName, file.fileNumber)),
          UpdateExpression: `SET #s = :to, verifiedAt = :now, lastVerifyTaskId = :task${v.error ? ', verifyError = :err' : ''}${v.error ? '' : ' REMOVE verifyError'}`,
          ConditionExpression: '#s = :from AND targetId = :target AND (attribute_not_exists(lastVerifyTaskId) OR lastVerifyTaskId <> :task)',
          ExpressionAttributeNames: { '#s': 'state' },
          ExpressionAttributeValues: m({
            ':to': to,
            ':now': now,
            ':task': v.taskId,
            ':from': file.state,
            ':target': file.targetId,
            ...(v.error ? { ':err': v.error.slice(0, 4000) } : {}),
          }),
        },
      },
      {
        Update: {
          TableName: this.tableName,
          Key: m(keys.target(file.targetId)),
          UpdateExpression: `SET placement = :to, gsi1pk = :g, updatedAt = :now, version = version + :one${v.error ? ', lastError = :err' : ''}${v.error ? '' : ' REMOVE lastError'}`,
          ConditionExpression: 'tapeName = :t AND fileNumber = :n AND placement IN (:archived, :confirmed, :failed)',
          ExpressionAttributeValues: m({
            ':to': to,
            ':g': placementIndexKey(to, file.tapeName),
            ':now': now,
            ':one': 1,
            ':t': file.tapeName,
            ':n': file.fileNumber,
            ':archived': 'archived',
            ':confirmed': 'confirmed',
            ':failed': 'confirm_failed',
            ...(v.error ? { ':err': v.error.slice(0, 4000) } : {}),
          }),
        },
      },
    ];
    if (delta !== 0) {
      items.push({
        Update: {
          TableName: this.tableName,
          Key: m(keys.tape(file.tapeName)),
          UpdateExpression: 'SET filesConfirmed = filesConfirmed + :d, updatedAt = :now',
          ExpressionAttributeValues: m({ ':d': delta, ':now': now }),
        },
      });
    }
    await this.transact(items);
  }

  /** Targets whose scan is still pending (for reconcile). */
  async listPendingScans(): Promise<Target[]> {
    return (await this.listAllTargets()).filter((t) => t.scan === 'pending');
  }
}
