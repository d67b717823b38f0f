/**
 * The write path: check the tape, position at the catalog's next file number, stream the
 * target as one tar (header, data, trailer), and report success only after the filemark.
 */
import { ConditionFailed } from '../../lib/catalog/catalog.ts';
import type { ManifestSource } from '../../lib/domain/manifest.ts';
import type { WriteTask } from '../../lib/protocol/tasks.ts';
import { readOnlyReason } from '../../lib/domain/tape.ts';
import { MAX_LISTED } from '../../lib/protocol/results.ts';
import { EndOfMediumError, isTapeError, TapeBusyError, WriteProtectedError, type TapeFileWriter } from '../../lib/tape/drive.ts';
import { readTargetFile, readTargetHeader, SourceChangedError, writeLabel, writeTargetFile, FORMAT } from '../../lib/tape-format/index.ts';
import { SourceUnavailableError } from '../../lib/source/data-source.ts';
import type { DriveDeps, TaskOutcome } from '../types.ts';
import { checkLabel, leftoverOfFailedWrite, mountTape, TapeRefusal } from './tape-checks.ts';
import { errorMessage } from '../../lib/errors.ts';
import { LocalDataSource } from '../../lib/source/local-source.ts';
import { stageCopy, type StagedCopy } from './stage-copy.ts';

