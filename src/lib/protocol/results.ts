/**
 * What the agent reports back on the results queue. Applied by the results handler; every
 * application is conditional on the task id, so duplicates and late reports change nothing.
 */
import { z } from 'zod';
import { MAX_REBUILD_TAPES, PROTOCOL_VERSION } from './tasks.ts';

const base = { v: z.literal(PROTOCOL_VERSION), taskId: z.string().uuid(), reportedAt: z.string().datetime() };

const badFile = z.object({ path: z.string(), rawPath: z.string().optional(), reason: z.string() }).strict();
/** Lists in reports are capped so a report never nears the message size limit. */
export const MAX_LISTED = 50;

export const scanResultSchema = z.discriminatedUnion('ok', [
  z
    .object({
      ...base,
      kind: z.literal('scan-result'),
      ok: z.literal(true),
      targetId: z.string(),
      scanId: z.string(),
      fileCount: z.number().int().min(0),
      totalBytes: z.number().int().min(0),
      manifestPages: z.number().int().min(1),
      manifestDigest: z.string(),
      /** Entries left out by policy (special files), the first MAX_LISTED, and how many in all. */
      skipped: z.array(badFile).max(MAX_LISTED).optional(),
      skippedCount: z.number().int().min(0).optional(),
    })
    .strict(),
  z
    .object({
      ...base,
      kind: z.literal('scan-result'),
      ok: z.literal(false),
      targetId: z.string(),
      scanId: z.string(),
      error: z.string().max(4000),
      retryable: z.boolean(),
    })
    .strict(),
]);

const writeBase = {
  ...base,
  kind: z.literal('write-result'),
  tapeName: z.string(),
  fileNumber: z.number().int().min(1),
  targetId: z.string(),
  /** The agent wrote the label (file 0) of a blank tape during this task. */
  labelWritten: z.boolean().optional(),
};

export const WRITE_REFUSALS = ['wrong-tape', 'position-mismatch', 'write-protected', 'no-tape', 'blank-tape'] as const;

export const writeResultSchema = z.discriminatedUnion('outcome', [
  z
    .object({
      ...writeBase,
      outcome: z.literal('archived'),
      bytes: z.number().int().min(0),
      fileCount: z.number().int().min(0),
      digest: z.string(),
      /** Entries of the target not in the tape file by policy (as its scan reported them). */
      skipped: z.array(badFile).max(MAX_LISTED).optional(),
      skippedCount: z.number().int().min(0).optional(),
    })
    .strict(),
  z.object({ ...writeBase, outcome: z.literal('end-of-medium'), bytesAtEnd: z.number().int().min(0) }).strict(),
  z.object({ ...writeBase, outcome: z.literal('source-changed'), changes: z.array(badFile).max(MAX_LISTED), changeCount: z.number().int() }).strict(),
  z.object({ ...writeBase, outcome: z.literal('io-error'), error: z.string().max(4000) }).strict(),
  z.object({ ...writeBase, outcome: z.literal('source-error'), error: z.string().max(4000) }).strict(),
  z.object({ ...writeBase, outcome: z.literal('refused'), reason: z.enum(WRITE_REFUSALS), error: z.string().max(4000) }).strict(),
]);

export const verifyResultSchema = z
  .object({
    ...base,
    kind: z.literal('verify-result'),
    tapeName: z.string(),
    fileNumber: z.number().int().min(0),
    targetId: z.string(),
    updateCatalog: z.boolean(),
    outcome: z.enum(['confirmed', 'failed']),
    bytes: z.number().int().min(0),
    fileCount: z.number().int().min(0),
    bad: z.array(badFile).max(MAX_LISTED),
    badCount: z.number().int().min(0),
    error: z.string().max(4000).optional(),
    /**
     * The file was not read at all (no tape in the drive, the wrong cartridge, a tape the
     * library does not hold): nothing is known about the copy, which stays as it was (added in
     * release 0.9; older agents report such a verify as failed).
     */
    notRead: z.boolean().optional(),
    /**
     * A tapetown tape file read back good: what tapetown never kept, now measured (added in
     * release 0.10). The exact manifest is stored under `scanId` by the agent; `baseline`: the
     * target had no file list, so the tape's content is its manifest from now on.
     */
    exact: z
      .object({
        scanId: z.string(),
        manifestPages: z.number().int().min(0),
        fileCount: z.number().int().min(0),
        totalBytes: z.number().min(0),
        tapeBytes: z.number().int().min(0),
        sha256: z.string(),
        baseline: z.boolean(),
      })
      .strict()
      .optional(),
  })
  .strict();

