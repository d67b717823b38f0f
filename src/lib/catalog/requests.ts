/**
 * Request parameters of every conditional write and transaction of the catalog, built by pure
 * functions (no client, unit-tested without DynamoDB); `catalog.ts` sends them. State
 * conditions derive from the domain model's lists (stateIn).
 */
import type {
  AttributeValue,
  GetItemCommandInput,
  QueryCommandInput,
  ScanCommandInput,
  TransactWriteItem,
  UpdateItemCommandInput,
} from '@aws-sdk/client-dynamodb';
import { marshall } from '@aws-sdk/util-dynamodb';
import { ONLINE_TAPE_STATES, WRITABLE_TAPE_STATES, type Tape, type TapeSnapshot, type WriteInFlight } from '../domain/tape.ts';
import type { Placement, Target } from '../domain/target.ts';
import type { TapeFile } from '../domain/tape-file.ts';
import { DEFAULT_POOL, type Copy } from '../domain/copies.ts';
import { copyCodec, copyIndexKey, keys, tapeCodec, tapeFileCodec, targetCodec } from './items.ts';

export const m = (o: Record<string, unknown>) => marshall(o, { removeUndefinedValues: true });

/**
 * `#s IN (:s0, :s1, ...)` for a state list of the domain model, with its values: conditions
 * derive from src/lib/domain, never from a list written here.
 */
export function stateIn(states: readonly string[], prefix = 's'): { expression: string; values: Record<string, string> } {
  const values = Object.fromEntries(states.map((s, i) => [`:${prefix}${i}`, s]));
  return { expression: `#s IN (${Object.keys(values).join(', ')})`, values };
}

// ---- reads ----------------------------------------------------------------

export function getItemInput(table: string, key: { pk: string; sk: string }, consistent = true): GetItemCommandInput {
  return { TableName: table, Key: m(key), ConsistentRead: consistent };
}

/** Every tape (the TAPES partition of the index). Without TableName: the repository pages it. */
export function tapesQuery(): Omit<QueryCommandInput, 'TableName'> {
  return { IndexName: 'byPlacement', KeyConditionExpression: 'gsi1pk = :p', ExpressionAttributeValues: m({ ':p': 'TAPES' }) };
}

/** Copies of one placement on one tape (or, unassigned, of one pool), in import order. */
export function copiesByPlacementQuery(where: Pick<Copy, 'placement' | 'pool' | 'tapeName'>): Omit<QueryCommandInput, 'TableName'> {
  return { IndexName: 'byPlacement', KeyConditionExpression: 'gsi1pk = :p', ExpressionAttributeValues: m({ ':p': copyIndexKey(where) }) };
}

/** A target and all its copies: its partition. */
export function targetPartitionQuery(targetId: string): Omit<QueryCommandInput, 'TableName'> {
  return { KeyConditionExpression: 'pk = :pk', ExpressionAttributeValues: m({ ':pk': keys.target(targetId).pk }), ConsistentRead: true };
}

/** The online pointers of every pool. */
export function onlinePointersQuery(): Omit<QueryCommandInput, 'TableName'> {
  return { KeyConditionExpression: 'pk = :pk', ExpressionAttributeValues: m({ ':pk': keys.online().pk }), ConsistentRead: true };
}

/** The tape files of a tape, in file number order. */
export function tapeFilesQuery(tapeName: string): Omit<QueryCommandInput, 'TableName'> {
  return {
    KeyConditionExpression: 'pk = :pk AND begins_with(sk, :f)',
    ExpressionAttributeValues: m({ ':pk': keys.tape(tapeName).pk, ':f': 'FILE#' }),
    ConsistentRead: true,
  };
}

/** One page of every target and copy (a Scan: the index key carries the tape). */
export function allTargetsScan(table: string, start?: Record<string, AttributeValue>): ScanCommandInput {
  return {
    TableName: table,
    FilterExpression: '#t IN (:t, :c)',
    ExpressionAttributeNames: { '#t': 'type' },
    ExpressionAttributeValues: m({ ':t': 'target', ':c': 'copy' }),
    ExclusiveStartKey: start,
    ConsistentRead: true,
  };
}

