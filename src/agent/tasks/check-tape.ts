/**
 * The check-tape path (enable_tape): is the tape in the drive the one the catalog means, does
 * it end where the catalog says, and can it be written? Read only: nothing is written.
 */
import type { CheckTapeTask } from '../../lib/protocol/tasks.ts';
import { TapeBusyError } from '../../lib/tape/drive.ts';
import { errorMessage } from '../../lib/errors.ts';
import type { DriveDeps, TaskOutcome } from '../types.ts';
import { checkLabel, leftoverOfFailedWrite, mountTape } from './tape-checks.ts';

export async function runCheckTape(deps: DriveDeps, task: CheckTapeTask, signal: AbortSignal): Promise<TaskOutcome> {
  const { drive, ctx, log } = deps;
  const status = await ctx.tasks.get(task.taskId);
  if (status && (status.state === 'succeeded' || status.state === 'failed')) {
    return { kind: 'dropped', reason: `check ${task.taskId} already reported` };
  }
  const base = { kind: 'check-tape-result' as const, taskId: task.taskId, tapeName: task.tapeName };
  try {
    await mountTape(drive, task.tapeName);
    const label = await checkLabel(drive, task.tapeName);
    const filesOnTape = label ? await drive.seekEndOfData() : 0;
    const { writeProtected } = await drive.status();
    const problems: string[] = [];
    // A tape with nothing written may be blank or hold only its label; one more file than the
    // catalog's may be the leftover of the failed write that disabled the tape (st drives).
    const leftover =
      filesOnTape === task.expectedFiles + 1 && task.expectedFiles >= 1
        ? await leftoverOfFailedWrite(drive, ctx, task.tapeName, task.expectedFiles)
        : undefined;
    const positionOk = filesOnTape === task.expectedFiles || (task.expectedFiles <= 1 && filesOnTape <= 1) || leftover !== undefined;
    if (leftover)
      log('info', 'the file after the last catalogued one is the leftover of a failed write; the next write goes over it', {
        taskId: task.taskId,
        failedTaskId: leftover,
      });
    if (!positionOk) {
      problems.push(
        `it holds ${filesOnTape} complete file(s), label included, but the catalog expects ${task.expectedFiles}; look at it with "tape-agent inspect" (read only) before using it`,
      );
    }
    if (writeProtected) problems.push('the cartridge is write protected: slide its write-protect tab back');
    log(problems.length ? 'warn' : 'info', 'tape checked', { taskId: task.taskId, tape: task.tapeName, filesOnTape, writeProtected });
    return {
      kind: 'report',
      result: { ...base, ok: problems.length === 0, filesOnTape, writeProtected, ...(problems.length ? { error: problems.join('; ') } : {}) },
    };
  } catch (e) {
    if (signal.aborted || e instanceof TapeBusyError) throw e;
    log('warn', 'tape check failed', { taskId: task.taskId, tape: task.tapeName, error: errorMessage(e) });
    return { kind: 'report', result: { ...base, ok: false, error: errorMessage(e) ?? String(e) } };
  }
}
