/**
 * `rescan`: scan targets again, for a scan that failed (host down, key not yet trusted), a
 * target whose source changed after its scan (write_failed), or one whose tape file read back
 * bad (confirm_failed: that file keeps its own scan id, and goes into the target's history).
 * The target gets a new scan id. Targets with a good copy on tape are refused: their manifest
 * describes what is on tape.
 */
import { REASSIGNABLE_PLACEMENTS, targetStatus, withFileInHistory, type Target } from '../domain/target.ts';
import { IllegalTransitionError, NotFoundError, UsageError } from '../errors.ts';
import type { JobContext } from './context.ts';
import { scanTask } from '../protocol/build-tasks.ts';
import { prepareToLeaveBadFile } from './workflow.ts';

export interface RescanInput {
  targetIds?: string[];
  /** Every target whose scan failed or whose write found the source changed. */
  failed?: boolean;
}

export async function rescan(ctx: JobContext, input: RescanInput): Promise<{ rescanned: { id: string; path: string }[] }> {
  let targets: Target[];
  if (input.targetIds?.length) {
    targets = [];
    for (const id of input.targetIds) {
      const t = await ctx.catalog.getTarget(id);
      if (!t) throw new NotFoundError(`target ${id} does not exist; list targets with "targets".`);
      if (!REASSIGNABLE_PLACEMENTS.includes(t.placement)) {
        throw new IllegalTransitionError(
          `target ${id} is ${targetStatus(t)}; its manifest describes what is on tape and cannot be replaced. Nothing was rescanned.`,
        );
      }
      targets.push(t);
    }
    for (const t of targets) await prepareToLeaveBadFile(ctx, t);
  } else if (input.failed) {
    targets = (await ctx.catalog.listAllTargets()).filter((t) => t.scan === 'failed' || t.placement === 'write_failed');
  } else {
    throw new UsageError('name the targets to rescan, or use --failed for every failed scan and changed source.');
  }
  const out: { id: string; path: string }[] = [];
  for (const t of targets) {
    const now = ctx.now().toISOString();
    const scanId = ctx.newId();
    // Off its tape file (write failed, or read back bad): back to unassigned, to be assigned anew.
    const leaves = t.placement === 'write_failed' || t.placement === 'confirm_failed';
    const next: Target = {
      ...t,
      ...withFileInHistory(t, now),
      scan: 'pending',
      scanId,
      scanError: undefined,
      lastError: undefined,
      placement: leaves ? 'unassigned' : t.placement,
      ...(leaves ? { tapeName: undefined, fileNumber: undefined } : {}),
      updatedAt: now,
      version: t.version + 1,
    };
    if (!(await ctx.catalog.updateTarget(t, next))) continue;
    await ctx.queues.sendTask(scanTask({ taskId: ctx.newId(), issuedAt: now }, t, scanId));
    out.push({ id: t.id, path: t.path });
  }
  return { rescanned: out };
}
