/**
 * Repair from another copy (write task with `from`): that confirmed tape file is restored into
 * a directory of its own under the agent's staging directory, every file checked against its
 * manifest as any restore is, and the write then streams from there instead of the data host.
 * Bounded: a target larger than the configured staging size, or than the free space, is
 * refused before the tape is touched. The directory is removed when the write ends.
 */
import { mkdir, rm, statfs } from 'node:fs/promises';
import { join } from 'node:path';
import type { WriteTask } from '../../lib/protocol/tasks.ts';
import { extractTargetFile, linkGroupsToRedirect } from '../../lib/restore/extract.ts';
import { LocalDestination } from '../../lib/restore/local-destination.ts';
import { SourceUnavailableError } from '../../lib/source/data-source.ts';
import { TapeBusyError } from '../../lib/tape/drive.ts';
import { errorMessage } from '../../lib/errors.ts';
import type { DriveDeps } from '../types.ts';
import { mountForReading } from './tape-checks.ts';

export interface StagedCopy {
  dir: string;
  remove(): Promise<void>;
}

/** The other copy could not be staged (too large, no room, or it did not read back whole): the write is retried or repaired from the source. */
export class StagingError extends SourceUnavailableError {
  override readonly name = 'StagingError';
}

export async function stageCopy(deps: DriveDeps, task: WriteTask, from: NonNullable<WriteTask['from']>, signal: AbortSignal): Promise<StagedCopy> {
  const { drive, ctx, log, staging } = deps;
  const where = `${from.tapeName} file ${from.fileNumber}`;
  if (task.totalBytes > staging.maxBytes) {
    throw new StagingError(
      `the copy on ${where} holds ${task.totalBytes} bytes, more than the staging directory may hold (staging.maxBytes ${staging.maxBytes}); nothing was written (raise it in the agent config for later repairs). ${FROM_SOURCE_NEXT}`,
    );
  }
  await mkdir(staging.dir, { recursive: true });
  const fs = await statfs(staging.dir);
  const free = fs.bavail * fs.bsize;
  if (task.totalBytes > free) {
    throw new StagingError(
      `the staging directory ${staging.dir} has ${free} bytes free, the copy on ${where} needs ${task.totalBytes}; nothing was written (free space there for later repairs). ${FROM_SOURCE_NEXT}`,
    );
  }
  const dir = join(staging.dir, task.taskId);
  const remove = () => rm(dir, { recursive: true, force: true });
  await remove();
  await mkdir(dir, { recursive: true });
  try {
    // Our tape, or a tapetown tape (migration off old media).
    const reading = await mountForReading(drive, ctx, from.tapeName);
    if (!reading) throw new StagingError(`tape ${from.tapeName} in drive ${drive.id} is blank; it cannot be the copy to repair from.`);
    const manifest = () => ctx.manifests.read(task.target.id, from.scanId, from.manifestPages);
    await drive.seekFile(from.fileNumber);
    const failures: string[] = [];
    const counts = await extractTargetFile({
      targetId: task.target.id,
      ...reading.extract(task.target.path, signal),
      manifest: manifest(),
      selection: [],
      redirectedGroups: await linkGroupsToRedirect(manifest(), []),
      dest: new LocalDestination(dir),
      overwrite: true,
      owners: process.getuid?.() === 0,
      onFailure: (f) => failures.push(`${f.path}: ${f.reason}`),
      signal,
    });
    if (failures.length || counts.failed > 0) {
      throw new StagingError(
        `the copy on ${where} did not read back whole (${failures.length} file(s): ${failures.slice(0, 5).join('; ')}); nothing was written. Confirm that copy ("confirm ${from.fileNumber} --tape ${from.tapeName} --retry"). ${FROM_SOURCE_NEXT}`,
      );
    }
    log('info', 'repair: other copy staged', { taskId: task.taskId, targetId: task.target.id, from: where, files: counts.restored, bytes: counts.bytes, dir });
    return { dir, remove };
  } catch (e) {
    await remove().catch(() => undefined);
    // Whatever went wrong with the other copy's tape (not loaded, wrong cartridge, unreadable)
    // says nothing about the tape to be written: a staging error, never a refusal of that tape.
    if (signal.aborted || e instanceof TapeBusyError || e instanceof StagingError) throw e;
    throw new StagingError(`the copy on ${where} could not be read (${errorMessage(e)}); nothing was written. ${FROM_SOURCE_NEXT}`);
  }
}

const FROM_SOURCE_NEXT = 'The next "archive" writes this copy from its source instead, checked against its scan.';
