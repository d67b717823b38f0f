/**
 * Drives lost work again from the catalog. A task can be lost with its queue (the local SQS
 * keeps nothing across a restart) or stall with a dead agent; the catalog still says what is
 * pending, so re-sending is always possible and always safe: the agent drops a task the
 * catalog no longer wants, and results apply only to the task the catalog waits for.
 * Runs on a schedule (AWS) or from the local stack; `run-job reconcile` runs it by hand.
 */
import type { JobContext } from './context.ts';
import { usableRepairSource } from './repair.ts';
import { checkTapeTask, scanTask, snapshotTask, verifyTask, writeTask } from '../protocol/build-tasks.ts';
import { isStale, STALE_AFTER_SECONDS, type TaskStatus } from '../catalog/task-status.ts';

export interface ReconcileInput {
  /** Queued or pending work untouched for this long is considered lost (default 15 minutes). */
  olderThanSeconds?: number;
  /** A running task with no heartbeat for this long is dead and re-driven (default STALE_AFTER_SECONDS). */
  staleAfterSeconds?: number;
}

export interface ReconcileResult {
  scansResent: string[];
  /** Target writes, and catalog snapshots appended to closed tapes. */
  writesResent: { tape: string; fileNumber: number; taskId: string }[];
  verifiesResent: { tape: string; fileNumber: number; taskId: string }[];
  checksResent: { tape: string; taskId: string }[];
}

export async function reconcile(ctx: JobContext, input: ReconcileInput): Promise<ReconcileResult> {
  const olderThanMs = (input.olderThanSeconds ?? 900) * 1000;
  const cutoff = ctx.now().getTime() - olderThanMs;
  const stale = (iso: string) => Date.parse(iso) <= cutoff;
  // A task is lost when it was never taken (queued, untouched for olderThan) or when its
  // agent stopped sending heartbeats while running it (dead, whatever its age).
  const lost = (s: TaskStatus | undefined, since: string) =>
    s?.state === 'running' ? isStale(s, ctx.now(), input.staleAfterSeconds ?? STALE_AFTER_SECONDS) : stale(s?.updatedAt ?? since);
  const result: ReconcileResult = { scansResent: [], writesResent: [], verifiesResent: [], checksResent: [] };
  const now = ctx.now().toISOString();

  for (const t of await ctx.catalog.listPendingScans()) {
    if (!t.scanId || !stale(t.updatedAt)) continue;
    await ctx.queues.sendTask(scanTask({ taskId: ctx.newId(), issuedAt: now }, t, t.scanId));
    result.scansResent.push(t.id);
  }

  for (const tape of await ctx.catalog.listTapes()) {
    // A catalog snapshot whose task was lost: the same task again (the agent reports one it finished).
    const sn = tape.snapshotInFlight;
    if (sn && lost(await ctx.tasks.get(sn.taskId), sn.startedAt)) {
      await ctx.queues.sendTask(snapshotTask({ taskId: sn.taskId, issuedAt: now }, tape.name, sn.fileNumber));
      result.writesResent.push({ tape: tape.name, fileNumber: sn.fileNumber, taskId: sn.taskId });
    }
    const w = tape.writeInFlight;
    if (!w) continue;
    const status = await ctx.tasks.get(w.taskId);
    if (!lost(status, w.startedAt)) continue;
    const tc = await ctx.catalog.getTargetCopies(w.targetId);
    const copy = tc?.copies.find((c) => c.pool === tape.pool);
    if (!tc || copy?.placement !== 'writing' || copy.tapeName !== tape.name || copy.fileNumber !== w.fileNumber) continue;
    const target = tc.target;
    // Same task id: whichever copy an agent runs first is the one the catalog accepts.
    await ctx.queues.sendTask(writeTask({ taskId: w.taskId, issuedAt: now }, target, tape.name, w.fileNumber, await usableRepairSource(ctx, copy.repairFrom)));
    result.writesResent.push({ tape: tape.name, fileNumber: w.fileNumber, taskId: w.taskId });
  }

  // Verify requests that never finished.
  for (const s of await ctx.tasks.listUnfinished('verify')) {
    if (!lost(s, s.updatedAt) || s.tapeName === undefined || s.fileNumber === undefined || s.targetId === undefined) continue;
    const task = verifyTask(
      { taskId: s.taskId, issuedAt: now },
      { tapeName: s.tapeName, fileNumber: s.fileNumber, targetId: s.targetId, updateCatalog: s.updateCatalog !== false },
    );
    await ctx.queues.sendTask(task);
    result.verifiesResent.push({ tape: s.tapeName, fileNumber: s.fileNumber, taskId: task.taskId });
  }

  // Tape checks (enable_tape) that never finished, while the tape is still disabled.
  for (const s of await ctx.tasks.listUnfinished('check-tape')) {
    if (!lost(s, s.updatedAt) || s.tapeName === undefined) continue;
    const tape = await ctx.catalog.getTape(s.tapeName);
    if (tape?.state !== 'disabled') continue;
    await ctx.queues.sendTask(checkTapeTask({ taskId: s.taskId, issuedAt: now }, tape.name, tape.nextFileNumber));
    result.checksResent.push({ tape: tape.name, taskId: s.taskId });
  }
  return result;
}
