/**
 * `enable_tape NAME`: the way back for a tape disabled by a cause that has gone (a wrong
 * cartridge in the drive, the write-protect tab, a drive error). Nothing changes here: a
 * check-tape task asks the agent to read the label and find the end of data, and the tape is
 * enabled only when both are where the catalog says (results/apply-result.ts).
 */
import { assertNotReadOnly } from '../domain/tape.ts';
import { IllegalTransitionError } from '../errors.ts';
import { checkTapeTask } from '../protocol/build-tasks.ts';
import type { JobContext } from './context.ts';
import { resolveTape } from './tapes.ts';

export interface EnableTapeResult {
  status: 'requested';
  tape: string;
  taskId: string;
  /** Why the tape was disabled. */
  reason?: string;
  expectedFiles: number;
  message: string;
}

export async function enableTape(ctx: JobContext, input: { name: string }): Promise<EnableTapeResult> {
  const tape = await resolveTape(ctx, input.name);
  assertNotReadOnly(tape, `enable tape ${tape.name} for writing`);
  if (tape.state === 'broken') {
    throw new IllegalTransitionError(
      `tape ${tape.name} is broken${tape.reason ? ` (${tape.reason})` : ''}; a broken tape is not written again. Close it with "close_tape ${tape.name}".`,
    );
  }
  if (tape.state !== 'disabled') {
    throw new IllegalTransitionError(`tape ${tape.name} is ${tape.state}, not disabled; there is nothing to enable.`);
  }
  const issue = { taskId: ctx.newId(), issuedAt: ctx.now().toISOString() };
  // Label plus every file the catalog knows: file numbers 0 .. next-1 are complete on tape.
  const task = checkTapeTask(issue, tape.name, tape.nextFileNumber);
  await ctx.tasks.create({ taskId: task.taskId, kind: 'check-tape', tapeName: tape.name, bytesTotal: 0, createdAt: task.issuedAt });
  await ctx.queues.sendTask(task);
  return {
    status: 'requested',
    tape: tape.name,
    taskId: task.taskId,
    ...(tape.reason ? { reason: tape.reason } : {}),
    expectedFiles: tape.nextFileNumber,
    message: `check of tape ${tape.name} requested (task ${task.taskId}): the agent reads its label and end of data; it is enabled if both match the catalog.`,
  };
}