export async function runWrite(deps: DriveDeps, task: WriteTask, signal: AbortSignal): Promise<TaskOutcome> {
  const { drive, ctx, log } = deps;
  const tape = await ctx.catalog.getTape(task.tapeName);
  if (!tape || tape.writeInFlight?.taskId !== task.taskId) {
    // Duplicate delivery, or a task whose result was already applied: never a second file.
    return { kind: 'dropped', reason: `write ${task.taskId} is not in flight on ${task.tapeName}` };
  }
  const base = { kind: 'write-result' as const, taskId: task.taskId, tapeName: task.tapeName, fileNumber: task.fileNumber, targetId: task.target.id };
  let labelWritten = false;
  let writer: TapeFileWriter | undefined;
  let accepted = 0; // bytes the tape file writer took before an end of medium
  let staged: StagedCopy | undefined;
  try {
    // An adopted tape is never written, whatever task arrives (the catalog refuses to start one, too).
    const readOnly = readOnlyReason(tape);
    if (readOnly) {
      log('error', 'write refused: an adopted tape is never written', { taskId: task.taskId, tape: task.tapeName, fileNumber: task.fileNumber });
      throw new TapeRefusal('write-protected', readOnly); // the protocol's refusal for a tape never written
    }
    await mountTape(drive, task.tapeName);
    if ((await drive.status()).writeProtected)
      throw new TapeRefusal('write-protected', `tape ${task.tapeName} in drive ${drive.id} is write protected; slide the tab or use another tape.`);
    const label = await checkLabel(drive, task.tapeName);
    if (!label) {
      if (task.fileNumber !== 1) {
        throw new TapeRefusal(
          'blank-tape',
          `tape ${task.tapeName} is blank but the catalog says ${task.fileNumber - 1} file(s) are on it; is this the right cartridge?`,
        );
      }
      await drive.rewind();
      const lw = await drive.openWriter();
      await writeLabel(lw, {
        format: FORMAT,
        tapeName: task.tapeName,
        barcode: tape.barcode,
        createdAt: new Date().toISOString(),
        blockSize: deps.blockSize,
        pool: tape.pool,
        capacityBytes: tape.capacityBytes,
      });
      await lw.close();
      labelWritten = true;
      log('info', 'label written', { tape: task.tapeName, drive: drive.id });
    }
    const position = await checkPosition(deps, task);

    // Read page by page, as often as the writer needs (never held whole: a target may have millions of entries).
    const manifest: ManifestSource = () => ctx.manifests.read(task.target.id, task.scanId, task.manifestPages);
    // What the scan left out by policy is written into the header: the tape says what it lacks.
    const record = await ctx.catalog.getTarget(task.target.id);
    const skipped = record?.scanId === task.scanId && record.skippedCount ? { skipped: record.skipped ?? [], skippedCount: record.skippedCount } : undefined;
    if (position === 'own-earlier-attempt') {
      // This task's file is already on tape (its report was lost, or is still on its way):
      // if it reads back whole and right, report it instead of writing it again.
      const done = await readBackEarlierAttempt(deps, task, manifest, signal);
      if (done) {
        log('warn', 'the file of an unreported earlier attempt is complete and verified; reporting it, not rewriting', {
          taskId: task.taskId,
          fileNumber: task.fileNumber,
        });
        const left = skipped ? { skipped: skipped.skipped.slice(0, MAX_LISTED), skippedCount: skipped.skippedCount } : {};
        return { kind: 'report', result: { ...base, outcome: 'archived', ...done, labelWritten, ...left } };
      }
      log('warn', 'rewriting file of an unreported earlier attempt', { taskId: task.taskId, fileNumber: task.fileNumber });
    }
    // A repair from another copy: restore it into staging (this drive changes tapes), then come back.
    if (task.from) {
      staged = await stageCopy(deps, task, task.from, signal);
      await mountTape(drive, task.tapeName);
      // The tape came back out of the drive meanwhile: the same checks again before the append.
      if (!(await checkLabel(drive, task.tapeName)))
        throw new TapeRefusal('wrong-tape', `tape ${task.tapeName} in drive ${drive.id} is blank after staging the other copy; load the right tape.`);
      if ((await checkPosition(deps, task)) !== position)
        throw new TapeRefusal('position-mismatch', `tape ${task.tapeName} no longer ends where it did before the other copy was staged; nothing was written.`);
    }
    const source = staged ? new LocalDataSource('staging') : deps.sources.for(task.target.host);
    const sourcePath = staged ? staged.dir : task.target.path;
    const progress = deps.reporter.progress(task.taskId, task.totalBytes, 'writing');
    await drive.seekFile(task.fileNumber);
    writer = await drive.openWriter();
    const { trailer } = await writeTargetFile({
      writer,
      header: {
        format: FORMAT,
        tapeName: task.tapeName,
        fileNumber: task.fileNumber,
        taskId: task.taskId,
        target: task.target,
        scanId: task.scanId,
        // The copy's pool: a catalog rebuilt from the tapes alone knows which copy this is.
        pool: tape.pool,
        ...(record ? { copies: record.copies } : {}),
        writtenAt: new Date().toISOString(),
        ...skipped,
        manifest,
      },
      source: source.stream(sourcePath, manifest, { signal }),
      // Compared with the manifest after the last entry: a file added since the scan fails the write.
      // ...except under nested targets, which the scan left out (they are archived on their own).
      listing: () => source.list(sourcePath, { signal, ...(staged ? {} : { excludes: record?.excludes ?? [] }) }),
      onProgress: (n) => {
        accepted = n;
        progress.update(n);
      },
      signal,
    });
    // Success only once the trailer is written and the filemark is on tape.
    const closed = await writer.close();
    writer = undefined;
    await progress.flush();
    log('info', 'write complete', { taskId: task.taskId, tape: task.tapeName, fileNumber: task.fileNumber, bytes: closed.bytes, files: trailer.fileCount });
    const left = skipped ? { skipped: skipped.skipped.slice(0, MAX_LISTED), skippedCount: skipped.skippedCount } : {};
    return {
      kind: 'report',
      result: { ...base, outcome: 'archived', bytes: closed.tapeBytes, fileCount: trailer.fileCount, digest: trailer.digest, labelWritten, ...left },
    };
  } catch (e) {
    if (writer) await writer.abort().catch(() => undefined);
    // Aborted, or the tape is in another drive: nothing is wrong with the tape or the target;
    // the task stays on the queue and runs again later.
    if (signal.aborted || e instanceof TapeBusyError) throw e;
    return { kind: 'report', result: { ...classifyWriteFailure(deps, task, e, base, accepted), labelWritten } };
  } finally {
    await staged?.remove().catch(() => undefined);
  }
}