/** What a check-tape task found: `ok` when label and end of data are where the catalog says. */
export const checkTapeResultSchema = z
  .object({
    ...base,
    kind: z.literal('check-tape-result'),
    tapeName: z.string(),
    ok: z.boolean(),
    /** Complete files found on tape, label included (0: blank); absent when the tape could not be read. */
    filesOnTape: z.number().int().min(0).optional(),
    writeProtected: z.boolean().optional(),
    /** What did not match, or why the tape could not be checked. */
    error: z.string().max(4000).optional(),
  })
  .strict();

/** What a restore did: counts over every target of the task, the failures by name (the first MAX_LISTED). */
export const restoreResultSchema = z
  .object({
    ...base,
    kind: z.literal('restore-result'),
    tapeName: z.string(),
    /** restored: every selected name is there and verified; failed: see failures and error. */
    outcome: z.enum(['restored', 'failed', 'cancelled']),
    restored: z.number().int().min(0),
    bytes: z.number().int().min(0),
    skipped: z.number().int().min(0),
    failed: z.number().int().min(0),
    failures: z.array(badFile.extend({ targetId: z.string().optional() }).strict()).max(MAX_LISTED),
    /** Targets read to their end. */
    targetsDone: z.number().int().min(0),
    /** Why the tape could not be read on (an I/O error, a wrong tape), with what to do. */
    error: z.string().max(4000).optional(),
  })
  .strict();

/**
 * The agent is still working on a task (sent every heartbeatInterval seconds while it runs,
 * data moving or not): the catalog tells a live task from a dead one by these, not by its age.
 */
export const heartbeatSchema = z.object({ ...base, kind: z.literal('heartbeat') }).strict();

export const progressSchema = z
  .object({ ...base, kind: z.literal('progress'), bytesDone: z.number().min(0), bytesTotal: z.number().min(0), phase: z.string().max(64) })
  .strict();

/** Directories found by a discover task; long lists come in several reports (`part` of `parts`). */
export const MAX_DISCOVERED_PER_REPORT = 2000;
export const discoverResultSchema = z.discriminatedUnion('ok', [
  z
    .object({
      ...base,
      kind: z.literal('discover-result'),
      ok: z.literal(true),
      host: z.string(),
      root: z.string(),
      paths: z.array(z.string().startsWith('/')).max(MAX_DISCOVERED_PER_REPORT),
      part: z.number().int().min(1),
      parts: z.number().int().min(1),
    })
    .strict(),
  z.object({ ...base, kind: z.literal('discover-result'), ok: z.literal(false), host: z.string(), root: z.string(), error: z.string().max(4000) }).strict(),
]);

/** rebuild_catalog: a tape's label as read (phase start), then what it holds once read to its end (phase end). */
export const rebuildTapeResultSchema = z
  .object({
    ...base,
    kind: z.literal('rebuild-tape-result'),
    tapeName: z.string(),
    phase: z.enum(['start', 'end']),
    barcode: z.string(),
    blockSize: z.number().int().positive(),
    /** From the label (release 0.6) or, before, the files' headers; absent when nothing says. */
    pool: z.string().optional(),
    capacityBytes: z.number().int().positive().optional(),
    labelledAt: z.string(),
    /** Files on tape, the label included (end of data). */
    filesOnTape: z.number().int().min(0),
    /** end: complete target files catalogued, their bytes, the next file number to write. */
    files: z.number().int().min(0).optional(),
    bytesUsed: z.number().int().min(0).optional(),
    nextFileNumber: z.number().int().min(1).optional(),
    /** end: tape files not catalogued (no trailer, not a target file), and why. */
    skipped: z
      .array(z.object({ fileNumber: z.number().int(), reason: z.string().max(1000) }).strict())
      .max(MAX_LISTED)
      .optional(),
    /** end: files whose headers name different pools (the tape's pool is then in doubt). */
    problems: z.array(z.string().max(1000)).max(MAX_LISTED).optional(),
    verified: z.boolean(),
    merge: z.boolean(),
  })
  .strict();