/** One page of the count of targets assigned to a tape. */
export function assignedCountQuery(table: string, tapeName: string, start?: Record<string, AttributeValue>): QueryCommandInput {
  return {
    TableName: table,
    IndexName: 'byPlacement',
    KeyConditionExpression: 'gsi1pk = :p',
    ExpressionAttributeValues: m({ ':p': copyIndexKey({ placement: 'assigned', pool: DEFAULT_POOL, tapeName }) }),
    Select: 'COUNT',
    ExclusiveStartKey: start,
  };
}

/** A new target with its copies, unless one exists under its id. */
export function newTargetItems(table: string, t: Target, copies: Copy[]): TransactWriteItem[] {
  return [t, ...copies].map((x) => ({
    Put: { TableName: table, Item: m('pool' in x ? copyCodec.toItem(x) : targetCodec.toItem(x)), ConditionExpression: 'attribute_not_exists(pk)' },
  }));
}

// ---- writes ---------------------------------------------------------------

const onlineStates = stateIn(ONLINE_TAPE_STATES, 'on');
const writableStates = stateIn(WRITABLE_TAPE_STATES, 'wr');

export function newTapeItem(table: string, tape: Tape): TransactWriteItem {
  return { Put: { TableName: table, Item: m(tapeCodec.toItem(tape)), ConditionExpression: 'attribute_not_exists(pk)' } };
}

/**
 * Makes `name` the online tape of `pool` in one transaction: the pool's pointer, new tape
 * flag, old tape flag. `expectedPrevious` guards against a concurrent open_tape.
 */
export function setOnlineItems(
  table: string,
  pool: string,
  name: string,
  expectedPrevious: string | undefined,
  now: string,
  newTape?: Tape,
): TransactWriteItem[] {
  const items: TransactWriteItem[] = [];
  items.push({
    Put: {
      TableName: table,
      Item: m({ ...keys.online(pool), type: 'online', pool, tapeName: name, updatedAt: now }),
      ...(expectedPrevious
        ? { ConditionExpression: 'tapeName = :prev', ExpressionAttributeValues: m({ ':prev': expectedPrevious }) }
        : { ConditionExpression: 'attribute_not_exists(pk)' }),
    },
  });
  if (newTape) {
    items.push(newTapeItem(table, { ...newTape, online: true }));
  } else {
    items.push({
      Update: {
        TableName: table,
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
        TableName: table,
        Key: m(keys.tape(expectedPrevious)),
        UpdateExpression: 'SET #o = :f, updatedAt = :now',
        ConditionExpression: 'attribute_exists(pk)',
        ExpressionAttributeNames: { '#o': 'online' },
        ExpressionAttributeValues: m({ ':f': false, ':now': now }),
      },
    });
  }
  return items;
}

/** Closes a tape: state closed, offline, pointer cleared if it pointed here. */
export function closeTapeItems(table: string, tape: Tape, now: string): TransactWriteItem[] {
  const items: TransactWriteItem[] = [
    {
      Update: {
        TableName: table,
        Key: m(keys.tape(tape.name)),
        UpdateExpression: 'SET #s = :closed, #o = :f, updatedAt = :now',
        ConditionExpression: '#s = :from AND attribute_not_exists(writeInFlight)',
        ExpressionAttributeNames: { '#s': 'state', '#o': 'online' },
        ExpressionAttributeValues: m({ ':closed': 'closed', ':f': false, ':now': now, ':from': tape.state }),
      },
    },
  ];
  if (tape.online) items.push(onlinePointerDelete(table, tape));
  return items;
}

/** A catalog snapshot starts on a closed tape: only at its end of data, and only one write at a time. */
export function startSnapshotItem(table: string, tape: Tape, inFlight: NonNullable<Tape['snapshotInFlight']>, now: string): UpdateItemCommandInput {
  return {
    TableName: table,
    Key: m(keys.tape(tape.name)),
    UpdateExpression: 'SET snapshotInFlight = :w, updatedAt = :now',
    // An adopted tape (format tapetown) is never written: the catalog refuses it, whatever the caller checked.
    ConditionExpression:
      '#s = :closed AND nextFileNumber = :n AND attribute_not_exists(writeInFlight) AND attribute_not_exists(snapshotInFlight) AND attribute_not_exists(#f)',
    ExpressionAttributeNames: { '#s': 'state', '#f': 'format' },
    ExpressionAttributeValues: m({ ':w': inFlight, ':now': now, ':closed': 'closed', ':n': inFlight.fileNumber }),
  };
}

