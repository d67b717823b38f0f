/**
 * How domain objects are laid out as items of the catalog table, and parsed back with a
 * schema (never cast): a malformed item is reported as such, not trusted.
 *
 *   tape       pk TAPE#<name>    sk TAPE          gsi1 TAPES / <name>
 *   tape file  pk TAPE#<name>    sk FILE#<000001>
 *   target     pk TARGET#<id>    sk TARGET        gsi1 PLACE#<placement>[#<tape>] / <importedAt>#<id>
 *   online     pk ONLINE         sk ONLINE        (which tape is online)
 */
import { z } from 'zod';
import { TAPE_STATES, type Tape } from '../domain/tape.ts';
import { PLACEMENTS, SCAN_STATES, type Placement, type Target } from '../domain/target.ts';
import { TAPE_FILE_STATES, type TapeFile } from '../domain/tape-file.ts';
import { formatIssues } from '../validation.ts';

export const keys = {
  tape: (name: string) => ({ pk: `TAPE#${name}`, sk: 'TAPE' }),
  tapeFile: (name: string, fileNumber: number) => ({ pk: `TAPE#${name}`, sk: `FILE#${String(fileNumber).padStart(7, '0')}` }),
  target: (id: string) => ({ pk: `TARGET#${id}`, sk: 'TARGET' }),
  online: () => ({ pk: 'ONLINE', sk: 'ONLINE' }),
};

export function placementIndexKey(placement: Placement, tapeName?: string): string {
  return placement === 'unassigned' || !tapeName ? `PLACE#${placement}` : `PLACE#${placement}#${tapeName}`;
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
  placement: z.enum(PLACEMENTS),
  tapeName: z.string().optional(),
  fileNumber: z.number().int().optional(),
  fileCount: z.number().int().optional(),
  totalBytes: z.number().optional(),
  manifestPages: z.number().int().optional(),
  skippedCount: z.number().int().optional(),
  skipped: z.array(skippedEntrySchema).optional(),
  lastError: z.string().optional(),
  previousFiles: z.array(previousFileSchema).optional(),
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

export const targetCodec = {
  toItem: (t: Target) =>
    defined({
      ...keys.target(t.id),
      type: 'target',
      gsi1pk: placementIndexKey(t.placement, t.tapeName),
      gsi1sk: `${t.importedAt}#${t.id}`,
      ...t,
    }),
  fromItem: (item: Record<string, unknown>): Target => defined(parseItem(targetItemSchema, 'target', item)),
};

export const tapeFileCodec = {
  toItem: (f: TapeFile) => defined({ ...keys.tapeFile(f.tapeName, f.fileNumber), type: 'tapefile', ...f }),
  fromItem: (item: Record<string, unknown>): TapeFile => defined(parseItem(tapeFileItemSchema, 'tape file', item)),
};
