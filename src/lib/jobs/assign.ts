/**
 * `assign [TAPE] [--target ID...]`: the unassigned copies of TAPE's pool go to TAPE (default:
 * each pool's online tape). One conditional change per copy; a refused one says why.
 */
import { startedAgain, type Copy, type TargetCopies } from '../domain/copies.ts';
import { approximateScanReason, REASSIGNABLE_PLACEMENTS, targetStatus, type Target } from '../domain/target.ts';
import type { Tape } from '../domain/tape.ts';
import { assertNotReadOnly } from '../domain/tape.ts';
import { ConflictError, IllegalTransitionError, NotFoundError, ValidationError } from '../errors.ts';
import { mapLimit } from '../concurrency.ts';
import type { JobContext } from './context.ts';
import { isWritable, onlineTapes, resolveTape } from './tapes.ts';

export interface AssignInput {
  tape?: string;
  /** Move these targets' copies (assigned elsewhere or unassigned) instead of every unassigned one. */
  targetIds?: string[];
}

export interface TapeAssignment {
  tape: string;
  pool: string;
  assigned: { id: string; path: string; from?: string; awaitingScan: boolean }[];
  refused: { id: string; reason: string }[];
}

/** The first tape's assignment; with no tape named and several pools online, the others too. */
export type AssignResult = TapeAssignment & { otherPools?: TapeAssignment[] };

/** Why a scanned target can never be written to `tape` (larger than the whole tape), or undefined. */
export function tooLargeFor(t: Target, tape: Tape): string | undefined {
  if (t.scan !== 'complete' || t.totalBytes === undefined || t.totalBytes <= tape.capacityBytes) return undefined;
  return (
    `too large for the tape: ${t.totalBytes} bytes of data, tape ${tape.name} holds ${tape.capacityBytes} bytes; files never span tapes, ` +
    'so split the target into smaller directories or assign it to a tape of larger capacity'
  );
}

/**
 * Before a copy whose read-back failed leaves its tape file (assign --target, rescan): no
 * verify of that file may still be running (it could confirm it after all, and the history
 * would be wrong). Then (stampFileScan) a file written before release 0.3 gets the scan id it
 * was written from.
 */
export async function assertNoVerifyRunning(ctx: JobContext, t: Target, c: Copy, exceptTaskId?: string): Promise<void> {
  if (c.placement !== 'confirm_failed' || !c.tapeName || c.fileNumber === undefined) return;
  const running = (await ctx.tasks.listUnfinished('verify')).find(
    (s) => s.tapeName === c.tapeName && s.fileNumber === c.fileNumber && s.taskId !== exceptTaskId,
  );
  if (running) {
    throw new ConflictError(
      `a verify of ${c.tapeName} file ${c.fileNumber} (target ${t.id}) is still under way (task ${running.taskId}); wait for it ("task ${running.taskId} --wait"), then archive the target again if it still fails. Nothing was changed.`,
    );
  }
}

/** A copy's tape file written before release 0.3 (no scan id) gets the scan of its target, before that target is scanned again. */
export async function stampFileScan(ctx: JobContext, t: Target, c: Copy): Promise<void> {
  if (!c.tapeName || c.fileNumber === undefined || !t.scanId) return;
  const file = await ctx.catalog.getTapeFile(c.tapeName, c.fileNumber);
  if (file && !file.scanId && file.targetId === t.id) await ctx.catalog.stampTapeFileScan(file, t.scanId, t.manifestPages ?? 0);
}

export async function assign(ctx: JobContext, input: AssignInput): Promise<AssignResult> {
  let tapes: Tape[];
  if (input.tape !== undefined) {
    tapes = [await resolveTape(ctx, input.tape)];
  } else {
    const online = await onlineTapes(ctx);
    // No tape online: resolveTape says so.
    tapes = online.length ? await Promise.all(online.map((o) => resolveTape(ctx, o.tapeName))) : [await resolveTape(ctx, undefined)];
  }
  for (const tape of tapes) {
    assertNotReadOnly(tape, `assign targets to tape ${tape.name}`);
    if (!isWritable(tape)) {
      throw new IllegalTransitionError(
        `tape ${tape.name} is ${tape.state}; targets can only be assigned to a tape that is registered or labelled. Open a new tape with "open_tape NAME"${tape.pool === 'default' ? '' : ` --pool ${tape.pool}`}, or name the tape. Nothing was assigned.`,
      );
    }
  }
  // Every tape's candidates are read and checked before anything changes.
  const plans: Plan[] = [];
  for (const tape of tapes) plans.push(await planFor(ctx, tape, input.targetIds, tapes.length > 1));
  for (const p of plans) for (const tc of p.leavingBadFiles) await assertNoVerifyRunning(ctx, tc.target, tc.copies[0]!);
  for (const p of plans) for (const tc of p.leavingBadFiles) await stampFileScan(ctx, tc.target, tc.copies[0]!);
  const results: TapeAssignment[] = [];
  for (const p of plans) results.push(await assignTo(ctx, p));
  const [head, ...rest] = results;
  return rest.length ? { ...head!, otherPools: rest } : head!;
}