/** The snapshot task's end: written (the tape's next file is after it, the snapshot listed) or not; only for the task in flight. */
export function finishSnapshotItem(table: string, tapeName: string, taskId: string, written: TapeSnapshot | undefined, now: string): UpdateItemCommandInput {
  return {
    TableName: table,
    Key: m(keys.tape(tapeName)),
    UpdateExpression: written
      ? 'SET nextFileNumber = :next, snapshots = list_append(if_not_exists(snapshots, :none), :one), updatedAt = :now REMOVE snapshotInFlight'
      : 'SET updatedAt = :now REMOVE snapshotInFlight',
    ConditionExpression: 'snapshotInFlight.taskId = :t',
    ExpressionAttributeValues: m({ ':t': taskId, ':now': now, ...(written ? { ':next': written.fileNumber + 1, ':none': [], ':one': [written] } : {}) }),
  };
}

/** Clears the pointer of the tape's pool, only while it names the tape. */
function onlinePointerDelete(table: string, tape: Pick<Tape, 'name' | 'pool'>): TransactWriteItem {
  return {
    Delete: { TableName: table, Key: m(keys.online(tape.pool)), ConditionExpression: 'tapeName = :n', ExpressionAttributeValues: m({ ':n': tape.name }) },
  };
}

/**
 * Records on a tape file written before release 0.3 (no scan id) the scan it was written
 * from, before its target is scanned again: the file keeps being checked against its own
 * manifest. Changes nothing on a file that already has one.
 */
export function stampTapeFileScanItem(table: string, file: TapeFile, scanId: string, manifestPages: number): TransactWriteItem {
  return {
    Update: {
      TableName: table,
      Key: m(keys.tapeFile(file.tapeName, file.fileNumber)),
      UpdateExpression: 'SET scanId = :s, manifestPages = :p',
      ConditionExpression: 'attribute_not_exists(scanId) AND targetId = :t',
      ExpressionAttributeValues: m({ ':s': scanId, ':p': manifestPages, ':t': file.targetId }),
    },
  };
}

/**
 * Removes the record of a tape that holds nothing (`remove_tape`: a typo, a cartridge never
 * used), and the online pointer if it points at it. Conditional on nothing having been
 * written or started since it was read.
 */
export function removeTapeItems(table: string, tape: Tape): TransactWriteItem[] {
  const items: TransactWriteItem[] = [
    {
      Delete: {
        TableName: table,
        Key: m(keys.tape(tape.name)),
        // ...and still online or offline as read, so a concurrent open_tape cannot leave the pointer on a deleted tape.
        ConditionExpression: 'nextFileNumber = :one AND filesWritten = :zero AND attribute_not_exists(writeInFlight) AND #o = :online',
        ExpressionAttributeNames: { '#o': 'online' },
        ExpressionAttributeValues: m({ ':one': 1, ':zero': 0, ':online': tape.online }),
      },
    },
  ];
  if (tape.online) items.push(onlinePointerDelete(table, tape));
  return items;
}

/**
 * A disabled tape back in service (`enable_tape`, after the agent found its label and end of
 * data where the catalog says): state `to`, reason cleared. Conditional on it still being
 * disabled at the same file number and on the check task still being open, so a late or
 * repeated report of an old check changes nothing.
 */
