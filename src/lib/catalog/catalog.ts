/**
 * The catalog repository: tapes, targets with their copies, tape files and the online
 * pointers in one DynamoDB table. Every state change is a conditional write (or a transaction of them) so
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
  UpdateItemCommand,
  type DynamoDBClient,
  type QueryCommandInput,
  type TransactWriteItem,
  type UpdateItemCommandInput,
} from '@aws-sdk/client-dynamodb';
import { unmarshall } from '@aws-sdk/util-dynamodb';
import { CatalogUpgradeError, ConflictError } from '../errors.ts';
import type { Tape, TapeSnapshot, WriteInFlight } from '../domain/tape.ts';
import type { Target } from '../domain/target.ts';
import type { TapeFile } from '../domain/tape-file.ts';
import { DEFAULT_POOL, type Copy, type TargetCopies } from '../domain/copies.ts';
import { copyCodec, isReleaseThreeTarget, keys, tapeCodec, tapeFileCodec, targetCodec } from './items.ts';
import {
  allTargetsScan,
  assignedCountQuery,
  closeTapeItems,
  finishSnapshotItem,
  startSnapshotItem,
  copiesByPlacementQuery,
  copyUpdateItem,
  discardWriteItems,
  finishWriteItems,
  anyOfTypeScan,
  newCopyItem,
  newTapeFileItem,
  newTapeItem,
  rebuiltTapeItem,
  getItemInput,
  newTargetItems,
  onlinePointersQuery,
  policyNamesPoolCheck,
  recordVerifyItems,
  setOnlineItems,
  enableTapeItems,
  stampTapeFileScanItem,
  removeTapeItems,
  startWriteItems,
  tapeFilesQuery,
  tapesQuery,
  targetPartitionQuery,
  targetUpdateItem,
} from './requests.ts';

export class ConditionFailed extends Error {
  override readonly name = 'ConditionFailed';
  constructor(readonly reasons: (string | undefined)[] = []) {
    super(`condition failed: ${reasons.join(', ')}`);
  }
}

export { stateIn } from './requests.ts';

export class Catalog {
  constructor(
    readonly db: DynamoDBClient,
    readonly tableName: string,
  ) {}

  // ---- low-level helpers -------------------------------------------------

  private async get(key: { pk: string; sk: string }, consistent = true): Promise<Record<string, unknown> | undefined> {
    const out = await this.db.send(new GetItemCommand(getItemInput(this.tableName, key, consistent)));
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

  /** One conditional update; false when its condition does not hold. */
  async tryUpdate(input: UpdateItemCommandInput): Promise<boolean> {
    try {
      await this.db.send(new UpdateItemCommand(input));
      return true;
    } catch (e) {
      if (e instanceof ConditionalCheckFailedException) return false;
      throw e;
    }
  }

  // ---- tapes -------------------------------------------------------------

  async getTape(name: string): Promise<Tape | undefined> {
    const item = await this.get(keys.tape(name));
    return item ? tapeCodec.fromItem(item) : undefined;
  }

  async listTapes(): Promise<Tape[]> {
    const items = await this.queryAll(tapesQuery());
    return items.map(tapeCodec.fromItem);
  }

  /** The online tape of `pool` (CatalogUpgradeError on release 0.3's pointer, which names no pool). */
  async getOnlineTapeName(pool: string = DEFAULT_POOL): Promise<string | undefined> {
    const item = await this.get(keys.online(pool));
    return item ? onlinePointer(item).tapeName : undefined;
  }

  /** The online pointer of the default pool as stored (release 0.3's names no pool; migrate reads it this way). */
  async rawOnlinePointer(): Promise<Record<string, unknown> | undefined> {
    return this.get(keys.online());
  }

  /** The online tape of every pool that has one, by pool name. */
  async listOnline(): Promise<{ pool: string; tapeName: string }[]> {
    const items = await this.queryAll(onlinePointersQuery());
    return items.map(onlinePointer).sort((a, b) => a.pool.localeCompare(b.pool));
  }

  /**
   * Makes `name` the online tape of `pool` in one transaction: pointer, new tape flag, old
   * tape flag. `expectedPrevious` guards against a concurrent open_tape.
   */
  async setOnline(pool: string, name: string, expectedPrevious: string | undefined, now: string, newTape?: Tape): Promise<void> {
    await this.transact(setOnlineItems(this.tableName, pool, name, expectedPrevious, now, newTape));
  }

  /** Closes a tape: state closed, offline, pointer cleared if it pointed here. */
  async closeTape(tape: Tape, now: string): Promise<void> {
    await this.transact(closeTapeItems(this.tableName, tape, now));
  }

  /** See startSnapshotItem; ConditionFailed when the tape is not closed at that file number, or busy. */
  async startSnapshot(tape: Tape, inFlight: NonNullable<Tape['snapshotInFlight']>, now: string): Promise<void> {
    if (!(await this.tryUpdate(startSnapshotItem(this.tableName, tape, inFlight, now)))) throw new ConditionFailed(['ConditionalCheckFailed']);
  }

  /** See finishSnapshotItem; false when that snapshot is not in flight (already applied). */
  async finishSnapshot(tapeName: string, taskId: string, written: TapeSnapshot | undefined, now: string): Promise<boolean> {
    return this.tryUpdate(finishSnapshotItem(this.tableName, tapeName, taskId, written, now));
  }

  /** See stampTapeFileScanItem; false when the file already names its scan. */
  async stampTapeFileScan(file: TapeFile, scanId: string, manifestPages: number): Promise<boolean> {
    return this.tryUpdate(stampTapeFileScanItem(this.tableName, file, scanId, manifestPages).Update!);
  }

  /** Removes an empty tape's record (ConditionFailed if anything was written or started meanwhile). */
  async removeTape(tape: Tape): Promise<void> {
    await this.transact(removeTapeItems(this.tableName, tape));
  }

  /** A disabled tape back in service, by check task `checkTaskId`; false if the tape or the task is no longer as read. */
  async enableTape(tape: Tape, to: 'registered' | 'labelled', checkTaskId: string, now: string): Promise<boolean> {
    try {
      await this.transact(enableTapeItems(this.tableName, tape, to, checkTaskId, now));
      return true;
    } catch (e) {
      if (e instanceof ConditionFailed) return false;
      throw e;
    }
  }

  // ---- targets and copies -------------------------------------------------

  /** The target's own item (scan, policy); of a release-0.3 item too. */
  async getTarget(id: string): Promise<Target | undefined> {
    const item = await this.get(keys.target(id));
    return item ? targetCodec.fromItem(item) : undefined;
  }

  /** The target's item as stored (migrate reads release-0.3 items this way). */
  async rawTarget(id: string): Promise<Record<string, unknown> | undefined> {
    return this.get(keys.target(id));
  }

  /** The target and all its copies, in one Query (CatalogUpgradeError on a release-0.3 target). */
  async getTargetCopies(id: string): Promise<TargetCopies | undefined> {
    return groupTargets(await this.queryAll(targetPartitionQuery(id)))[0];
  }

  /** Creates the target with its copies unless it exists; returns false (and changes nothing) if it does. */
  async createTarget(t: Target, copies: Copy[]): Promise<boolean> {
    try {
      await this.transact(newTargetItems(this.tableName, t, copies));
      return true;
    } catch (e) {
      if (e instanceof ConditionFailed) return false;
      throw e;
    }
  }

  /**
   * Copies of one placement on one tape (or, unassigned, of one pool), in import order. Only
   * copies of `where.pool`: the index finds a tape's copies by its name, and a name given up
   * (remove_tape) may come back in another pool.
   */
  async listCopies(where: Pick<Copy, 'placement' | 'pool' | 'tapeName'>): Promise<Copy[]> {
    return (await this.queryAll(copiesByPlacementQuery(where))).map(copyCodec.fromItem).filter((c) => c.pool === where.pool);
  }

  /** Copies in `placement` on a tape of this name, of any pool (a tape already removed: remove_tape's release, open_tape of the name). */
  async listCopiesOnTapeName(placement: Copy['placement'], tapeName: string): Promise<Copy[]> {
    return (await this.queryAll(copiesByPlacementQuery({ placement, pool: DEFAULT_POOL, tapeName }))).map(copyCodec.fromItem);
  }

  /** Every target's own item, in import order (release-0.3 items too). */
  async listAllTargets(): Promise<Target[]> {
    return (await this.scanTargets())
      .filter((i) => i.type === 'target')
      .map(targetCodec.fromItem)
      .sort(byImport);
  }

  /** Every target with its copies, in import order (CatalogUpgradeError on a release-0.3 target). */
  async listAllTargetCopies(): Promise<TargetCopies[]> {
    return groupTargets(await this.scanTargets());
  }

  /** Every item of a target or a copy, raw. */
  async scanTargets(): Promise<Record<string, unknown>[]> {
    const items: Record<string, unknown>[] = [];
    let start: Record<string, import('@aws-sdk/client-dynamodb').AttributeValue> | undefined;
    do {
      const out = await this.db.send(new ScanCommand(allTargetsScan(this.tableName, start)));
      items.push(...(out.Items ?? []).map((i) => unmarshall(i)));
      start = out.LastEvaluatedKey;
    } while (start);
    return items;
  }

  /** The target's scan or policy, if it still has `current.version` (CatalogUpgradeError on a release-0.3 item). */
  async updateTarget(current: Target, next: Target): Promise<boolean> {
    try {
      await this.db.send(new PutItemCommand(targetUpdateItem(this.tableName, current, next).Put!));
      return true;
    } catch (e) {
      if (!(e instanceof ConditionalCheckFailedException)) throw e;
      const item = await this.get(keys.target(current.id));
      if (item && isReleaseThreeTarget(item)) throw new CatalogUpgradeError(`target ${current.id} still holds its placement`);
      return false;
    }
  }

  /** A copy assigned to a tape, if it still has `current.version` and its target's policy still names its pool. */
  async assignCopy(current: Copy, next: Copy): Promise<boolean> {
    try {
      await this.transact([copyUpdateItem(this.tableName, current, next), policyNamesPoolCheck(this.tableName, current.targetId, current.pool)]);
      return true;
    } catch (e) {
      // Changed meanwhile, or another transaction on the target at that moment: not assigned, and said so.
      if (e instanceof ConditionFailed || e instanceof ConflictError) return false;
      throw e;
    }
  }

  /** A copy's new placement, if it still has `current.version`. */
  async updateCopy(current: Copy, next: Copy): Promise<boolean> {
    try {
      await this.db.send(new PutItemCommand(copyUpdateItem(this.tableName, current, next).Put!));
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
      const out = await this.db.send(new QueryCommand(assignedCountQuery(this.tableName, tapeName, start)));
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
    const items = await this.queryAll(tapeFilesQuery(tapeName));
    return items.map(tapeFileCodec.fromItem);
  }

  /**
   * Allocates the tape's next file number to `target` and marks the write in flight, in one
   * transaction. It fails (ConditionFailed) if the number was taken, a write is already in
   * flight on the tape, the tape is no longer writable/online, or the target changed.
   */
  async startWrite(tape: Tape, target: Target, copy: Copy, writing: Copy, flight: WriteInFlight, now: string, extra: TransactWriteItem[] = []): Promise<void> {
    await this.transact([...startWriteItems(this.tableName, tape, target, copy, writing, flight, now), ...extra]);
  }

  /**
   * Records a completed write (trailer and filemark on tape): tape file archived, target
   * archived, usage counted, the in-flight mark cleared. Conditional on the task id, so a
   * duplicate or late report fails its condition and changes nothing.
   */
  async finishWrite(tape: Tape, w: Parameters<typeof finishWriteItems>[2], now: string): Promise<void> {
    await this.transact(finishWriteItems(this.tableName, tape, w, now));
  }

  /**
   * Gives a write up: the tape file record is removed and its number handed back (the next
   * write overwrites it on tape), the target returns to `targetPlacement`. With `tapeState`
   * the tape becomes full (end of medium) or disabled (refused or failing, with a reason). Conditional on the task id, like finishWrite.
   */
  async discardWrite(tape: Tape, w: Parameters<typeof discardWriteItems>[2], outcome: Parameters<typeof discardWriteItems>[3], now: string): Promise<void> {
    await this.transact(discardWriteItems(this.tableName, tape, w, outcome, now));
  }

  /**
   * Applies a read-back verify to the tape file and its target. Idempotent per verify task:
   * the file remembers the last verify task applied, and the confirmed count moves only when
   * the file's state really changes.
   */
  async recordVerify(file: TapeFile, pool: string, v: Parameters<typeof recordVerifyItems>[3], now: string): Promise<void> {
    await this.transact(recordVerifyItems(this.tableName, file, pool, v, now));
  }

  /** Targets whose scan is still pending (for reconcile). */
  // ---- rebuild from tapes (rebuild_catalog) ---------------------------------

  /** Is there any item of this type (tape, target)? Stops at the first. */
  async hasAny(type: 'tape' | 'target'): Promise<boolean> {
    let start: Record<string, import('@aws-sdk/client-dynamodb').AttributeValue> | undefined;
    do {
      const out = await this.db.send(new ScanCommand(anyOfTypeScan(this.tableName, type, start)));
      if (out.Items?.length) return true;
      start = out.LastEvaluatedKey;
    } while (start);
    return false;
  }

  /** Writes items only where the catalog has none at their keys: false (nothing written) if any is there. */
  private async putNew(items: TransactWriteItem[]): Promise<boolean> {
    try {
      await this.transact(items);
      return true;
    } catch (e) {
      if (e instanceof ConditionFailed) return false;
      throw e;
    }
  }

  addRebuiltTape(tape: Tape): Promise<boolean> {
    return this.putNew([newTapeItem(this.tableName, tape)]);
  }

  /** A tape a rebuild read to its end: over its start's item, never over a tape the catalog had before. */
  finishRebuiltTape(tape: Tape): Promise<boolean> {
    return this.putNew([rebuiltTapeItem(this.tableName, tape)]);
  }

  addRebuiltTapeFile(file: TapeFile): Promise<boolean> {
    return this.putNew([newTapeFileItem(this.tableName, file)]);
  }

  addRebuiltCopy(copy: Copy): Promise<boolean> {
    return this.putNew([newCopyItem(this.tableName, copy)]);
  }

  async listPendingScans(): Promise<Target[]> {
    return (await this.listAllTargets()).filter((t) => t.scan === 'pending');
  }
}

