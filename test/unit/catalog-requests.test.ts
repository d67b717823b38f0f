/** The catalog's request parameters are pure functions: checked here without DynamoDB. */
import { unmarshall } from '@aws-sdk/util-dynamodb';
import { describe, expect, it } from 'vitest';
import {
  closeTapeItems,
  copyUpdateItem,
  discardWriteItems,
  enableTapeItems,
  recordVerifyItems,
  setOnlineItems,
  startWriteItems,
  targetUpdateItem,
} from '../../src/lib/catalog/requests.ts';
import type { Copy } from '../../src/lib/domain/copies.ts';
import type { Tape } from '../../src/lib/domain/tape.ts';
import type { Target } from '../../src/lib/domain/target.ts';
import type { TapeFile } from '../../src/lib/domain/tape-file.ts';

const now = '2026-01-01T00:00:00.000Z';
const tape: Tape = {
  name: 'T1',
  barcode: '',
  pool: 'default',
  capacityBytes: 1e9,
  state: 'labelled',
  online: true,
  bytesUsed: 0,
  nextFileNumber: 3,
  filesWritten: 2,
  filesConfirmed: 1,
  createdAt: now,
  updatedAt: now,
};
const target: Target = {
  id: 't-1',
  host: 'h',
  path: '/p',
  scan: 'complete',
  scanId: 's',
  copies: ['default', 'offsite'],
  importedAt: now,
  updatedAt: now,
  version: 4,
};
const copy: Copy = { targetId: 't-1', pool: 'default', placement: 'assigned', tapeName: 'T1', importedAt: now, updatedAt: now, version: 2 };

