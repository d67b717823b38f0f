/**
 * `confirm [id|next] [--retry] [--no-db-update]`: a read-back verify of a file of the online
 * tape of a pool (`--pool`), or of the tape named with `--tape`. The agent reads it back and
 * checks every checksum; the result confirms (or fails) the file and the copy it holds.
 */
import type { TapeFile } from '../domain/tape-file.ts';
import { IllegalTransitionError, NotFoundError, UsageError } from '../errors.ts';
import { verifyTask } from '../protocol/build-tasks.ts';
import type { JobContext } from './context.ts';
import { resolveTape } from './tapes.ts';

export interface ConfirmInput {
  /** A file number on the tape, or "next" for the lowest unconfirmed one. */
  which: string;
  tape?: string;
  /** The online tape of this pool (when no tape is named). */
  pool?: string;
  retry?: boolean;
  noDbUpdate?: boolean;
}

export type ConfirmResult =
  | { status: 'requested'; tape: string; pool: string; fileNumber: number; targetId: string; taskId: string; updateCatalog: boolean }
  | { status: 'idle'; tape: string; pool: string; message: string };

/**
 * A file not yet read back here: archived, or adopted from tapetown and never read by this
 * system (tapetown's "confirmed" compared md5s only; sizes, modes and SHA-256 are unknown).
 */
const toConfirm = (f: TapeFile): boolean => f.state === 'archived' || (f.format === 'tapetown' && f.state === 'confirmed' && !f.lastVerifyTaskId);

/** `confirm [id|next] [--retry] [--no-db-update]`: requests a read-back verify of a tape file. */
export async function confirm(ctx: JobContext, input: ConfirmInput): Promise<ConfirmResult> {
  const which = input.which;
  if (which !== 'next' && !/^\d+$/.test(which)) {
    throw new UsageError(`"${which}" is not a file number; give the file number on the tape (1, 2, ...) or "next".`);
  }
  const tape = await resolveTape(ctx, input.tape, input.pool);
  let file: TapeFile | undefined;
  if (which === 'next') {
    const files = await ctx.catalog.listTapeFiles(tape.name);
    // A file whose verify is already requested is not "next": asking three times verifies three files, not one file three times.
    const requested = new Set((await ctx.tasks.listUnfinished('verify')).filter((s) => s.tapeName === tape.name).map((s) => s.fileNumber));
    file = files.find((f) => toConfirm(f) && !requested.has(f.fileNumber));
    if (!file) {
      const waiting = files.filter(toConfirm).length;
      return {
        status: 'idle',
        tape: tape.name,
        pool: tape.pool,
        message: waiting
          ? `every archived file on ${tape.name} already has a verify requested (${waiting} waiting for the agent); nothing more to confirm now.`
          : `every archived file on ${tape.name} is confirmed or failed; nothing to confirm. Use "confirm N --retry" to verify a file again.`,
      };
    }
  } else {
    const n = Number(which);
    // A tapetown tape has no label: its first target is file 0.
    if (n < 1 && tape.format !== 'tapetown') throw new UsageError('file 0 is the tape label; targets start at file 1.');
    file = await ctx.catalog.getTapeFile(tape.name, n);
    if (!file)
      throw new NotFoundError(`tape ${tape.name} has no file ${n} (next file number is ${tape.nextFileNumber}); list with "targets --tape ${tape.name}".`);
  }
  if (file.state === 'writing') {
    throw new IllegalTransitionError(`file ${file.fileNumber} on ${tape.name} is still being written; confirm it after the write finishes.`);
  }
  if ((file.state === 'confirmed' || file.state === 'confirm_failed') && !input.retry && !toConfirm(file)) {
    throw new IllegalTransitionError(
      `file ${file.fileNumber} on ${tape.name} is already ${file.state === 'confirmed' ? 'confirmed' : 'confirm-failed'}; use --retry to verify it again.`,
    );
  }
  const task = verifyTask(
    { taskId: ctx.newId(), issuedAt: ctx.now().toISOString() },
    { tapeName: tape.name, fileNumber: file.fileNumber, targetId: file.targetId, updateCatalog: !input.noDbUpdate },
  );
  await ctx.tasks.create({
    taskId: task.taskId,
    kind: 'verify',
    tapeName: tape.name,
    fileNumber: file.fileNumber,
    targetId: file.targetId,
    updateCatalog: task.updateCatalog,
    bytesTotal: file.bytes ?? 0,
    createdAt: task.issuedAt,
  });
  await ctx.queues.sendTask(task);
  return {
    status: 'requested',
    tape: tape.name,
    pool: tape.pool,
    fileNumber: file.fileNumber,
    targetId: file.targetId,
    taskId: task.taskId,
    updateCatalog: task.updateCatalog,
  };
}