/** An online pointer; release 0.3's (no pool: it may name a tape of any pool) means `migrate` has not run. */
function onlinePointer(item: Record<string, unknown>): { pool: string; tapeName: string } {
  if (typeof item.pool !== 'string') throw new CatalogUpgradeError(`the online pointer of ${String(item.tapeName)} names no pool`);
  return { pool: item.pool, tapeName: String(item.tapeName) };
}

const byImport = (a: Target, b: Target) => a.importedAt.localeCompare(b.importedAt) || a.id.localeCompare(b.id);

/** Target and copy items (any order) -> each target with its copies, in import order. */
function groupTargets(items: Record<string, unknown>[]): TargetCopies[] {
  const copies = new Map<string, Copy[]>();
  for (const i of items) {
    if (isReleaseThreeTarget(i)) throw new CatalogUpgradeError(`target ${String(i.id)} still holds its placement`);
    if (i.type !== 'copy') continue;
    const c = copyCodec.fromItem(i);
    copies.set(c.targetId, [...(copies.get(c.targetId) ?? []), c]);
  }
  return items
    .filter((i) => i.type === 'target')
    .map(targetCodec.fromItem)
    .sort(byImport)
    .map((target) => ({ target, copies: (copies.get(target.id) ?? []).sort((a, b) => a.pool.localeCompare(b.pool)) }));
}