/** rebuild_catalog: one complete target file, from its header and trailer (its manifest is stored by the agent). */
export const rebuildFileResultSchema = z
  .object({
    ...base,
    kind: z.literal('rebuild-file-result'),
    tapeName: z.string(),
    fileNumber: z.number().int().min(1),
    target: z.object({ id: z.string(), host: z.string(), path: z.string() }).strict(),
    scanId: z.string(),
    pool: z.string(),
    copies: z.array(z.string()).max(16).optional(),
    writeTaskId: z.string(),
    writtenAt: z.string(),
    /** The header's manifest figures (every name counted) and its stored pages. */
    fileCount: z.number().int().min(0),
    totalBytes: z.number().int().min(0),
    manifestPages: z.number().int().min(1),
    skipped: z.array(badFile).max(MAX_LISTED).optional(),
    skippedCount: z.number().int().min(0).optional(),
    /** The file on tape: its bytes, and the trailer's file count and digest. */
    bytes: z.number().int().min(0),
    trailerFileCount: z.number().int().min(0),
    digest: z.string(),
    /** not-read: header and trailer only; ok/failed: the data was read back and checked (--verify). */
    verify: z.enum(['not-read', 'ok', 'failed']),
    verifyError: z.string().max(4000).optional(),
    merge: z.boolean(),
  })
  .strict();

/** rebuild_catalog: the whole task is done (every tape read, or given up with the reason). */
export const rebuildResultSchema = z
  .object({
    ...base,
    kind: z.literal('rebuild-result'),
    tapes: z
      .array(
        z
          .object({
            name: z.string(),
            outcome: z.enum(['rebuilt', 'already-rebuilt', 'failed']),
            files: z.number().int().min(0),
            error: z.string().max(2000).optional(),
          })
          .strict(),
      )
      .max(MAX_REBUILD_TAPES),
  })
  .strict();

const snapshotItems = z.object({ catalog: z.number().int().min(0), manifests: z.number().int().min(0) }).strict();

/** A catalog snapshot written to tape (written), or why not (failed: nothing is recorded on the tape). */
export const snapshotResultSchema = z
  .object({
    ...base,
    kind: z.literal('snapshot-result'),
    tapeName: z.string(),
    fileNumber: z.number().int().min(1),
    outcome: z.enum(['written', 'failed']),
    bytes: z.number().int().min(0).optional(),
    sha256: z.string().optional(),
    items: snapshotItems.optional(),
    error: z.string().max(4000).optional(),
  })
  .strict();

/** restore_catalog --tape: where the agent wrote the tape's last snapshot, or why it could not. */
export const readSnapshotResultSchema = z
  .object({
    ...base,
    kind: z.literal('read-snapshot-result'),
    tapeName: z.string(),
    ok: z.boolean(),
    file: z.string().optional(),
    fileNumber: z.number().int().min(1).optional(),
    writtenAt: z.string().optional(),
    bytes: z.number().int().min(0).optional(),
    sha256: z.string().optional(),
    items: snapshotItems.optional(),
    error: z.string().max(4000).optional(),
  })
  .strict();

export const resultSchema = z.union([
  snapshotResultSchema,
  readSnapshotResultSchema,
  rebuildTapeResultSchema,
  rebuildFileResultSchema,
  rebuildResultSchema,
  scanResultSchema,
  writeResultSchema,
  verifyResultSchema,
  checkTapeResultSchema,
  restoreResultSchema,
  progressSchema,
  heartbeatSchema,
  discoverResultSchema,
]);

export type ScanResult = z.infer<typeof scanResultSchema>;
export type WriteResult = z.infer<typeof writeResultSchema>;
export type VerifyResult = z.infer<typeof verifyResultSchema>;
export type ProgressReport = z.infer<typeof progressSchema>;
export type HeartbeatReport = z.infer<typeof heartbeatSchema>;
export type CheckTapeResult = z.infer<typeof checkTapeResultSchema>;
export type RestoreResult = z.infer<typeof restoreResultSchema>;
export type DiscoverResult = z.infer<typeof discoverResultSchema>;
export type RebuildTapeResult = z.infer<typeof rebuildTapeResultSchema>;
export type RebuildFileResult = z.infer<typeof rebuildFileResultSchema>;
export type RebuildResult = z.infer<typeof rebuildResultSchema>;
export type SnapshotResult = z.infer<typeof snapshotResultSchema>;
export type ReadSnapshotResult = z.infer<typeof readSnapshotResultSchema>;
export type Result = z.infer<typeof resultSchema>;