/**
 * The tape must end exactly where the catalog says: files 0..N-1 complete, writing file N;
 * or file N is this task's own earlier attempt, or the leftover of a write that failed.
 */
async function checkPosition(deps: DriveDeps, task: WriteTask): Promise<'append' | 'own-earlier-attempt' | 'over-leftover'> {
  const onTape = await deps.drive.seekEndOfData();
  if (onTape === task.fileNumber) return 'append';
  if (onTape === task.fileNumber + 1) {
    // A previous attempt of this very task completed on tape but its report was lost.
    await deps.drive.seekFile(task.fileNumber);
    const header = await readTargetHeader(deps.drive.readFile()).catch(() => undefined);
    if (header?.taskId === task.taskId) return 'own-earlier-attempt';
    const failed = await leftoverOfFailedWrite(deps.drive, deps.ctx, task.tapeName, task.fileNumber);
    if (failed) {
      deps.log('warn', 'writing over the leftover of a failed write', { taskId: task.taskId, fileNumber: task.fileNumber, failedTaskId: failed });
      return 'over-leftover';
    }
  }
  throw new TapeRefusal(
    'position-mismatch',
    `tape ${task.tapeName} holds ${onTape} complete file(s) (label included) but the catalog expects ${task.fileNumber}; refusing to write. Check the tape with "tape-agent inspect --device DEV" (read only: the label and every file header) before re-enabling it.`,
  );
}

/** File N, written by an earlier attempt of this task, read back against the manifest: its figures if whole and right. */
async function readBackEarlierAttempt(
  deps: DriveDeps,
  task: WriteTask,
  manifest: ManifestSource,
  signal: AbortSignal,
): Promise<{ bytes: number; fileCount: number; digest: string } | undefined> {
  await deps.drive.seekFile(task.fileNumber);
  let tapeBytes = 0;
  // The drive's blocks as they are (it takes them back once verified: read-chunks.ts), counted as they are read.
  const onProgress = (n: number) => {
    tapeBytes = n;
  };
  const report = await readTargetFile(deps.drive.readFile({ signal }), { targetId: task.target.id, manifest }, { signal, onProgress }).catch((e: unknown) => {
    // Stopped, or the tape is busy: not a verdict on the file, which must not be written over now.
    if (signal.aborted || e instanceof TapeBusyError) throw e;
    return undefined;
  });
  if (!report?.ok || !report.trailer || report.header?.taskId !== task.taskId || report.header.scanId !== task.scanId) return undefined;
  return { bytes: tapeBytes, fileCount: report.trailer.fileCount, digest: report.trailer.digest };
}

type WriteBase = { kind: 'write-result'; taskId: string; tapeName: string; fileNumber: number; targetId: string };

function classifyWriteFailure(deps: DriveDeps, task: WriteTask, e: unknown, base: WriteBase, bytesAtEnd: number) {
  const msg = errorMessage(e);
  deps.log('warn', 'write failed', { taskId: task.taskId, tape: task.tapeName, fileNumber: task.fileNumber, error: msg, type: (e as Error)?.name });
  if (e instanceof TapeRefusal) return { ...base, outcome: 'refused' as const, reason: e.reason, error: msg };
  if (e instanceof WriteProtectedError) return { ...base, outcome: 'refused' as const, reason: 'write-protected' as const, error: msg };
  if (e instanceof EndOfMediumError) return { ...base, outcome: 'end-of-medium' as const, bytesAtEnd };
  if (e instanceof SourceChangedError) {
    return { ...base, outcome: 'source-changed' as const, changes: e.changes.slice(0, MAX_LISTED), changeCount: e.changeCount };
  }
  if (isTapeError(e)) return { ...base, outcome: 'io-error' as const, error: msg };
  if (e instanceof SourceUnavailableError || e instanceof ConditionFailed) return { ...base, outcome: 'source-error' as const, error: msg };
  return { ...base, outcome: 'source-error' as const, error: msg };
}
