/**
 * The verify path (confirm): read the tape file back, recompute every checksum and compare
 * with the trailer written and the manifest scanned. A verify that does not re-read the data
 * is not a verify.
 */
import type { VerifyTask } from '../../lib/protocol/tasks.ts';
import { MAX_LISTED } from '../../lib/protocol/results.ts';
import { HashWorkerError, readTargetFile } from '../../lib/tape-format/index.ts';
import { TapeBusyError } from '../../lib/tape/drive.ts';
import type { DriveDeps, TaskOutcome } from '../types.ts';
import { checkLabel, mountTape } from './tape-checks.ts';
import { runVerifyTapetown } from './verify-tapetown.ts';
import { errorMessage } from '../../lib/errors.ts';

export async function runVerify(deps: DriveDeps, task: VerifyTask, signal: AbortSignal): Promise<TaskOutcome> {
  const { drive, ctx, log } = deps;
  const file = await ctx.catalog.getTapeFile(task.tapeName, task.fileNumber);
  if (!file || file.targetId !== task.targetId) {
    return { kind: 'dropped', reason: `tape ${task.tapeName} has no file ${task.fileNumber} for ${task.targetId}` };
  }
  const status = await ctx.tasks.get(task.taskId);
  if (status && (status.state === 'succeeded' || status.state === 'failed')) {
    return { kind: 'dropped', reason: `verify ${task.taskId} already reported` };
  }
  const target = await ctx.catalog.getTarget(task.targetId);
  const base = verifyBase(task);
  if (file.format === 'tapetown') return runVerifyTapetown(deps, task, file, target, signal);
  // Until the file is being read, a failure (no tape, wrong tape) says nothing about the copy.
  let reading = false;
  try {
    await mountTape(drive, task.tapeName);
    const label = await checkLabel(drive, task.tapeName);
    if (!label) throw new Error(`tape ${task.tapeName} in drive ${drive.id} is blank`);
    // The scan written to this file; files from before release 0.3 use their target's.
    const scan = file.scanId ? { scanId: file.scanId, pages: file.manifestPages ?? 0 } : { scanId: target?.scanId, pages: target?.manifestPages ?? 0 };
    // Read page by page alongside the tape (never held whole).
    const { scanId, pages } = scan;
    const manifest = scanId && pages ? () => ctx.manifests.read(task.targetId, scanId, pages) : undefined;
    const progress = deps.reporter.progress(task.taskId, file.bytes ?? 0, 'verifying');
    reading = true;
    await drive.seekFile(task.fileNumber);
    const report = await readTargetFile(
      drive.readFile({ signal }),
      { targetId: task.targetId, ...(manifest ? { manifest } : {}) },
      { onProgress: (n: number) => progress.update(n), signal },
    );
    await progress.flush();
    log(report.ok ? 'info' : 'warn', report.ok ? 'verify ok' : 'verify FAILED', {
      taskId: task.taskId,
      tape: task.tapeName,
      fileNumber: task.fileNumber,
      bad: report.bad.length,
    });
    return {
      kind: 'report',
      result: {
        ...base,
        outcome: report.ok ? 'confirmed' : 'failed',
        bytes: report.dataBytes,
        fileCount: report.fileCount,
        bad: report.bad.slice(0, MAX_LISTED),
        badCount: report.bad.length,
      },
    };
  } catch (e) {
    if (signal.aborted || e instanceof TapeBusyError) throw e;
    log('warn', 'verify could not read the file', { taskId: task.taskId, tape: task.tapeName, fileNumber: task.fileNumber, error: errorMessage(e), reading });
    return { kind: 'report', result: unreadResult(base, e, reading) };
  }
}

/**
 * The report of a verify that threw: failed once the file was being read (a read error is the
 * copy's); not read before that (no tape, the wrong tape) or when the hash worker thread died
 * (that says nothing about the copy, which stays as it was).
 */
export function unreadResult(base: ReturnType<typeof verifyBase>, e: unknown, reading: boolean) {
  const notRead = !reading || e instanceof HashWorkerError;
  return { ...base, outcome: 'failed' as const, bytes: 0, fileCount: 0, bad: [], badCount: 0, error: errorMessage(e), ...(notRead ? { notRead: true } : {}) };
}

/** The fields every verify report of `task` starts with. */
export function verifyBase(task: VerifyTask) {
  return {
    kind: 'verify-result' as const,
    taskId: task.taskId,
    tapeName: task.tapeName,
    fileNumber: task.fileNumber,
    targetId: task.targetId,
    updateCatalog: task.updateCatalog,
  };
}
