/**
 * The task protocol shared by the handlers (producers) and the tape agent (consumer):
 * versioned envelopes validated at both ends. Messages carry references (target id, scan
 * id, page count), never manifests, so no message approaches the SQS size limit.
 */
import { z } from 'zod';
import { errorMessage } from '../errors.ts';
import { formatIssues } from '../validation.ts';
import { MAX_EXCLUDES } from '../domain/nesting.ts';

export const PROTOCOL_VERSION = 1;

const base = {
  v: z.literal(PROTOCOL_VERSION),
  taskId: z.string().uuid(),
  issuedAt: z.string().datetime(),
};

const targetRef = z.object({ id: z.string().min(1), host: z.string().min(1), path: z.string().startsWith('/') }).strict();

export const scanTaskSchema = z
  .object({
    ...base,
    kind: z.literal('scan'),
    target: targetRef,
    scanId: z.string().min(1),
    /**
     * Absolute paths of the targets directly inside this one (domain/nesting.ts): the scan
     * leaves out each of them with its subtree. Optional, sent only when there are any; added
     * in release 0.10: an older agent refuses such a task as invalid (dead letter), and the
     * target's scan stays pending until an agent that knows it runs it (reconcile resends it).
     */
    excludes: z.array(z.string().startsWith('/').max(4096)).max(MAX_EXCLUDES).optional(),
  })
  .strict();

export const writeTaskSchema = z
  .object({
    ...base,
    kind: z.literal('write'),
    tapeName: z.string().min(1),
    fileNumber: z.number().int().min(1),
    target: targetRef,
    scanId: z.string().min(1),
    manifestPages: z.number().int().min(0),
    fileCount: z.number().int().min(0),
    totalBytes: z.number().int().min(0),
    /**
     * A repair from another copy: the agent first restores that confirmed tape file (of the
     * same scan) into its staging directory, verified, and writes from there, not from the
     * data host. Absent: the target is read from its source. Added in release 0.9: an older
     * agent refuses such a task as invalid (dead letter), and nothing is written.
     */
    from: z
      // File 0: a tapetown tape's first target (no label there).
      .object({ tapeName: z.string().min(1), fileNumber: z.number().int().min(0), scanId: z.string().min(1), manifestPages: z.number().int().min(0) })
      .strict()
      .optional(),
  })
  .strict();

export const verifyTaskSchema = z
  .object({
    ...base,
    kind: z.literal('verify'),
    tapeName: z.string().min(1),
    /** From 1 (file 0 is our label); a tapetown tape has no label, its first target is file 0. */
    fileNumber: z.number().int().min(0),
    targetId: z.string().min(1),
    /** false for `confirm --no-db-update`: verify and report, change nothing. */
    updateCatalog: z.boolean(),
  })
  .strict();

/**
 * `enable_tape`: read the label and find the end of data of a disabled tape, and compare
 * with what the catalog expects (read only: the tape is never written).
 */
export const checkTapeTaskSchema = z
  .object({
    ...base,
    kind: z.literal('check-tape'),
    tapeName: z.string().min(1),
    /** Complete files the catalog expects on tape, label included (its next file number, or 0 for a blank tape). */
    expectedFiles: z.number().int().min(0),
  })
  .strict();

/** At most this many targets per restore task, and selected paths per request. */
export const MAX_RESTORE_ITEMS = 500;
export const MAX_RESTORE_PATHS = 100;

/**
 * `restore`: read the listed files of one tape, in file-number order (one pass), and write
 * the selected members of each under its directory, every file's SHA-256 checked against the
 * manifest of the scan written to it.
 */
export const restoreTaskSchema = z
  .object({
    ...base,
    kind: z.literal('restore'),
    tapeName: z.string().min(1),
    items: z
      .array(
        z
          .object({
            /** From 1; 0 on a tapetown tape (no label). */
            fileNumber: z.number().int().min(0),
            targetId: z.string().min(1),
            scanId: z.string().min(1),
            manifestPages: z.number().int().min(1),
            /** Absolute directory the target root goes to. */
            dir: z.string().startsWith('/'),
          })
          .strict(),
      )
      .min(1)
      .max(MAX_RESTORE_ITEMS),
    /** A data host of the agent's configuration; absent: the agent's own file system. */
    host: z.string().min(1).optional(),
    /** Selected names relative to each target root (normalized); empty: everything. */
    paths: z.array(z.string().min(1).max(4096)).max(MAX_RESTORE_PATHS),
    overwrite: z.boolean(),
  })
  .strict();