export function enableTapeItems(table: string, tape: Tape, to: 'registered' | 'labelled', checkTaskId: string, now: string): TransactWriteItem[] {
  return [
    {
      Update: {
        TableName: table,
        Key: m(keys.tape(tape.name)),
        UpdateExpression: 'SET #s = :to, updatedAt = :now REMOVE reason',
        ConditionExpression: '#s = :disabled AND nextFileNumber = :n AND attribute_not_exists(writeInFlight)',
        ExpressionAttributeNames: { '#s': 'state' },
        ExpressionAttributeValues: m({ ':to': to, ':now': now, ':disabled': 'disabled', ':n': tape.nextFileNumber }),
      },
    },
    {
      ConditionCheck: {
        TableName: table,
        Key: m({ pk: `TASK#${checkTaskId}`, sk: 'TASK' }),
        ConditionExpression: '#s IN (:queued, :running)',
        ExpressionAttributeNames: { '#s': 'state' },
        ExpressionAttributeValues: m({ ':queued': 'queued', ':running': 'running' }),
      },
    },
  ];
}

/**
 * Writes `next` over `current` only if the stored item still has `current.version`
 * (optimistic lock); `next.version` must be current + 1. Never over a release-0.3 item,
 * whose placement the put would drop (`migrate` first).
 */
export function targetUpdateItem(table: string, current: Target, next: Target): TransactWriteItem {
  if (next.version !== current.version + 1) throw new Error('target version must advance by one');
  return {
    Put: {
      TableName: table,
      Item: m(targetCodec.toItem(next)),
      ConditionExpression: 'version = :v AND attribute_not_exists(placement)',
      ExpressionAttributeValues: m({ ':v': current.version }),
    },
  };
}

/** Writes copy `next` over `current` only if the stored copy still has `current.version`. */
export function copyUpdateItem(table: string, current: Copy, next: Copy): TransactWriteItem {
  if (next.version !== current.version + 1 || next.targetId !== current.targetId || next.pool !== current.pool) {
    throw new Error('a copy update keeps target and pool and advances the version by one');
  }
  return {
    Put: {
      TableName: table,
      Item: m(copyCodec.toItem(next)),
      ConditionExpression: 'version = :v',
      ExpressionAttributeValues: m({ ':v': current.version }),
    },
  };
}

/** The target's policy still names `pool` (a copy is assigned only then; set_copies may drop it meanwhile). */
export function policyNamesPoolCheck(table: string, targetId: string, pool: string): TransactWriteItem {
  return {
    ConditionCheck: {
      TableName: table,
      Key: m(keys.target(targetId)),
      ConditionExpression: 'contains(copies, :pool)',
      ExpressionAttributeValues: m({ ':pool': pool }),
    },
  };
}

/** The copy is still at the version read (part of a transaction that depends on it). */
export function copyUnchangedCheck(table: string, c: Copy): TransactWriteItem {
  return {
    ConditionCheck: {
      TableName: table,
      Key: m(keys.copy(c.targetId, c.pool)),
      ConditionExpression: 'version = :v',
      ExpressionAttributeValues: m({ ':v': c.version }),
    },
  };
}

/** A new copy (a raised policy), unless the target already has one in that pool. */
export function newCopyItem(table: string, c: Copy): TransactWriteItem {
  return { Put: { TableName: table, Item: m(copyCodec.toItem(c)), ConditionExpression: 'attribute_not_exists(pk)' } };
}

/**
 * Allocates the tape's next file number to a copy of `target` and marks the write in flight,
 * in one transaction. It fails (ConditionFailed) if the number was taken, a write is already
 * in flight on the tape, the tape is no longer writable/online, the copy changed, or the
 * target was scanned again (the scan written is the target's current one).
 */
