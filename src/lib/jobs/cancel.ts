/**
 * `cancel TASK`: asks the agent to stop a restore cleanly (it stops within a second, keeps
 * what it verified, removes the file it was writing and reports `cancelled`). Writes and
 * verifies are not cancelled: a tape write stopped halfway is re-driven anyway, so stopping
 * one is the agent's two-stage shutdown, not a job.
 */
import { IllegalTransitionError, NotFoundError } from '../errors.ts';
import type { JobContext } from './context.ts';

export async function cancel(ctx: JobContext, input: { taskId: string }): Promise<{ status: 'cancel-requested'; taskId: string; message: string }> {
  const task = await ctx.tasks.get(input.taskId);
  if (!task) throw new NotFoundError(`no task ${input.taskId}; task ids are printed by restore, archive and confirm.`);
  if (task.kind !== 'restore')
    throw new IllegalTransitionError(
      `task ${input.taskId} is a ${task.kind}; only a restore can be cancelled (a write or verify runs to its end; stop the agent to abort one, and it is driven again).`,
    );
  if (!(await ctx.tasks.requestCancel(input.taskId, ctx.now().toISOString())))
    throw new IllegalTransitionError(`task ${input.taskId} has already ${task.state === 'succeeded' ? 'succeeded' : 'finished'}; nothing to cancel.`);
  return {
    status: 'cancel-requested',
    taskId: input.taskId,
    message: `cancel of restore ${input.taskId} requested; the agent stops after the member it is on, keeps what it verified, and reports it cancelled.`,
  };
}