/** Scheduled import: list directories under a root on a data host that match a pattern. */
export const discoverTaskSchema = z
  .object({
    ...base,
    kind: z.literal('discover'),
    host: z.string().min(1),
    root: z.string().startsWith('/'),
    // A glob relative to the root, one segment per level, e.g. "2026-*/obs-*".
    pattern: z.string().min(1).max(256),
  })
  .strict();

/** At most this many tapes per rebuild task (a larger library: several rebuild_catalog runs). */
export const MAX_REBUILD_TAPES = 500;

/**
 * `rebuild_catalog`: read the label and every tape file's header and trailer of each tape
 * (every tape the library holds when none is named), store each file's manifest and report
 * what is on tape, tape by tape, so that the catalog is rebuilt from the tapes alone.
 */
export const rebuildTaskSchema = z
  .object({
    ...base,
    kind: z.literal('rebuild'),
    tapes: z.array(z.string().min(1).max(64)).max(MAX_REBUILD_TAPES),
    /** Also re-read every file's data and check it (the copies come back confirmed). */
    verify: z.boolean(),
    /** Into a catalog that is not empty: add what is missing, report every disagreement, change nothing else. */
    merge: z.boolean(),
  })
  .strict();

/**
 * A catalog snapshot as tape file `fileNumber` of a closed tape (close_tape, `snapshot_catalog
 * --tape`): the agent exports both tables and appends them after the tape's last file. Added
 * in release 0.9 (an older agent dead-letters it; nothing is written).
 */
export const snapshotTaskSchema = z.object({ ...base, kind: z.literal('snapshot'), tapeName: z.string().min(1), fileNumber: z.number().int().min(1) }).strict();

/**
 * `restore_catalog --tape`: find the last catalog snapshot file on a tape (no catalog needed)
 * and write it, checked against its trailer, as `file` (created, never overwritten) on the agent's host.
 */
export const readSnapshotTaskSchema = z
  .object({ ...base, kind: z.literal('read-snapshot'), tapeName: z.string().min(1), file: z.string().startsWith('/') })
  .strict();

export const taskSchema = z.discriminatedUnion('kind', [
  snapshotTaskSchema,
  readSnapshotTaskSchema,
  rebuildTaskSchema,
  scanTaskSchema,
  writeTaskSchema,
  verifyTaskSchema,
  checkTapeTaskSchema,
  discoverTaskSchema,
  restoreTaskSchema,
]);

export type ScanTask = z.infer<typeof scanTaskSchema>;
export type WriteTask = z.infer<typeof writeTaskSchema>;
export type VerifyTask = z.infer<typeof verifyTaskSchema>;
export type DiscoverTask = z.infer<typeof discoverTaskSchema>;
export type CheckTapeTask = z.infer<typeof checkTapeTaskSchema>;
export type RestoreTask = z.infer<typeof restoreTaskSchema>;
export type RebuildTask = z.infer<typeof rebuildTaskSchema>;
export type SnapshotTask = z.infer<typeof snapshotTaskSchema>;
export type ReadSnapshotTask = z.infer<typeof readSnapshotTaskSchema>;
export type Task = z.infer<typeof taskSchema>;
export type TaskKind = Task['kind'];

/** Which queue carries each task kind: scans need no drive and run beside tape work. */
export const QUEUE_OF_TASK: Record<TaskKind, 'scans' | 'tasks'> = {
  scan: 'scans',
  discover: 'scans',
  write: 'tasks',
  verify: 'tasks',
  'check-tape': 'tasks',
  restore: 'tasks',
  rebuild: 'tasks',
  snapshot: 'tasks',
  'read-snapshot': 'tasks',
};

export type ParseResult<T> = { ok: true; value: T } | { ok: false; error: string };

/** Parses a message body; never throws (a poison message is reported, not crashed on). */
export function parseMessage<T>(schema: z.ZodType<T>, body: string | undefined): ParseResult<T> {
  if (body === undefined) return { ok: false, error: 'message has no body' };
  if (body.length > 256 * 1024) return { ok: false, error: `message body is ${body.length} bytes, over the 256 KiB limit` };
  let json: unknown;
  try {
    json = JSON.parse(body);
  } catch (e) {
    return { ok: false, error: `message body is not JSON: ${errorMessage(e)}` };
  }
  if (typeof json === 'object' && json !== null && 'v' in json && json.v !== PROTOCOL_VERSION) {
    return { ok: false, error: `unsupported protocol version ${String(json.v)} (this build speaks ${PROTOCOL_VERSION})` };
  }
  const parsed = schema.safeParse(json);
  if (!parsed.success) {
    return { ok: false, error: formatIssues(parsed.error) };
  }
  return { ok: true, value: parsed.data };
}
