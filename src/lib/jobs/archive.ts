/**
 * `archive [--pool P]`: the next assigned copy of the online tape of P gets the tape's next
 * file number and a write task is enqueued (default: every pool with an online tape, one write
 * each). At most one write is in flight per tape; the start is one transaction.
 */
import { ConditionFailed } from '../catalog/catalog.ts';
import { DEFAULT_POOL, type Copy } from '../domain/copies.ts';
import type { Target } from '../domain/target.ts';
import type { Tape } from '../domain/tape.ts';
import { ConflictError, IllegalTransitionError, isArchiveError, OnlineTapeChangedError } from '../errors.ts';
import { writeTask } from '../protocol/build-tasks.ts';
import { tooLargeFor } from './assign.ts';
import type { JobContext } from './context.ts';
import { usableRepairSource } from './repair.ts';
import { isWritable, onlineTapes, resolveTape } from './tapes.ts';

export interface ArchiveInput {
  /** Only while this is (still) the online tape of its pool; archive --all passes the tape it began on. */
  tape?: string;
  pool?: string;
}

export type PoolArchive = (
  | { status: 'started'; tape: string; pool: string; fileNumber: number; targetId: string; path: string; taskId: string; totalBytes: number }
  | { status: 'idle'; tape: string; pool: string; message: string }
  /** Only beside other pools (no pool named): this pool's refusal, while the others went on. */
  | { status: 'refused'; tape?: string; pool: string; code: string; message: string }
) & {
  /** Assigned copies that were released because they cannot fit on the tape at all. */
  released?: { id: string; reason: string }[];
};

/** The first pool's archive; with no pool named and several pools online, the others too. */
export type ArchiveResult = PoolArchive & { otherPools?: PoolArchive[] };

export async function archive(ctx: JobContext, input: ArchiveInput = {}): Promise<ArchiveResult> {
  if (input.tape !== undefined || input.pool !== undefined) {
    const pool = input.tape !== undefined ? (await resolveTape(ctx, input.tape, input.pool)).pool : input.pool!;
    return archivePool(ctx, pool, input.tape);
  }
  const online = await onlineTapes(ctx);
  if (online.length <= 1) return archivePool(ctx, online[0]?.pool ?? (await resolveTape(ctx, undefined)).pool);
  // One write per pool; a pool that cannot write does not stop the others.
  const results: PoolArchive[] = [];
  for (const { pool, tapeName } of online) {
    try {
      results.push(await archivePool(ctx, pool));
    } catch (e) {
      if (!isArchiveError(e)) throw e;
      results.push({ status: 'refused', tape: tapeName, pool, code: e.code, message: e.message });
    }
  }
  const [head, ...rest] = results;
  return { ...head!, otherPools: rest };
}

async function archivePool(ctx: JobContext, pool: string, expected?: string): Promise<PoolArchive> {
  const released: { id: string; reason: string }[] = [];
  const tried = new Set<string>();
  const withReleased = <R extends object>(r: R) => (released.length ? { ...r, released } : r);
  for (let attempt = 0, rounds = 0; ; attempt++, rounds++) {
    if (rounds > 1000) throw new ConflictError('archive kept finding targets that do not fit on the tape and could not release them; run archive again.');
    const tape = await resolveTape(ctx, undefined, pool);
    if (expected !== undefined && tape.name !== expected) {
      throw new OnlineTapeChangedError(
        `the online tape${pool === DEFAULT_POOL ? '' : ` of pool ${pool}`} is now ${tape.name}, not ${expected} (open_tape ran elsewhere); nothing was started. Targets assigned to ${expected} stay assigned: "open_tape ${expected}" and run archive again.`,
        { expected, online: tape.name },
      );
    }
    if (!isWritable(tape)) {
      throw new IllegalTransitionError(
        `the online tape ${tape.name} is ${tape.state}; nothing more can be written to it. Close it ("close_tape ${tape.name}") and open the next tape${pool === DEFAULT_POOL ? '' : ` of pool ${pool}`}.`,
      );
    }
    if (tape.writeInFlight) throw writeInFlightError(tape);
    const ready = await nextReadyCopy(ctx, tape, tried);
    if ('idle' in ready) return withReleased({ status: 'idle' as const, tape: tape.name, pool, message: ready.idle });
    const { target, copy } = ready;
    const now = ctx.now().toISOString();
    const reason = tooLargeFor(target, tape);
    if (reason) {
      // Assigned before its scan was known: it can never be written here. Released with the
      // reason (nothing is written, the tape is not marked full), and the next copy is taken.
      tried.add(target.id); // the placement index may still list it for a moment
      const next: Copy = { ...copy, placement: 'unassigned', tapeName: undefined, lastError: reason, updatedAt: now, version: copy.version + 1 };
      if (await ctx.catalog.updateCopy(copy, next)) released.push({ id: target.id, reason });
      attempt--;
      continue;
    }
    const taskId = ctx.newId();
    const fileNumber = tape.nextFileNumber;
    const writing: Copy = { ...copy, placement: 'writing', fileNumber, updatedAt: now, version: copy.version + 1 };
    try {
      const status = ctx.tasks.newItem({
        taskId,
        kind: 'write',
        tapeName: tape.name,
        fileNumber,
        targetId: target.id,
        bytesTotal: target.totalBytes ?? 0,
        createdAt: now,
      });
      await ctx.catalog.startWrite(tape, target, copy, writing, { fileNumber, targetId: target.id, taskId, startedAt: now }, now, [status]);
    } catch (e) {
      if (!(e instanceof ConditionFailed)) throw e;
      // Lost a race (another archive, an open/close, a reassign, a rescan). Re-read and decide
      // again; a second write is never started while one is in flight.
      if (attempt < 3) continue;
      throw new ConflictError(`tape ${tape.name} or target ${target.id} kept changing while archive ran; nothing was started. Run archive again.`);
    }
    await ctx.queues.sendTask(writeTask({ taskId, issuedAt: now }, target, tape.name, fileNumber, await usableRepairSource(ctx, copy.repairFrom)));
    return withReleased({
      status: 'started' as const,
      tape: tape.name,
      pool,
      fileNumber,
      targetId: target.id,
      path: target.path,
      taskId,
      totalBytes: target.totalBytes ?? 0,
    });
  }
}

function writeInFlightError(tape: Tape): ConflictError {
  const w = tape.writeInFlight!;
  return new ConflictError(
    `tape ${tape.name} already has a write in flight (file ${w.fileNumber}, target ${w.targetId}, since ${w.startedAt}); at most one write runs per tape. Wait for it to finish ("targets --state writing") and run archive again.`,
    { writeInFlight: w },
  );
}

/** The first copy assigned to `tape` (import order) whose target is scanned. */
async function nextReadyCopy(ctx: JobContext, tape: Tape, skip: ReadonlySet<string>): Promise<{ target: Target; copy: Copy } | { idle: string }> {
  const assigned = (await ctx.catalog.listCopies({ placement: 'assigned', pool: tape.pool, tapeName: tape.name })).filter((c) => !skip.has(c.targetId));
  let failed = 0;
  for (const copy of assigned) {
    const target = await ctx.catalog.getTarget(copy.targetId);
    if (target?.scan === 'complete') return { target, copy };
    if (target?.scan === 'failed') failed++;
  }
  if (assigned.length === 0) return { idle: `no targets are assigned to ${tape.name}; nothing to archive. Assign targets with "assign".` };
  return {
    idle: `${assigned.length} target(s) assigned to ${tape.name}, none scanned yet (${failed} scan failed); archive takes only scanned targets. Wait for the scans or check "targets --state assigned".`,
  };
}
