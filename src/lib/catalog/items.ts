/**
 * How domain objects are laid out as items of the catalog table, and parsed back with a
 * schema (never cast): a malformed item is reported as such, not trusted.
 *
 *   tape       pk TAPE#<name>    sk TAPE          gsi1 TAPES / <name>
 *   tape file  pk TAPE#<name>    sk FILE#<000001>
 *   target     pk TARGET#<id>    sk TARGET        (scan and copy policy)
 *   copy       pk TARGET#<id>    sk COPY#<pool>   gsi1 PLACE#<placement>#<tape> (on a tape)
 *                                                      PLACE#unassigned[#<pool>] (not on one) / <importedAt>#<id>
 *   online     pk ONLINE         sk ONLINE[#<pool>]  (which tape of the pool is online; no suffix: the default pool)
 *
 * Release 0.3 kept the one copy's placement on the target item (under the same index keys
 * the default pool's copies have now); `migrate` moves it to a copy item (copy-items.ts).
 */
import { z } from 'zod';
import { TAPE_FORMATS, TAPE_STATES, type Tape } from '../domain/tape.ts';
import { DEFAULT_POOL, type Copy } from '../domain/copies.ts';
import { PLACEMENTS, SCAN_STATES, type Target } from '../domain/target.ts';
import { CatalogUpgradeError } from '../errors.ts';
import { TAPE_FILE_STATES, type TapeFile } from '../domain/tape-file.ts';
import { formatIssues } from '../validation.ts';

export const keys = {
  tape: (name: string) => ({ pk: `TAPE#${name}`, sk: 'TAPE' }),
  tapeFile: (name: string, fileNumber: number) => ({ pk: `TAPE#${name}`, sk: `FILE#${String(fileNumber).padStart(7, '0')}` }),
  target: (id: string) => ({ pk: `TARGET#${id}`, sk: 'TARGET' }),
  copy: (targetId: string, pool: string) => ({ pk: `TARGET#${targetId}`, sk: `COPY#${pool}` }),
  online: (pool: string = DEFAULT_POOL) => ({ pk: 'ONLINE', sk: pool === DEFAULT_POOL ? 'ONLINE' : `ONLINE#${pool}` }),
};

/**
 * Where the placement index finds a copy: by its tape once it has one (a tape is in one
 * pool), else by its pool. The default pool's keys are those release 0.3 gave its targets.
 */
export function copyIndexKey(c: Pick<Copy, 'placement' | 'pool' | 'tapeName'>): string {
  if (c.placement !== 'unassigned' && c.tapeName) return `PLACE#${c.placement}#${c.tapeName}`;
  return c.pool === DEFAULT_POOL ? `PLACE#${c.placement}` : `PLACE#${c.placement}#${c.pool}`;
}

const isoDate = z.string().min(1);

/** An entry a scan left out by policy (special files). */
export const skippedEntrySchema = z.object({ path: z.string(), rawPath: z.string().optional(), reason: z.string() });
/** A tape file a target left after a failed read-back (domain/target.ts PreviousFile). */
export const previousFileSchema = z.object({
  tapeName: z.string(),
  fileNumber: z.number().int(),
  state: z.literal('confirm_failed'),
  error: z.string().optional(),
  at: isoDate,
});

/** A tape as stored; `open_tape` answers it (jobs/output-schemas.ts). */
export const tapeItemSchema = z.object({
  name: z.string(),
  barcode: z.string(),
  pool: z.string(),
  capacityBytes: z.number(),
  state: z.enum(TAPE_STATES),
  online: z.boolean(),
  bytesUsed: z.number(),
  nextFileNumber: z.number().int(),
  filesWritten: z.number().int(),
  filesConfirmed: z.number().int(),
  writeInFlight: z.object({ fileNumber: z.number().int(), targetId: z.string(), taskId: z.string(), startedAt: isoDate }).optional(),
  lastDiscardedWrite: z.object({ taskId: z.string(), fileNumber: z.number().int() }).optional(),
  reason: z.string().optional(),
  rebuilt: z.object({ taskId: z.string(), at: isoDate, complete: z.boolean(), verified: z.boolean() }).optional(),
  snapshotInFlight: z.object({ taskId: z.string(), fileNumber: z.number().int(), startedAt: isoDate }).optional(),
  snapshots: z
    .array(
      z.object({
        fileNumber: z.number().int(),
        taskId: z.string(),
        at: isoDate,
        bytes: z.number(),
        sha256: z.string(),
        items: z.object({ catalog: z.number().int(), manifests: z.number().int() }),
      }),
    )
    .optional(),
  format: z.enum(TAPE_FORMATS).optional(),
  tapetown: z.object({ id: z.number().int(), serial: z.string(), status: z.string(), host: z.string().optional() }).optional(),
  createdAt: isoDate,
  updatedAt: isoDate,
});