describe('catalog request builders', () => {
  it('startWrite: the next file number only on an online, writable tape with no write in flight, the copy at its version and the target at its scan', () => {
    const flight = { fileNumber: 3, targetId: 't-1', taskId: 'k', startedAt: now };
    const [tapeUpdate, filePut, copyPut, targetCheck] = startWriteItems(
      'cat',
      tape,
      target,
      copy,
      { ...copy, placement: 'writing', fileNumber: 3, version: 3 },
      flight,
      now,
    );
    expect(tapeUpdate!.Update!.ConditionExpression).toBe(
      'nextFileNumber = :n AND attribute_not_exists(writeInFlight) AND attribute_not_exists(#f) AND #o = :t AND #s IN (:wr0, :wr1)',
    );
    expect(unmarshall(tapeUpdate!.Update!.ExpressionAttributeValues!)).toMatchObject({ ':n': 3, ':next': 4, ':wr0': 'registered', ':wr1': 'labelled' });
    expect(filePut!.Put).toMatchObject({ TableName: 'cat', ConditionExpression: 'attribute_not_exists(pk)' });
    expect(unmarshall(filePut!.Put!.Item!)).toMatchObject({ pk: 'TAPE#T1', sk: 'FILE#0000003', state: 'writing', taskId: 'k' });
    expect(copyPut!.Put!.ConditionExpression).toBe('version = :v');
    expect(unmarshall(copyPut!.Put!.ExpressionAttributeValues!)).toEqual({ ':v': 2 });
    expect(unmarshall(copyPut!.Put!.Item!)).toMatchObject({
      pk: 'TARGET#t-1',
      sk: 'COPY#default',
      gsi1pk: 'PLACE#writing#T1',
      placement: 'writing',
      fileNumber: 3,
    });
    expect(unmarshall(targetCheck!.ConditionCheck!.Key!)).toEqual({ pk: 'TARGET#t-1', sk: 'TARGET' });
    expect(targetCheck!.ConditionCheck!.ConditionExpression).toBe('scanId = :sid AND #scan = :complete AND contains(copies, :pool)');
  });

  it('an optimistic update must advance the version by one; a target update never replaces a release-0.3 item', () => {
    expect(() => targetUpdateItem('cat', target, { ...target, version: 6 })).toThrow(/advance by one/);
    expect(() => copyUpdateItem('cat', copy, { ...copy, pool: 'offsite', version: 3 })).toThrow(/keeps target and pool/);
    expect(targetUpdateItem('cat', target, { ...target, version: 5 }).Put!.ConditionExpression).toBe('version = :v AND attribute_not_exists(placement)');
  });

  it('each pool has its own online pointer; the default pool keeps the key of release 0.3', () => {
    const [pointer] = setOnlineItems('cat', 'offsite', 'O1', 'O0', now);
    expect(unmarshall(pointer!.Put!.Item!)).toMatchObject({ pk: 'ONLINE', sk: 'ONLINE#offsite', pool: 'offsite', tapeName: 'O1' });
    const [main] = setOnlineItems('cat', 'default', 'T1', undefined, now);
    expect(unmarshall(main!.Put!.Item!)).toMatchObject({ pk: 'ONLINE', sk: 'ONLINE' });
    const closing = closeTapeItems('cat', { ...tape, name: 'O1', pool: 'offsite' }, now);
    expect(unmarshall(closing[1]!.Delete!.Key!)).toEqual({ pk: 'ONLINE', sk: 'ONLINE#offsite' });
  });

  it('close_tape of the online tape also removes the online pointer, only if it names this tape', () => {
    const items = closeTapeItems('cat', tape, now);
    expect(items).toHaveLength(2);
    expect(items[1]!.Delete!.ConditionExpression).toBe('tapeName = :n');
    expect(closeTapeItems('cat', { ...tape, online: false }, now)).toHaveLength(1);
  });

  it('a discarded write hands the file number back and may set the tape state with a reason', () => {
    const [tapeUpdate] = discardWriteItems(
      'cat',
      tape,
      { taskId: 'k', fileNumber: 3, targetId: 't-1' },
      { targetPlacement: 'assigned', tapeState: 'full', reason: 'end of medium' },
      now,
    );
    expect(tapeUpdate!.Update!.UpdateExpression).toBe(
      'SET nextFileNumber = :n, updatedAt = :now, lastDiscardedWrite = :d, #s = :full, reason = :reason REMOVE writeInFlight',
    );
    expect(unmarshall(tapeUpdate!.Update!.ExpressionAttributeValues!)).toMatchObject({
      ':full': 'full',
      ':reason': 'end of medium',
      ':n': 3,
      ':d': { taskId: 'k', fileNumber: 3 },
    });
  });

  it('a verify moves the confirmed count only when the file state really changes', () => {
    const file: TapeFile = { tapeName: 'T1', fileNumber: 2, targetId: 't-1', state: 'archived', taskId: 'k', startedAt: now };
    const up = recordVerifyItems('cat', file, 'offsite', { taskId: 'v1', ok: true, targetOnFile: true }, now);
    expect(up).toHaveLength(3);
    expect(unmarshall(up[1]!.Update!.Key!)).toEqual({ pk: 'TARGET#t-1', sk: 'COPY#offsite' });
    expect(recordVerifyItems('cat', { ...file, state: 'confirmed' }, 'default', { taskId: 'v2', ok: true, targetOnFile: true }, now)).toHaveLength(2);
    const down = recordVerifyItems('cat', { ...file, state: 'confirmed' }, 'default', { taskId: 'v3', ok: false, error: 'bad', targetOnFile: true }, now);
    expect(unmarshall(down[2]!.Update!.ExpressionAttributeValues!)).toMatchObject({ ':d': -1 });
  });

  it('a verify of a file the target has left changes the file only, checking the target is still elsewhere', () => {
    const file: TapeFile = { tapeName: 'T1', fileNumber: 2, targetId: 't-1', state: 'confirm_failed', taskId: 'k', startedAt: now };
    const items = recordVerifyItems('cat', file, 'default', { taskId: 'v4', ok: true, targetOnFile: false }, now);
    expect(items[1]!.Update).toBeUndefined();
    expect(items[1]!.ConditionCheck!.ConditionExpression).toContain('fileNumber <> :n');
    expect(unmarshall(items[2]!.Update!.ExpressionAttributeValues!)).toMatchObject({ ':d': 1 });
  });

  it('enabling a tape is conditional on it still being disabled at the same file number and on the check task being open', () => {
    const [update, check] = enableTapeItems('cat', { ...tape, state: 'disabled', nextFileNumber: 4 }, 'labelled', 'k-1', now);
    expect(update!.Update!.ConditionExpression).toBe('#s = :disabled AND nextFileNumber = :n AND attribute_not_exists(writeInFlight)');
    expect(unmarshall(update!.Update!.ExpressionAttributeValues!)).toMatchObject({ ':n': 4, ':to': 'labelled' });
    expect(unmarshall(check!.ConditionCheck!.Key!)).toEqual({ pk: 'TASK#k-1', sk: 'TASK' });
    expect(check!.ConditionCheck!.ConditionExpression).toBe('#s IN (:queued, :running)');
  });

  it('a started write records the scan it writes on the tape file', () => {
    const scanned: Target = { ...target, scanId: 's-9', manifestPages: 2 };
    const items = startWriteItems(
      'cat',
      tape,
      scanned,
      copy,
      { ...copy, placement: 'writing', fileNumber: 4, version: 3 },
      { fileNumber: 4, targetId: 't-1', taskId: 'k', startedAt: now },
      now,
    );
    expect(unmarshall(items[1]!.Put!.Item!)).toMatchObject({ state: 'writing', scanId: 's-9', manifestPages: 2 });
  });
});
