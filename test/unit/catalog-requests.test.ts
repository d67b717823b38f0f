/** The catalog's request parameters are pure functions: checked here without DynamoDB. */
import { unmarshall } from '@aws-sdk/util-dynamodb';
import { describe, expect, it } from 'vitest';
import { closeTapeItems, discardWriteItems, enableTapeItems, recordVerifyItems, startWriteItems, targetUpdateItem } from '../../src/lib/catalog/requests.ts';
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
  placement: 'assigned',
  tapeName: 'T1',
  importedAt: now,
  updatedAt: now,
  version: 4,
};

describe('catalog request builders', () => {
  it('startWrite: the next file number only on an online, writable tape with no write in flight, and the target at its version', () => {
    const flight = { fileNumber: 3, targetId: 't-1', taskId: 'k', startedAt: now };
    const [tapeUpdate, filePut, targetPut] = startWriteItems('cat', tape, target, { ...target, placement: 'writing', fileNumber: 3, version: 5 }, flight, now);
    expect(tapeUpdate!.Update!.ConditionExpression).toBe('nextFileNumber = :n AND attribute_not_exists(writeInFlight) AND #o = :t AND #s IN (:wr0, :wr1)');
    expect(unmarshall(tapeUpdate!.Update!.ExpressionAttributeValues!)).toMatchObject({ ':n': 3, ':next': 4, ':wr0': 'registered', ':wr1': 'labelled' });
    expect(filePut!.Put).toMatchObject({ TableName: 'cat', ConditionExpression: 'attribute_not_exists(pk)' });
    expect(unmarshall(filePut!.Put!.Item!)).toMatchObject({ pk: 'TAPE#T1', sk: 'FILE#0000003', state: 'writing', taskId: 'k' });
    expect(targetPut!.Put!.ConditionExpression).toBe('version = :v');
    expect(unmarshall(targetPut!.Put!.ExpressionAttributeValues!)).toEqual({ ':v': 4 });
  });

  it('an optimistic update must advance the version by one', () => {
    expect(() => targetUpdateItem('cat', target, { ...target, version: 6 })).toThrow(/advance by one/);
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
    expect(recordVerifyItems('cat', file, { taskId: 'v1', ok: true, targetOnFile: true }, now)).toHaveLength(3);
    expect(recordVerifyItems('cat', { ...file, state: 'confirmed' }, { taskId: 'v2', ok: true, targetOnFile: true }, now)).toHaveLength(2);
    const down = recordVerifyItems('cat', { ...file, state: 'confirmed' }, { taskId: 'v3', ok: false, error: 'bad', targetOnFile: true }, now);
    expect(unmarshall(down[2]!.Update!.ExpressionAttributeValues!)).toMatchObject({ ':d': -1 });
  });

  it('a verify of a file the target has left changes the file only, checking the target is still elsewhere', () => {
    const file: TapeFile = { tapeName: 'T1', fileNumber: 2, targetId: 't-1', state: 'confirm_failed', taskId: 'k', startedAt: now };
    const items = recordVerifyItems('cat', file, { taskId: 'v4', ok: true, targetOnFile: false }, now);
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
    const target = {
      id: 't-1',
      host: 'h',
      path: '/p',
      scan: 'complete',
      scanId: 's-9',
      manifestPages: 2,
      placement: 'assigned',
      tapeName: 'T1',
      importedAt: now,
      updatedAt: now,
      version: 3,
    } as const;
    const items = startWriteItems(
      'cat',
      tape,
      target,
      { ...target, placement: 'writing', fileNumber: 4, version: 4 },
      { fileNumber: 4, targetId: 't-1', taskId: 'k', startedAt: now },
      now,
    );
    expect(unmarshall(items[1]!.Put!.Item!)).toMatchObject({ state: 'writing', scanId: 's-9', manifestPages: 2 });
  });
});