export function startWriteItems(table: string, tape: Tape, target: Target, copy: Copy, writing: Copy, flight: WriteInFlight, now: string): TransactWriteItem[] {
  const fileNumber = flight.fileNumber;
  return [
    {
      Update: {
        TableName: table,
        Key: m(keys.tape(tape.name)),
        UpdateExpression: 'SET nextFileNumber = :next, writeInFlight = :w, updatedAt = :now',
        ConditionExpression: `nextFileNumber = :n AND attribute_not_exists(writeInFlight) AND attribute_not_exists(#f) AND #o = :t AND ${writableStates.expression}`,
        ExpressionAttributeNames: { '#s': 'state', '#o': 'online', '#f': 'format' },
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
        TableName: table,
        Item: m(
          tapeFileCodec.toItem({
            tapeName: tape.name,
            fileNumber,
            targetId: target.id,
            state: 'writing',
            taskId: flight.taskId,
            ...(target.scanId ? { scanId: target.scanId, manifestPages: target.manifestPages ?? 0 } : {}),
            startedAt: now,
          }),
        ),
        ConditionExpression: 'attribute_not_exists(pk)',
      },
    },
    copyUpdateItem(table, copy, writing),
    {
      ConditionCheck: {
        TableName: table,
        Key: m(keys.target(target.id)),
        // ...and its policy still names the copy's pool (set_copies may have dropped it meanwhile).
        ConditionExpression: 'scanId = :sid AND #scan = :complete AND contains(copies, :pool)',
        ExpressionAttributeNames: { '#scan': 'scan' },
        ExpressionAttributeValues: m({ ':sid': target.scanId ?? '', ':complete': 'complete', ':pool': copy.pool }),
      },
    },
  ];
}

