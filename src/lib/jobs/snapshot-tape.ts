/**
 * Catalog snapshots on tape (docs/tape-format.md, "Catalog snapshot files"): `snapshot_tape`
 * appends the whole catalog to a closed tape as one more tape file (close_tape does it
 * itself), and `fetch_snapshot` has the agent write the last snapshot found on a tape to a
 * file on its host, for `restore_catalog --tape` to load. The agent does the tape work
 * (agent/tasks/snapshot.ts); the results consumer records what it did.
 */
import { isAbsolute } from 'node:path';
import { ConditionFailed } from '../catalog/catalog.ts';
import { assertNotReadOnly, type Tape } from '../domain/tape.ts';
import { ConflictError, IllegalTransitionError, NotFoundError, UsageError } from '../errors.ts';
import { readSnapshotTask, snapshotTask } from '../protocol/build-tasks.ts';
import type { JobContext } from './context.ts';

export interface SnapshotTapeResult {
  tape: string;
  taskId: string;
  fileNumber: number;
  message: string;
}

/** Starts a snapshot as the next file of a closed tape; ConflictError when another write or snapshot holds it. */
export async function startTapeSnapshot(ctx: JobContext, tape: Tape): Promise<SnapshotTapeResult> {
  const taskId = ctx.newId();
  const now = ctx.now().toISOString();
  const fileNumber = tape.nextFileNumber;
  await ctx.tasks.create({ taskId, kind: 'snapshot', tapeName: tape.name, fileNumber, bytesTotal: 0, createdAt: now });
  try {
    await ctx.catalog.startSnapshot(tape, { taskId, fileNumber, startedAt: now }, now);
  } catch (e) {
    if (!(e instanceof ConditionFailed)) throw e;
    await ctx.tasks.finish(taskId, 'failed', 'refused', `tape ${tape.name} changed meanwhile; no snapshot was started`, now);
    throw new ConflictError(
      `tape ${tape.name} is busy (a write or another snapshot) or changed meanwhile; no snapshot was started. Check "tapes" and try again.`,
    );
  }
  await ctx.queues.sendTask(snapshotTask({ taskId, issuedAt: now }, tape.name, fileNumber));
  return {
    tape: tape.name,
    taskId,
    fileNumber,
    message: `catalog snapshot requested as file ${fileNumber} of ${tape.name} (task ${taskId}); "task ${taskId} --wait" follows it.`,
  };
}

export async function snapshotTape(ctx: JobContext, input: { tape: string }): Promise<SnapshotTapeResult> {
  const tape = await ctx.catalog.getTape(input.tape);
  if (!tape) throw new NotFoundError(`no tape ${input.tape}; list tapes with "tapes". Nothing was written.`);
  assertNotReadOnly(tape, `append a catalog snapshot to tape ${tape.name}`);
  if (tape.state !== 'closed')
    throw new IllegalTransitionError(
      `tape ${tape.name} is ${tape.state}; a catalog snapshot is appended to a closed tape only (archive writes to open ones). "close_tape ${tape.name}" writes one as it closes the tape.`,
    );
  if (tape.nextFileNumber < 2) throw new IllegalTransitionError(`tape ${tape.name} holds no target file (it was closed blank); nothing was written.`);
  return startTapeSnapshot(ctx, tape);
}

export interface FetchSnapshotResult {
  tape: string;
  taskId: string;
  file: string;
  message: string;
}

/** The agent writes the last catalog snapshot on `tape` as `file` on its host. Needs no catalog entry for the tape. */
export async function fetchSnapshot(ctx: JobContext, input: { tape: string; file: string }): Promise<FetchSnapshotResult> {
  if (!isAbsolute(input.file)) throw new UsageError(`--to ${input.file}: give an absolute path on the agent's host; nothing was read.`);
  const taskId = ctx.newId();
  const now = ctx.now().toISOString();
  await ctx.tasks.create({ taskId, kind: 'read-snapshot', tapeName: input.tape, destination: input.file, bytesTotal: 0, createdAt: now });
  await ctx.queues.sendTask(readSnapshotTask({ taskId, issuedAt: now }, input.tape, input.file));
  return {
    tape: input.tape,
    taskId,
    file: input.file,
    message: `the agent looks for the last catalog snapshot on ${input.tape} and writes it to ${input.file} (task ${taskId}).`,
  };
}
