/**
 * A catalog rebuilt from tapes alone (rebuild_catalog): what each report of the agent makes of
 * the catalog's tapes, tape files, targets and copies, and where a catalog that is already there
 * disagrees with a tape (`--merge`). Pure: no catalog, no clock.
 *
 * What is not on tape comes back as the safest value: a rebuilt tape is `disabled` (whether it
 * was online, full or closed is not on tape; enable_tape checks it before any write), a copy is
 * `archived` until it is read back (`--verify`, confirm or scrub make it confirmed), and catalog
 * timestamps are those on tape (the label's and the headers' `writtenAt`).
 */
import type { RebuildFileResult, RebuildTapeResult } from '../protocol/results.ts';
import { DEFAULT_POOL, type Copy } from './copies.ts';
import type { Tape } from './tape.ts';
import type { TapeFile } from './tape-file.ts';
import type { Target } from './target.ts';

export const rebuiltReason = (name: string): string =>
  `rebuilt from the tape: whether it was online, full or closed is not on tape. Run "enable_tape ${name}" to check it and write to it again, or "close_tape ${name} --yes" if it was closed.`;

/** The tape as its label and its files say (`end`: read to its end). Capacity unknown before release 0.6: the bytes on it. */
export function rebuiltTape(r: RebuildTapeResult, now: string): Tape {
  const end = r.phase === 'end';
  const bytesUsed = r.bytesUsed ?? 0;
  return {
    name: r.tapeName,
    barcode: r.barcode,
    pool: r.pool ?? DEFAULT_POOL,
    capacityBytes: r.capacityBytes ?? Math.max(bytesUsed, 1),
    state: 'disabled',
    online: false,
    bytesUsed,
    nextFileNumber: r.nextFileNumber ?? Math.max(r.filesOnTape, 1),
    filesWritten: r.files ?? 0,
    filesConfirmed: 0,
    reason: rebuiltReason(r.tapeName),
    rebuilt: { taskId: r.taskId, at: now, complete: end, verified: r.verified },
    createdAt: r.labelledAt,
    updatedAt: now,
  };
}

const fileState = (r: RebuildFileResult): TapeFile['state'] => (r.verify === 'ok' ? 'confirmed' : r.verify === 'failed' ? 'confirm_failed' : 'archived');

export function rebuiltTapeFile(r: RebuildFileResult, now: string): TapeFile {
  return {
    tapeName: r.tapeName,
    fileNumber: r.fileNumber,
    targetId: r.target.id,
    state: fileState(r),
    taskId: r.writeTaskId,
    scanId: r.scanId,
    manifestPages: r.manifestPages,
    bytes: r.bytes,
    fileCount: r.trailerFileCount,
    sha256: r.digest,
    startedAt: r.writtenAt,
    archivedAt: r.writtenAt,
    ...(r.verify !== 'not-read' ? { verifiedAt: now, lastVerifyTaskId: r.taskId } : {}),
    ...(r.verifyError ? { verifyError: r.verifyError } : {}),
  };
}

/** The target as the file's header describes it; its policy from the header (release 0.6), else the file's pool. */
export function rebuiltTarget(r: RebuildFileResult): Target {
  return {
    id: r.target.id,
    host: r.target.host,
    path: r.target.path,
    scan: 'complete',
    scanId: r.scanId,
    fileCount: r.fileCount,
    totalBytes: r.totalBytes,
    manifestPages: r.manifestPages,
    ...(r.skippedCount ? { skippedCount: r.skippedCount, skipped: r.skipped ?? [] } : {}),
    copies: r.copies?.length ? r.copies : [r.pool],
    importedAt: r.writtenAt,
    // When the scan on tape was written: a newer file of the target (another scan) replaces it.
    updatedAt: r.writtenAt,
    version: 1,
  };
}

export function rebuiltCopy(r: RebuildFileResult, importedAt: string, now: string): Copy {
  const placement = fileState(r);
  return {
    targetId: r.target.id,
    pool: r.pool,
    placement,
    tapeName: r.tapeName,
    fileNumber: r.fileNumber,
    bytes: r.bytes,
    archivedAt: r.writtenAt,
    ...(r.verify !== 'not-read' ? { verifiedAt: now } : {}),
    ...(r.verifyError ? { lastError: r.verifyError } : {}),
    importedAt,
    updatedAt: now,
    version: 1,
  };
}

/** A target that is already in the catalog with another file's figures: the newer write wins, an older one is history. */
export function newerWrite(existingWrittenAt: string | undefined, r: Pick<RebuildFileResult, 'writtenAt'>): boolean {
  return existingWrittenAt === undefined || r.writtenAt > existingWrittenAt;
}

/** "tape T1 file 3: the catalog has scanId s-1, the tape s-2": each field where the catalog and the tape differ. */
export function disagreements(where: string, catalog: Record<string, unknown>, tape: Record<string, unknown>, fields: readonly string[]): string[] {
  const out: string[] = [];
  for (const f of fields) {
    const a = JSON.stringify(catalog[f]);
    const b = JSON.stringify(tape[f]);
    if (a !== b) out.push(`${where}: the catalog has ${f} ${a ?? 'none'}, the tape ${b ?? 'none'}`);
  }
  return out;
}