/** The copy's side of ending a write: placement `to`, only if it is still writing that file. */
export function copyAfterWriteItem(
  table: string,
  tape: Pick<Tape, 'name' | 'pool'>,
  fileNumber: number,
  targetId: string,
  to: Placement,
  now: string,
  extra: Record<string, unknown> = {},
  dropRepairSource = false,
): TransactWriteItem {
  const tapeName = tape.name;
  const sets = Object.keys(extra).map((_k, i) => `#x${i} = :x${i}`);
  const names = Object.fromEntries(Object.keys(extra).map((k, i) => [`#x${i}`, k]));
  const values = Object.fromEntries(Object.values(extra).map((v, i) => [`:x${i}`, v]));
  const keepNumber = to === 'archived' || to === 'confirmed' || to === 'confirm_failed';
  // A repair that wrote its file is done: the next write of this copy reads the source again.
  // So is one whose other copy could not be staged: the next write reads the source (checked against its scan).
  const remove = [...(keepNumber ? [] : ['fileNumber']), ...(to === 'archived' || dropRepairSource ? ['repairFrom'] : [])];
  return {
    Update: {
      TableName: table,
      Key: m(keys.copy(targetId, tape.pool)),
      UpdateExpression: `SET placement = :to, gsi1pk = :g, updatedAt = :now, version = version + :one${sets.length ? ', ' + sets.join(', ') : ''}${remove.length ? ` REMOVE ${remove.join(', ')}` : ''}`,
      ConditionExpression: 'placement = :writing AND tapeName = :t AND fileNumber = :n',
      ...(sets.length ? { ExpressionAttributeNames: names } : {}),
      ExpressionAttributeValues: m({
        ':to': to,
        ':g': copyIndexKey({ placement: to, pool: tape.pool, tapeName }),
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
 * Records a completed write (trailer and filemark on tape): tape file archived, copy
 * archived, usage counted, the in-flight mark cleared. Conditional on the task id, so a
 * duplicate or late report fails its condition and changes nothing.
 */
export function finishWriteItems(
  table: string,
  tape: Tape,
  w: { taskId: string; fileNumber: number; targetId: string; bytes: number; fileCount: number; sha256: string },
  now: string,
): TransactWriteItem[] {
  const labelled = tape.state === 'registered' ? ', #s = :labelled' : '';
  return [
    {
      Update: {
        TableName: table,
        Key: m(keys.tape(tape.name)),
        UpdateExpression: `SET bytesUsed = bytesUsed + :b, filesWritten = filesWritten + :one, updatedAt = :now${labelled} REMOVE writeInFlight, lastDiscardedWrite`,
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
        TableName: table,
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
    copyAfterWriteItem(table, tape, w.fileNumber, w.targetId, 'archived', now, { bytes: w.bytes, archivedAt: now }),
  ];
}

/**
 * Gives a write up: the tape file record is removed and its number handed back (the next
 * write overwrites it on tape), the copy returns to `targetPlacement`. With `tapeState`
 * the tape becomes full (end of medium) or disabled (refused or failing, with a reason). Conditional on the task id, like finishWrite.
 */
export function discardWriteItems(
  table: string,
  tape: Tape,
  w: { taskId: string; fileNumber: number; targetId: string },
  outcome: {
    targetPlacement: 'assigned' | 'write_failed';
    tapeState?: 'full' | 'disabled' | 'labelled';
    reason?: string;
    error?: string;
    /** A repair's other copy could not be staged: the copy's next write reads the source. */
    dropRepairSource?: boolean;
  },
  now: string,
): TransactWriteItem[] {
  const full = outcome.tapeState ? `, #s = :full${outcome.reason ? ', reason = :reason' : ''}` : '';
  return [
    {
      Update: {
        TableName: table,
        Key: m(keys.tape(tape.name)),
        // The discarded attempt is remembered: what it left on tape (st drives keep an aborted
        // file) may be written over by the next write at this number, and by nothing else.
        UpdateExpression: `SET nextFileNumber = :n, updatedAt = :now, lastDiscardedWrite = :d${full} REMOVE writeInFlight`,
        ConditionExpression: 'writeInFlight.taskId = :task AND writeInFlight.fileNumber = :n',
        ...(full ? { ExpressionAttributeNames: { '#s': 'state' } } : {}),
        ExpressionAttributeValues: m({
          ':n': w.fileNumber,
          ':now': now,
          ':task': w.taskId,
          ':d': { taskId: w.taskId, fileNumber: w.fileNumber },
          ...(outcome.tapeState ? { ':full': outcome.tapeState } : {}),
          ...(outcome.tapeState && outcome.reason ? { ':reason': outcome.reason } : {}),
        }),
      },
    },
    {
      Delete: {
        TableName: table,
        Key: m(keys.tapeFile(tape.name, w.fileNumber)),
        ConditionExpression: '#s = :writing AND taskId = :task',
        ExpressionAttributeNames: { '#s': 'state' },
        ExpressionAttributeValues: m({ ':writing': 'writing', ':task': w.taskId }),
      },
    },
    copyAfterWriteItem(
      table,
      tape,
      w.fileNumber,
      w.targetId,
      outcome.targetPlacement,
      now,
      outcome.error ? { lastError: outcome.error } : {},
      outcome.dropRepairSource,
    ),
  ];
}

/**
 * Applies a read-back verify to the tape file and, when the target's copy in the tape's pool
 * still lives in that file, to that copy (`targetOnFile`; a copy archived again elsewhere after
 * a bad read-back keeps its new placement, and only the old file's record changes). Idempotent per verify task:
 * the file remembers the last verify task applied, and the confirmed count moves only when
 * the file's state really changes.
 */
/** What a read-back of a tapetown file measured (protocol/results.ts, verify-result `exact`). */
export interface MeasuredFile {
  scanId: string;
  manifestPages: number;
  fileCount: number;
  tapeBytes: number;
  sha256: string;
}

export function recordVerifyItems(
  table: string,
  file: TapeFile,
  pool: string,
  v: { taskId: string; ok: boolean; error?: string; targetOnFile: boolean; scrub?: boolean; exact?: MeasuredFile },
  now: string,
): TransactWriteItem[] {
  // A tapetown file read back good: its exact figures replace tapetown's (the file and the copy).
  const x = v.ok ? v.exact : undefined;
  const fileSet = x ? ', scanId = :xs, manifestPages = :xp, fileCount = :xf, bytes = :xb, sha256 = :xh' : '';
  const fileValues = x ? { ':xs': x.scanId, ':xp': x.manifestPages, ':xf': x.fileCount, ':xb': x.tapeBytes, ':xh': x.sha256 } : {};
  const lastVerify: NonNullable<Copy['lastVerify']> = { at: now, ok: v.ok, taskId: v.taskId, ...(v.scrub ? { scrub: true } : {}) };
  const to = v.ok ? 'confirmed' : 'confirm_failed';
  const delta = (to === 'confirmed' ? 1 : 0) - (file.state === 'confirmed' ? 1 : 0);
  const items: TransactWriteItem[] = [
    {
      Update: {
        TableName: table,
        Key: m(keys.tapeFile(file.tapeName, file.fileNumber)),
        UpdateExpression: `SET #s = :to, verifiedAt = :now, lastVerifyTaskId = :task${fileSet}${v.error ? ', verifyError = :err' : ''}${v.error ? '' : ' REMOVE verifyError'}`,
        ConditionExpression: '#s = :from AND targetId = :target AND (attribute_not_exists(lastVerifyTaskId) OR lastVerifyTaskId <> :task)',
        ExpressionAttributeNames: { '#s': 'state' },
        ExpressionAttributeValues: m({
          ':to': to,
          ':now': now,
          ':task': v.taskId,
          ':from': file.state,
          ':target': file.targetId,
          ...fileValues,
          ...(v.error ? { ':err': v.error.slice(0, 4000) } : {}),
        }),
      },
    },
    v.targetOnFile
      ? {
          Update: {
            TableName: table,
            Key: m(keys.copy(file.targetId, pool)),
            UpdateExpression: `SET placement = :to, gsi1pk = :g, updatedAt = :now, version = version + :one, lastVerify = :lv${x ? ', bytes = :xb' : ''}${v.error ? ', lastError = :err' : ', verifiedAt = :now'}${v.error ? '' : ` REMOVE lastError${x ? ', legacy' : ''}`}`,
            ConditionExpression: 'tapeName = :t AND fileNumber = :n AND placement IN (:archived, :confirmed, :failed)',
            ExpressionAttributeValues: m({
              ':to': to,
              ':g': copyIndexKey({ placement: to, pool, tapeName: file.tapeName }),
              ':now': now,
              ':one': 1,
              ':lv': lastVerify,
              ':t': file.tapeName,
              ':n': file.fileNumber,
              ':archived': 'archived',
              ':confirmed': 'confirmed',
              ':failed': 'confirm_failed',
              ...(x ? { ':xb': x.tapeBytes } : {}),
              ...(v.error ? { ':err': v.error.slice(0, 4000) } : {}),
            }),
          },
        }
      : {
          // The copy moved on: the file's record may change only while the copy is elsewhere.
          ConditionCheck: {
            TableName: table,
            Key: m(keys.copy(file.targetId, pool)),
            ConditionExpression: 'attribute_not_exists(tapeName) OR tapeName <> :t OR attribute_not_exists(fileNumber) OR fileNumber <> :n',
            ExpressionAttributeValues: m({ ':t': file.tapeName, ':n': file.fileNumber }),
          },
        },
  ];
  if (delta !== 0) {
    items.push({
      Update: {
        TableName: table,
        Key: m(keys.tape(file.tapeName)),
        UpdateExpression: 'SET filesConfirmed = filesConfirmed + :d, updatedAt = :now',
        ExpressionAttributeValues: m({ ':d': delta, ':now': now }),
      },
    });
  }
  return items;
}

// ---- rebuild from tapes (rebuild_catalog) -------------------------------------------------

/** A rebuilt tape file, only where the catalog has none of that number. */
export function newTapeFileItem(table: string, f: TapeFile): TransactWriteItem {
  return { Put: { TableName: table, Item: m(tapeFileCodec.toItem(f)), ConditionExpression: 'attribute_not_exists(pk)' } };
}

/** A tape a rebuild read to its end, over the item its start made (or none): never over a tape the catalog had before. */
export function rebuiltTapeItem(table: string, tape: Tape): TransactWriteItem {
  return {
    Put: {
      TableName: table,
      Item: m(tapeCodec.toItem(tape)),
      ConditionExpression: 'attribute_not_exists(pk) OR (attribute_exists(rebuilt) AND rebuilt.complete = :no)',
      ExpressionAttributeValues: m({ ':no': false }),
    },
  };
}

/** One page of the items of `type` (tape, target): is there any? (pure) */
export function anyOfTypeScan(table: string, type: string, start?: Record<string, AttributeValue>): ScanCommandInput {
  return {
    TableName: table,
    FilterExpression: '#t = :t',
    ExpressionAttributeNames: { '#t': 'type' },
    ExpressionAttributeValues: { ':t': { S: type } },
    ...(start ? { ExclusiveStartKey: start } : {}),
  };
}