const targetItemSchema = z.object({
  id: z.string(),
  host: z.string(),
  path: z.string(),
  scan: z.enum(SCAN_STATES),
  scanId: z.string().optional(),
  scanError: z.string().optional(),
  fileCount: z.number().int().optional(),
  totalBytes: z.number().optional(),
  manifestPages: z.number().int().optional(),
  skippedCount: z.number().int().optional(),
  skipped: z.array(skippedEntrySchema).optional(),
  // Absent on a release-0.3 item (one copy, in the default pool).
  copies: z.array(z.string()).default([DEFAULT_POOL]),
  excludes: z.array(z.string()).optional(),
  adopted: z.object({ from: z.literal('tapetown'), id: z.number().int(), fileList: z.boolean(), baselineFromTape: z.boolean().optional() }).optional(),
  importedAt: isoDate,
  updatedAt: isoDate,
  version: z.number().int(),
});

/** A copy as stored (domain/copies.ts Copy). */
export const copyItemSchema = z.object({
  targetId: z.string(),
  pool: z.string(),
  placement: z.enum(PLACEMENTS),
  tapeName: z.string().optional(),
  fileNumber: z.number().int().optional(),
  bytes: z.number().optional(),
  archivedAt: isoDate.optional(),
  verifiedAt: isoDate.optional(),
  lastError: z.string().optional(),
  previousFiles: z.array(previousFileSchema).optional(),
  lastVerify: z.object({ at: isoDate, ok: z.boolean(), taskId: z.string(), scrub: z.boolean().optional() }).optional(),
  repairFrom: z.object({ tapeName: z.string(), fileNumber: z.number().int(), scanId: z.string(), manifestPages: z.number().int() }).optional(),
  legacy: z.literal('tapetown-md5').optional(),
  importedAt: isoDate,
  updatedAt: isoDate,
  version: z.number().int(),
});

const tapeFileItemSchema = z.object({
  tapeName: z.string(),
  fileNumber: z.number().int(),
  targetId: z.string(),
  state: z.enum(TAPE_FILE_STATES),
  taskId: z.string(),
  scanId: z.string().optional(),
  manifestPages: z.number().int().optional(),
  bytes: z.number().optional(),
  fileCount: z.number().int().optional(),
  format: z.literal('tapetown').optional(),
  excludes: z.array(z.string()).optional(),
  sha256: z.string().optional(),
  startedAt: isoDate,
  archivedAt: isoDate.optional(),
  verifiedAt: isoDate.optional(),
  verifyError: z.string().optional(),
  lastVerifyTaskId: z.string().optional(),
});

function parseItem<T>(schema: z.ZodType<T>, what: string, item: Record<string, unknown>): T {
  const parsed = schema.safeParse(item);
  if (!parsed.success) {
    const issues = formatIssues(parsed.error, '');
    throw new Error(`catalog item ${String(item.pk)}/${String(item.sk)} is not a valid ${what}: ${issues}`);
  }
  return parsed.data;
}

/** Drops undefined so DynamoDB's marshaller never sees them. */
function defined<T extends object>(o: T): T {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as T;
}

export const tapeCodec = {
  toItem: (t: Tape) => defined({ ...keys.tape(t.name), type: 'tape', gsi1pk: 'TAPES', gsi1sk: t.name, ...t }),
  fromItem: (item: Record<string, unknown>): Tape => defined(parseItem(tapeItemSchema, 'tape', item)),
};

/** A target item of release 0.3: its one copy's placement is still on it (`migrate` moves it). */
export const isReleaseThreeTarget = (item: Record<string, unknown>): boolean => item.type === 'target' && 'placement' in item;

export const targetCodec = {
  toItem: (t: Target) => defined({ ...keys.target(t.id), type: 'target', ...t }),
  /** The target's own fields (scan, policy); also of a release-0.3 item, whose placement is not read here. */
  fromItem: (item: Record<string, unknown>): Target => defined(parseItem(targetItemSchema, 'target', item)),
};

export const copyCodec = {
  toItem: (c: Copy) => defined({ ...keys.copy(c.targetId, c.pool), type: 'copy', gsi1pk: copyIndexKey(c), gsi1sk: `${c.importedAt}#${c.targetId}`, ...c }),
  /** A copy; meeting a release-0.3 target where a copy is expected means `migrate` has not run. */
  fromItem: (item: Record<string, unknown>): Copy => {
    if (isReleaseThreeTarget(item)) throw new CatalogUpgradeError(`target ${String(item.id)} still holds its placement`);
    return defined(parseItem(copyItemSchema, 'copy', item));
  },
};

export const tapeFileCodec = {
  toItem: (f: TapeFile) => defined({ ...keys.tapeFile(f.tapeName, f.fileNumber), type: 'tapefile', ...f }),
  fromItem: (item: Record<string, unknown>): TapeFile => defined(parseItem(tapeFileItemSchema, 'tape file', item)),
};
