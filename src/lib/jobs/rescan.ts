/**
 * `rescan`: scan targets again, for a scan that failed (host down, key not yet trusted), a
 * copy whose write found the source changed (write_failed), or one whose tape file read back
 * bad (confirm_failed: that file keeps its own scan id, and goes into the copy's history).
 * The target gets a new scan id; its copies in write_failed or confirm_failed go back to
 * unassigned. Refused while a copy is being written, and when every copy holds a good file
 * (their manifest describes what is on tape). Copies already on tape keep their files, which
 * record the scan they were written from and are verified against it. The new scan leaves out
 * the targets inside this one (its excludes, domain/nesting.ts), as the catalog has them now.
 */
import { GAVE_UP_FILE_PLACEMENTS, KEEPS_FILE_PLACEMENTS } from '../domain/target.ts';
import { overallStatus, startedAgain, type TargetCopies } from '../domain/copies.ts';
import { ConflictError, IllegalTransitionError, NotFoundError, UsageError } from '../errors.ts';
import type { JobContext } from './context.ts';
import { copyUnchangedCheck, copyUpdateItem, targetUpdateItem } from '../catalog/requests.ts';
import { ConditionFailed } from '../catalog/catalog.ts';
import { scanTask } from '../protocol/build-tasks.ts';
import { assertNoVerifyRunning, stampFileScan } from './assign.ts';
import { Nesting } from '../domain/nesting.ts';

export interface RescanInput {
  targetIds?: string[];
  /** Every target whose scan failed or one of whose writes found the source changed. */
  failed?: boolean;
}

export async function rescan(ctx: JobContext, input: RescanInput): Promise<{ rescanned: { id: string; path: string }[] }> {
  let targets: TargetCopies[];
  let all: TargetCopies[] | undefined;
  if (input.targetIds?.length) {
    targets = [];
    for (const id of input.targetIds) {
      const tc = await ctx.catalog.getTargetCopies(id);
      if (!tc) throw new NotFoundError(`target ${id} does not exist; list targets with "targets".`);
      const refusal = rescanRefusal(tc);
      if (refusal) throw new IllegalTransitionError(`${refusal} Nothing was rescanned.`);
      targets.push(tc);
    }
  } else if (input.failed) {
    all = await ctx.catalog.listAllTargetCopies();
    targets = all.filter(
      (tc) => tc.target.scan === 'failed' || (tc.copies.some((c) => c.placement === 'write_failed') && !tc.copies.some((c) => c.placement === 'writing')),
    );
  } else {
    throw new UsageError('name the targets to rescan, or use --failed for every failed scan and changed source.');
  }
  // Before any change: no verify of a file being given up is still running, and every file a
  // copy keeps or leaves names the scan it was written from (files from before release 0.3
  // name none), so the new scan never changes what those files are checked against.
  for (const tc of targets) for (const c of tc.copies) await assertNoVerifyRunning(ctx, tc.target, c);
  for (const tc of targets)
    for (const c of tc.copies.filter((x) => x.placement === 'confirm_failed' || KEEPS_FILE_PLACEMENTS.includes(x.placement)))
      await stampFileScan(ctx, tc.target, c);
  // The new scans leave out the targets inside each one as the catalog has them now (domain/nesting.ts).
  const nesting = new Nesting(all ? all.map((tc) => tc.target) : await ctx.catalog.listAllTargets());
  const out: { id: string; path: string }[] = [];
  for (const tc of targets) {
    // Changed meanwhile: not rescanned, not listed.
    if (await startRescan(ctx, tc, nesting.excludesOf(tc.target))) out.push({ id: tc.target.id, path: tc.target.path });
  }
  return { rescanned: out };
}

/** Why `tc` cannot be scanned again now (a copy is being written, or every copy holds a good file); undefined when it can. */
export function rescanRefusal(tc: TargetCopies): string | undefined {
  const id = tc.target.id;
  const writing = tc.copies.find((c) => c.placement === 'writing');
  if (writing) return `target ${id} is being written to ${writing.tapeName} file ${writing.fileNumber}; rescan it once that write has finished.`;
  if (tc.copies.length && tc.copies.every((c) => KEEPS_FILE_PLACEMENTS.includes(c.placement)))
    return `target ${id} is ${overallStatus(tc)}; its manifest describes what is on tape and cannot be replaced.`;
  return undefined;
}

/** Before a new scan of one target (import's rescan of a parent): the checks and stamps rescan does (ConflictError while a verify runs). */
export async function prepareRescan(ctx: JobContext, tc: TargetCopies): Promise<void> {
  for (const c of tc.copies) await assertNoVerifyRunning(ctx, tc.target, c);
  for (const c of tc.copies.filter((x) => x.placement === 'confirm_failed' || KEEPS_FILE_PLACEMENTS.includes(x.placement)))
    await stampFileScan(ctx, tc.target, c);
}

/**
 * A new scan of `tc`, leaving out `excludes`, in one transaction with its copies as read (the
 * checks and stamps above are the caller's); false when the target or a copy changed meanwhile.
 */
export async function startRescan(ctx: JobContext, { target: t, copies }: TargetCopies, excludes: string[]): Promise<boolean> {
  const table = ctx.catalog.tableName;
  const now = ctx.now().toISOString();
  const scanId = ctx.newId();
  const next = {
    ...t,
    scan: 'pending' as const,
    scanId,
    scanError: undefined,
    excludes: excludes.length ? excludes : undefined,
    updatedAt: now,
    version: t.version + 1,
  };
  // Off their tape files (write failed, or read back bad): back to unassigned, to be assigned anew.
  const leaving = copies.filter((c) => GAVE_UP_FILE_PLACEMENTS.includes(c.placement));
  try {
    await ctx.catalog.transact([
      targetUpdateItem(table, t, next),
      // The copies that keep their files stay as read: an archive that started one meanwhile fails this.
      ...copies.filter((c) => !leaving.includes(c)).map((c) => copyUnchangedCheck(table, c)),
      ...leaving.map((c) => copyUpdateItem(table, c, startedAgain(c, now))),
    ]);
  } catch (e) {
    if (e instanceof ConditionFailed || e instanceof ConflictError) return false;
    throw e;
  }
  await ctx.queues.sendTask(scanTask({ taskId: ctx.newId(), issuedAt: now }, next, scanId));
  return true;
}