interface Plan {
  tape: Tape;
  candidates: TargetCopies[];
  refused: TapeAssignment['refused'];
  /** Named copies that leave a file read back bad (checked and stamped first). */
  leavingBadFiles: TargetCopies[];
}

/** Candidates named by the operator: each must have a copy in the tape's pool that holds no good file. */
async function namedCopies(
  ctx: JobContext,
  tape: Tape,
  ids: string[],
  manyPools: boolean,
): Promise<{ found: TargetCopies[]; refused: TapeAssignment['refused'] }> {
  const found: TargetCopies[] = [];
  const refused: TapeAssignment['refused'] = [];
  for (const id of ids) {
    const tc = await ctx.catalog.getTargetCopies(id);
    if (!tc) throw new NotFoundError(`target ${id} does not exist; list targets with "targets".`);
    const c = tc.copies.find((x) => x.pool === tape.pool);
    if (!c) {
      if (manyPools) {
        refused.push({ id, reason: `no copy in pool ${tape.pool} (its copies: ${tc.copies.map((x) => x.pool).join(', ')})` });
        continue;
      }
      throw new ValidationError(
        `target ${id} has no copy in pool ${tape.pool}, the pool of tape ${tape.name} (its copies: ${tc.copies.map((x) => x.pool).join(', ') || 'none'}); name a tape of one of its pools, or add the pool with "set_copies ${id} ${[...tc.target.copies, tape.pool].join(',')}". Nothing was assigned.`,
      );
    }
    const status = targetStatus({ scan: tc.target.scan, placement: c.placement });
    if (c.placement === 'assigned' && c.tapeName === tape.name) refused.push({ id, reason: `already assigned to ${tape.name}` });
    else if (!REASSIGNABLE_PLACEMENTS.includes(c.placement)) {
      // Beside other pools this pool's copy is not taken; named for one tape, it is refused outright.
      if (manyPools) refused.push({ id, reason: `its copy in pool ${tape.pool} is ${status}${c.tapeName ? ` on ${c.tapeName}` : ''}` });
      else
        throw new IllegalTransitionError(
          `target ${id}'s copy in pool ${tape.pool} is ${status}${c.tapeName ? ` on ${c.tapeName}` : ''}; only copies with no good file on tape (not yet written, write failed, or confirm failed) can be assigned. Nothing was assigned.`,
        );
    } else found.push({ target: tc.target, copies: [c] });
  }
  return { found, refused };
}

async function planFor(ctx: JobContext, tape: Tape, ids: string[] | undefined, manyPools: boolean): Promise<Plan> {
  if (ids?.length) {
    const named = await namedCopies(ctx, tape, ids, manyPools);
    const leavingBadFiles = named.found.filter((tc) => tc.copies[0]!.placement === 'confirm_failed');
    return { tape, candidates: named.found, refused: named.refused, leavingBadFiles };
  }
  const copies = await ctx.catalog.listCopies({ placement: 'unassigned', pool: tape.pool });
  const targets = await mapLimit(copies, 16, (c) => ctx.catalog.getTarget(c.targetId));
  // A copy of a pool its target's policy no longer names (lowered with set_copies) is left alone.
  const wanted = copies.flatMap((c, i) => (targets[i]?.copies.includes(c.pool) ? [{ target: targets[i], copies: [c] }] : []));
  return { tape, candidates: wanted, refused: [], leavingBadFiles: [] };
}

async function assignTo(ctx: JobContext, { tape, candidates, refused }: Plan): Promise<TapeAssignment> {
  const result: TapeAssignment = { tape: tape.name, pool: tape.pool, assigned: [], refused: [...refused] };
  for (const { target: t, copies } of candidates) {
    const c = copies[0]!;
    const now = ctx.now().toISOString();
    const tooLarge = tooLargeFor(t, tape);
    if (tooLarge) {
      result.refused.push({ id: t.id, reason: tooLarge });
    } else if (t.scan === 'failed') {
      result.refused.push({
        id: t.id,
        reason: `not ready: its scan failed (${t.scanError ?? 'no reason recorded'}); fix the cause, then "rescan ${t.id}" (or "rescan --failed")`,
      });
    } else if (!t.copies.includes(c.pool)) {
      result.refused.push({ id: t.id, reason: `its copy policy (${t.copies.join(', ')}) no longer names pool ${c.pool}` });
    } else if (approximateScanReason(t)) {
      // The candidates carry only this pool's copy: whether a tapetown copy exists is in the catalog.
      const legacy = (await ctx.catalog.getTargetCopies(t.id))?.copies.some((x) => x.legacy) ?? false;
      result.refused.push({ id: t.id, reason: `not ready: ${approximateScanReason(t, legacy)}` });
    } else if (await ctx.catalog.assignCopy(c, startedAgain(c, now, tape.name))) {
      result.assigned.push({ id: t.id, path: t.path, ...(c.tapeName ? { from: c.tapeName } : {}), awaitingScan: t.scan !== 'complete' });
    } else {
      result.refused.push({ id: t.id, reason: 'changed by another job at the same time; run assign again' });
    }
  }
  return result;
}
