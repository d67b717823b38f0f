/**
 * The verify path for a tape file tapetown wrote (confirm of an adopted copy): no label to
 * check, so the identity check is the file's first member (it must be under the target's
 * path); the file is read in variable-block mode and checked against tapetown's md5s
 * (tape-format/tapetown-file.ts). Read back good, its exact manifest goes into the manifest
 * table (with the name index) before the report, which names it: from then on where_is,
 * tape_detail and restore see exact sizes and SHA-256s.
 */
import { verifyBase } from './verify.ts';
import type { TapeFile } from '../../lib/domain/tape-file.ts';
import type { ManifestEntry } from '../../lib/domain/manifest.ts';
import { errorMessage } from '../../lib/errors.ts';
import { MAX_LISTED, type VerifyResult } from '../../lib/protocol/results.ts';
import type { VerifyTask } from '../../lib/protocol/tasks.ts';
import { readTapetownFile } from '../../lib/tape-format/tapetown-file.ts';
import { BlockSizeError, TapeBusyError } from '../../lib/tape/drive.ts';
import { adoptedScanId, type Target } from '../../lib/domain/target.ts';
import type { DriveDeps, TaskOutcome } from '../types.ts';
import { mountTape } from './tape-checks.ts';

/** The scan id of the manifest a read-back of a tapetown file measured. */
export const measuredScanId = (file: Pick<TapeFile, 'tapeName' | 'fileNumber'>, taskId: string): string =>
  `tapetown-read-${file.tapeName}-${file.fileNumber}-${taskId.slice(0, 8)}`;

export async function runVerifyTapetown(
  deps: DriveDeps,
  task: VerifyTask,
  file: TapeFile,
  target: Target | undefined,
  signal: AbortSignal,
): Promise<TaskOutcome> {
  const { drive, ctx, log } = deps;
  const base = verifyBase(task);
  const failed = (error: string, notRead: boolean): TaskOutcome => ({
    kind: 'report',
    result: { ...base, outcome: 'failed', bytes: 0, fileCount: 0, bad: [], badCount: 0, error, ...(notRead ? { notRead: true } : {}) },
  });
  if (!target) return failed(`target ${task.targetId} is not in the catalog`, true);
  let reading = false;
  try {
    await mountTape(drive, task.tapeName);
    const adopted: ManifestEntry[] | undefined =
      file.scanId && file.manifestPages ? await ctx.manifests.readAll(task.targetId, file.scanId, file.manifestPages) : undefined;
    const progress = deps.reporter.progress(task.taskId, file.bytes ?? target.totalBytes ?? 0, 'verifying (tapetown)');
    await drive.seekFile(task.fileNumber);
    reading = true;
    const r = await readTapetownFile(
      drive.readFile({ signal, variable: {} }),
      // The nested targets left out when tapetown wrote it (a target imported inside it since is on this file too).
      { targetPath: target.path, excludes: file.excludes ?? target.excludes ?? [], ...(adopted?.length ? { adopted } : {}) },
      { signal, onProgress: (n) => progress.update(n) },
    );
    await progress.flush();
    if (r.notThisFile) return failed(`file ${task.fileNumber} of ${task.tapeName} is not ${target.path}: ${r.notThisFile}. Load the right cartridge.`, true);
    log(r.ok ? 'info' : 'warn', r.ok ? 'tapetown verify ok' : 'tapetown verify FAILED', {
      taskId: task.taskId,
      tape: task.tapeName,
      fileNumber: task.fileNumber,
      bad: r.bad.length,
    });
    const result: Omit<VerifyResult, 'v' | 'reportedAt'> = {
      ...base,
      outcome: r.ok ? 'confirmed' : 'failed',
      bytes: r.tapeBytes,
      fileCount: r.fileCount,
      bad: r.bad.slice(0, MAX_LISTED),
      badCount: r.bad.length,
    };
    // Measured once, by the first good read-back; a later one (scrub, --retry) checks against that.
    const firstMeasure = !file.scanId || (target.adopted !== undefined && file.scanId === adoptedScanId(target.adopted.id));
    if (!r.ok || !task.updateCatalog || !firstMeasure) return { kind: 'report', result };
    const scanId = measuredScanId(file, task.taskId);
    const manifestPages = await ctx.manifests.write(task.targetId, scanId, r.entries, { names: ctx.names });
    const exact = { scanId, manifestPages, fileCount: r.fileCount, totalBytes: r.totalBytes, tapeBytes: r.tapeBytes, sha256: r.sha256, baseline: r.baseline };
    return { kind: 'report', result: { ...result, exact } };
  } catch (e) {
    if (signal.aborted || e instanceof TapeBusyError) throw e;
    log('warn', 'tapetown verify could not read the file', { taskId: task.taskId, tape: task.tapeName, error: errorMessage(e), reading });
    // A block larger than the read buffer says nothing about the medium: the copy stays as it was.
    return failed(errorMessage(e), !reading || e instanceof BlockSizeError);
  }
}
