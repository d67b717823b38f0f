/**
 * Release 0.3 -> copies (the `migrate` job): request parameters, built by pure functions.
 *
 * Release 0.3 stored a target's one copy on the target item itself (placement, tapeName,
 * fileNumber, lastError, previousFiles; indexed as PLACE#<placement>[#<tape>]). Each such
 * target becomes a target item (scan and policy) and one copy item in the pool of its tape
 * (the default pool when it has none), in one transaction conditional on the target's
 * version, so running `migrate` twice, or beside a job, changes nothing twice.
 */
import type { TransactWriteItem } from '@aws-sdk/client-dynamodb';
import { z } from 'zod';
import { DEFAULT_POOL, type Copy } from '../domain/copies.ts';
import { PLACEMENTS } from '../domain/target.ts';
import type { TapeFile } from '../domain/tape-file.ts';
import { copyCodec, keys, previousFileSchema } from './items.ts';
import { m } from './requests.ts';
import { formatIssues } from '../validation.ts';

const releaseThreeSchema = z.object({
  id: z.string(),
  placement: z.enum(PLACEMENTS),
  tapeName: z.string().optional(),
  fileNumber: z.number().int().optional(),
  lastError: z.string().optional(),
  previousFiles: z.array(previousFileSchema).optional(),
  importedAt: z.string(),
  version: z.number().int(),
});

export type ReleaseThreeTarget = z.infer<typeof releaseThreeSchema>;

export function parseReleaseThreeTarget(item: Record<string, unknown>): ReleaseThreeTarget {
  const parsed = releaseThreeSchema.safeParse(item);
  if (!parsed.success) throw new Error(`catalog item ${String(item.pk)}/${String(item.sk)} is not a release-0.3 target: ${formatIssues(parsed.error, '')}`);
  return parsed.data;
}

/** What a copy's tape file says of it: its size on tape, when it was written and last read back good. */
export type FileFigures = Pick<TapeFile, 'bytes' | 'archivedAt' | 'verifiedAt'>;

/** The one copy a release-0.3 target had, in `pool` (its tape's), with the figures of its tape file. */
export function releaseThreeCopy(t: ReleaseThreeTarget, pool: string, now: string, file?: FileFigures): Copy {
  const holdsFile = t.placement === 'archived' || t.placement === 'confirmed' || t.placement === 'confirm_failed';
  return {
    targetId: t.id,
    pool,
    placement: t.placement,
    ...(t.tapeName !== undefined && t.placement !== 'unassigned' ? { tapeName: t.tapeName } : {}),
    ...(t.fileNumber !== undefined ? { fileNumber: t.fileNumber } : {}),
    ...(t.lastError !== undefined ? { lastError: t.lastError } : {}),
    ...(t.previousFiles?.length ? { previousFiles: t.previousFiles } : {}),
    ...(holdsFile && file?.bytes !== undefined ? { bytes: file.bytes } : {}),
    ...(holdsFile && file?.archivedAt ? { archivedAt: file.archivedAt } : {}),
    ...(t.placement === 'confirmed' && file?.verifiedAt ? { verifiedAt: file.verifiedAt } : {}),
    importedAt: t.importedAt,
    updatedAt: now,
    version: 1,
  };
}

/** The target keeps its scan, gets its policy, and its placement leaves it for the copy item. */
export function migrateTargetItems(table: string, t: ReleaseThreeTarget, pool: string, now: string, file?: FileFigures): TransactWriteItem[] {
  return [
    { Put: { TableName: table, Item: m(copyCodec.toItem(releaseThreeCopy(t, pool, now, file))), ConditionExpression: 'attribute_not_exists(pk)' } },
    {
      Update: {
        TableName: table,
        Key: m(keys.target(t.id)),
        UpdateExpression:
          'SET copies = :policy, updatedAt = :now, version = version + :one REMOVE placement, tapeName, fileNumber, lastError, previousFiles, gsi1pk, gsi1sk',
        ConditionExpression: 'version = :v AND attribute_exists(placement)',
        ExpressionAttributeValues: m({ ':policy': [pool], ':now': now, ':one': 1, ':v': t.version }),
      },
    },
  ];
}

/**
 * Release 0.3 had one online pointer, naming no pool, under the key the default pool's has
 * now. It gets its tape's pool; if that is another pool, it moves to that pool's key.
 */
export function migrateOnlineItems(table: string, tapeName: string, pool: string, now: string): TransactWriteItem[] {
  if (pool === DEFAULT_POOL) {
    return [
      {
        Update: {
          TableName: table,
          Key: m(keys.online()),
          UpdateExpression: 'SET #p = :p, updatedAt = :now',
          ConditionExpression: 'tapeName = :n AND attribute_not_exists(#p)',
          ExpressionAttributeNames: { '#p': 'pool' },
          ExpressionAttributeValues: m({ ':p': pool, ':now': now, ':n': tapeName }),
        },
      },
    ];
  }
  return [
    {
      Delete: {
        TableName: table,
        Key: m(keys.online()),
        ConditionExpression: 'tapeName = :n AND attribute_not_exists(#p)',
        ExpressionAttributeNames: { '#p': 'pool' },
        ExpressionAttributeValues: m({ ':n': tapeName }),
      },
    },
    {
      Put: {
        TableName: table,
        Item: m({ ...keys.online(pool), type: 'online', pool, tapeName, updatedAt: now }),
        ConditionExpression: 'attribute_not_exists(pk)',
      },
    },
  ];
}
