/**
 * The seed's tape jobs: assign, archive, confirm, close_tape. Each reads the catalog, makes
 * one conditional change, and enqueues the task the agent runs; a refused change leaves
 * everything as it was and says why.
 */
import { ConditionFailed } from '../catalog/catalog.ts';
import { REASSIGNABLE_PLACEMENTS, targetStatus, withFileInHistory, type Target } from '../domain/target.ts';
import { canBeClosed, type Tape } from '../domain/tape.ts';
import type { TapeFile } from '../domain/tape-file.ts';
import { ConflictError, IllegalTransitionError, NotFoundError, OnlineTapeChangedError, UsageError } from '../errors.ts';
import type { JobContext } from './context.ts';
import { isWritable, resolveTape } from './tapes.ts';
import { verifyTask, writeTask } from '../protocol/build-tasks.ts';

// ---- assign ---------------------------------------------------------------

export interface AssignInput {
  tape?: string;
  /** Move these targets (assigned elsewhere or unassigned) instead of every unassigned one. */
  targetIds?: string[];
}

export interface AssignResult {
  tape: string;
  assigned: { id: string; path: string; from?: string; awaitingScan: boolean }[];
  refused: { id: string; reason: string }[];
}

/** Why a scanned target can never be written to `tape` (larger than the whole tape), or undefined. */
export function tooLargeFor(t: Target, tape: Tape): string | undefined {
  if (t.scan !== 'complete' || t.totalBytes === undefined || t.totalBytes <= tape.capacityBytes) return undefined;
  return (
    `too large for the tape: ${t.totalBytes} bytes of data, tape ${tape.name} holds ${tape.capacityBytes} bytes; files never span tapes, ` +
    'so split the target into smaller directories or assign it to a tape of larger capacity'
  );
}

function assignedTo(t: Target, tape: string, now: string): Target {
  return {
    ...t,
    ...withFileInHistory(t, now),
    placement: 'assigned',
    tapeName: tape,
    fileNumber: undefined,
    lastError: undefined,
    updatedAt: now,
    version: t.version + 1,
  };
}

/**
 * Before a target whose read-back failed leaves its tape file (assign --target, rescan): no
 * verify of that file may still be running (it could confirm it after all, and the history
 * would be wrong), and a file written before release 0.3 gets the scan id it was written from.
 */
export async function prepareToLeaveBadFile(ctx: JobContext, t: Target): Promise<void> {
  if (t.placement !== 'confirm_failed' || !t.tapeName || t.fileNumber === undefined) return;
  const running = (await ctx.tasks.listUnfinished('verify')).find((s) => s.tapeName === t.tapeName && s.fileNumber === t.fileNumber);
  if (running) {
    throw new ConflictError(
      `a verify of ${t.tapeName} file ${t.fileNumber} (target ${t.id}) is still under way (task ${running.taskId}); wait for it ("task ${running.taskId} --wait"), then archive the target again if it still fails. Nothing was changed.`,
    );
  }
  const file = await ctx.catalog.getTapeFile(t.tapeName, t.fileNumber);
  if (file && !file.scanId && t.scanId && file.targetId === t.id) await ctx.catalog.stampTapeFileScan(file, t.scanId, t.manifestPages ?? 0);
}

/** `assign [TAPE]`: every unassigned target goes to TAPE (default: the online tape). */
export async function assign(ctx: JobContext, input: AssignInput): Promise<AssignResult> {
  const tape = await resolveTape(ctx, input.tape);
  if (!isWritable(tape)) {
    throw new IllegalTransitionError(
      `tape ${tape.name} is ${tape.state}; targets can only be assigned to a tape that is registered or labelled. Open a new tape with "open_tape NAME".`,
    );
  }
  const result: AssignResult = { tape: tape.name, assigned: [], refused: [] };
  let candidates: Target[];
  if (input.targetIds?.length) {
    candidates = [];
    for (const id of input.targetIds) {
      const t = await ctx.catalog.getTarget(id);
      if (!t) throw new NotFoundError(`target ${id} does not exist; list targets with "targets".`);
      if (t.placement === 'assigned' && t.tapeName === tape.name) {
        result.refused.push({ id, reason: `already assigned to ${tape.name}` });
      } else if (!REASSIGNABLE_PLACEMENTS.includes(t.placement)) {
        throw new IllegalTransitionError(
          `target ${id} is ${targetStatus(t)}${t.tapeName ? ` on ${t.tapeName}` : ''}; only targets with no good copy on tape (not yet written, write failed, or confirm failed) can be assigned. Nothing was assigned.`,
        );
      } else {
        candidates.push(t);
      }
    }
    for (const t of candidates) await prepareToLeaveBadFile(ctx, t);
  } else {
    candidates = await ctx.catalog.listTargetsByPlacement('unassigned');
  }
  for (const t of candidates) {
    const now = ctx.now().toISOString();
    const tooLarge = tooLargeFor(t, tape);
    if (tooLarge) {
      result.refused.push({ id: t.id, reason: tooLarge });
      continue;
    }
    if (t.scan === 'failed') {
      result.refused.push({
        id: t.id,
        reason: `not ready: its scan failed (${t.scanError ?? 'no reason recorded'}); fix the cause, then "rescan ${t.id}" (or "rescan --failed")`,
      });
      continue;
    }
    if (await ctx.catalog.updateTarget(t, assignedTo(t, tape.name, now))) {
      result.assigned.push({ id: t.id, path: t.path, ...(t.tapeName ? { from: t.tapeName } : {}), awaitingScan: t.scan !== 'complete' });
    } else {
      result.refused.push({ id: t.id, reason: 'changed by another job at the same time; run assign again' });
    }
  }
  return result;
}

// ---- archive --------------------------------------------------------------

export type ArchiveResult = (
  | { status: 'started'; tape: string; fileNumber: number; targetId: string; path: string; taskId: string; totalBytes: number }
  | { status: 'idle'; tape: string; message: string }
) & {
  /** Assigned targets that were released because they cannot fit on the tape at all. */
  released?: { id: string; reason: string }[];
};

/**
 * `archive`: the next assigned target of the online tape gets the next file number; a write
 * task is enqueued. With `tape`, only while that tape is the online one (OnlineTapeChanged).
 */
export async function archive(ctx: JobContext, input: { tape?: string } = {}): Promise<ArchiveResult> {
  const released: { id: string; reason: string }[] = [];
  const tried = new Set<string>();
  const withReleased = <R extends object>(r: R) => (released.length ? { ...r, released } : r);
  for (let attempt = 0, rounds = 0; ; attempt++, rounds++) {
    if (rounds > 1000) throw new ConflictError('archive kept finding targets that do not fit on the tape and could not release them; run archive again.');
    const tape = await resolveTape(ctx, undefined);
    if (input.tape !== undefined && tape.name !== input.tape) {
      throw new OnlineTapeChangedError(
        `the online tape is now ${tape.name}, not ${input.tape} (open_tape ran elsewhere); nothing was started. Targets assigned to ${input.tape} stay assigned: "open_tape ${input.tape}" and run archive again.`,
        { expected: input.tape, online: tape.name },
      );
    }
    if (!isWritable(tape)) {
      throw new IllegalTransitionError(
        `the online tape ${tape.name} is ${tape.state}; nothing more can be written to it. Close it ("close_tape") and open the next tape.`,
      );
    }
    if (tape.writeInFlight) throw writeInFlightError(tape);
    const ready = await nextReadyTarget(ctx, tape, tried);
    if ('idle' in ready) return withReleased({ status: 'idle' as const, tape: tape.name, message: ready.idle });
    const reason = tooLargeFor(ready.target, tape);
    if (reason) {
      // Assigned before its scan was known: it can never be written here. Released with the
      // reason (nothing is written, the tape is not marked full), and the next target is taken.
      const t = ready.target;
      const now = ctx.now().toISOString();
      tried.add(t.id); // the placement index may still list it for a moment
      if (
        await ctx.catalog.updateTarget(t, { ...t, placement: 'unassigned', tapeName: undefined, lastError: reason, updatedAt: now, version: t.version + 1 })
      ) {
        released.push({ id: t.id, reason });
      }
      attempt--;
      continue;
    }
    const target = ready.target;
    const now = ctx.now().toISOString();
    const taskId = ctx.newId();
    const fileNumber = tape.nextFileNumber;
    const writing: Target = { ...target, placement: 'writing', fileNumber, updatedAt: now, version: target.version + 1 };
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
      await ctx.catalog.startWrite(tape, target, writing, { fileNumber, targetId: target.id, taskId, startedAt: now }, now, [status]);
    } catch (e) {
      if (!(e instanceof ConditionFailed)) throw e;
      // Lost a race (another archive, an open/close, a reassign). Re-read and decide again;
      // a second write is never started while one is in flight.
      if (attempt < 3) continue;
      throw new ConflictError(`tape ${tape.name} or target ${target.id} kept changing while archive ran; nothing was started. Run archive again.`);
    }
    await ctx.queues.sendTask(writeTask({ taskId, issuedAt: now }, target, tape.name, fileNumber));
    return withReleased({
      status: 'started' as const,
      tape: tape.name,
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

async function nextReadyTarget(ctx: JobContext, tape: Tape, skip: ReadonlySet<string> = new Set()): Promise<{ target: Target } | { idle: string }> {
  const assigned = (await ctx.catalog.listTargetsByPlacement('assigned', tape.name)).filter((t) => !skip.has(t.id));
  const ready = assigned.find((t) => t.scan === 'complete');
  if (ready) return { target: ready };
  if (assigned.length === 0) return { idle: `no targets are assigned to ${tape.name}; nothing to archive. Assign targets with "assign".` };
  const failed = assigned.filter((t) => t.scan === 'failed').length;
  return {
    idle: `${assigned.length} target(s) assigned to ${tape.name}, none scanned yet (${failed} scan failed); archive takes only scanned targets. Wait for the scans or check "targets --state assigned".`,
  };
}

// ---- confirm --------------------------------------------------------------

export interface ConfirmInput {
  /** A file number on the tape, or "next" for the lowest unconfirmed one. */
  which: string;
  tape?: string;
  retry?: boolean;
  noDbUpdate?: boolean;
}

export type ConfirmResult =
  | { status: 'requested'; tape: string; fileNumber: number; targetId: string; taskId: string; updateCatalog: boolean }
  | { status: 'idle'; tape: string; message: string };

/** `confirm [id|next] [--retry] [--no-db-update]`: requests a read-back verify of a tape file. */
export async function confirm(ctx: JobContext, input: ConfirmInput): Promise<ConfirmResult> {
  const which = input.which;
  if (which !== 'next' && !/^\d+$/.test(which)) {
    throw new UsageError(`"${which}" is not a file number; give the file number on the tape (1, 2, ...) or "next".`);
  }
  const tape = await resolveTape(ctx, input.tape);
  let file: TapeFile | undefined;
  if (which === 'next') {
    const files = await ctx.catalog.listTapeFiles(tape.name);
    // A file whose verify is already requested is not "next": asking three times verifies three files, not one file three times.
    const requested = new Set((await ctx.tasks.listUnfinished('verify')).filter((s) => s.tapeName === tape.name).map((s) => s.fileNumber));
    file = files.find((f) => f.state === 'archived' && !requested.has(f.fileNumber));
    if (!file) {
      const waiting = files.filter((f) => f.state === 'archived').length;
      return {
        status: 'idle',
        tape: tape.name,
        message: waiting
          ? `every archived file on ${tape.name} already has a verify requested (${waiting} waiting for the agent); nothing more to confirm now.`
          : `every archived file on ${tape.name} is confirmed or failed; nothing to confirm. Use "confirm N --retry" to verify a file again.`,
      };
    }
  } else {
    const n = Number(which);
    if (n < 1) throw new UsageError('file 0 is the tape label; targets start at file 1.');
    file = await ctx.catalog.getTapeFile(tape.name, n);
    if (!file)
      throw new NotFoundError(`tape ${tape.name} has no file ${n} (next file number is ${tape.nextFileNumber}); list with "targets --tape ${tape.name}".`);
  }
  if (file.state === 'writing') {
    throw new IllegalTransitionError(`file ${file.fileNumber} on ${tape.name} is still being written; confirm it after the write finishes.`);
  }
  if ((file.state === 'confirmed' || file.state === 'confirm_failed') && !input.retry) {
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
  return { status: 'requested', tape: tape.name, fileNumber: file.fileNumber, targetId: file.targetId, taskId: task.taskId, updateCatalog: task.updateCatalog };
}

// ---- close_tape -----------------------------------------------------------

/** Assigned targets back to unassigned (their tape is closed or removed); the ids of those released. */
export async function releaseAssigned(ctx: JobContext, targets: Target[]): Promise<string[]> {
  const released: string[] = [];
  for (const t of targets) {
    const next: Target = {
      ...t,
      placement: 'unassigned',
      tapeName: undefined,
      fileNumber: undefined,
      updatedAt: ctx.now().toISOString(),
      version: t.version + 1,
    };
    if (await ctx.catalog.updateTarget(t, next)) released.push(t.id);
  }
  return released;
}

export interface ClosePlan {
  tape: Tape;
  warnings: string[];
  toRelease: Target[];
  alreadyClosed: boolean;
}

/** What close_tape would do, and why an operator might hesitate. Changes nothing. */
export async function planCloseTape(ctx: JobContext, tapeName: string | undefined): Promise<ClosePlan> {
  const tape = await resolveTape(ctx, tapeName);
  if (tape.writeInFlight) {
    throw new ConflictError(`tape ${tape.name} has a write in flight (file ${tape.writeInFlight.fileNumber}); wait for it to finish before closing.`);
  }
  const toRelease = await ctx.catalog.listTargetsByPlacement('assigned', tape.name);
  const warnings: string[] = [];
  if (tape.state === 'closed') return { tape, warnings, toRelease, alreadyClosed: true };
  if (tape.state !== 'full') {
    const pct = tape.capacityBytes ? ((100 * tape.bytesUsed) / tape.capacityBytes).toFixed(1) : '0';
    warnings.push(`tape ${tape.name} is not full (${pct}% used); nothing more can be written to it once closed.`);
  }
  const files = await ctx.catalog.listTapeFiles(tape.name);
  const unconfirmed = files.filter((f) => f.state !== 'confirmed');
  if (unconfirmed.length) {
    warnings.push(
      `${unconfirmed.length} file(s) on ${tape.name} are not confirmed (${unconfirmed
        .slice(0, 10)
        .map((f) => `${f.fileNumber}:${f.state}`)
        .join(', ')}${unconfirmed.length > 10 ? ', ...' : ''}); run "confirm next" first.`,
    );
  }
  if (toRelease.length) warnings.push(`${toRelease.length} assigned target(s) not yet archived will be released for the next tape.`);
  return { tape, warnings, toRelease, alreadyClosed: false };
}

export interface CloseResult {
  tape: string;
  closed: boolean;
  released: string[];
  warnings: string[];
  message: string;
}

/** `close_tape [TAPE]`: closed, offline, and every assigned-but-not-archived target released. */
export async function closeTape(ctx: JobContext, plan: ClosePlan): Promise<CloseResult> {
  const { tape } = plan;
  if (!plan.alreadyClosed) {
    if (!canBeClosed(tape.state)) {
      throw new IllegalTransitionError(`tape ${tape.name} is ${tape.state} and cannot be closed.`);
    }
    try {
      await ctx.catalog.closeTape(tape, ctx.now().toISOString());
    } catch (e) {
      if (e instanceof ConditionFailed) {
        throw new ConflictError(
          `tape ${tape.name} changed while closing (a write started, or another close ran); nothing was changed. Check "tapes" and try again.`,
        );
      }
      throw e;
    }
  }
  // Closing first means no archive can take these targets any more; releasing them after
  // is safe to repeat: close_tape on a closed tape releases whatever is still assigned.
  const released = await releaseAssigned(ctx, plan.toRelease);
  const message = plan.alreadyClosed
    ? `tape ${tape.name} was already closed; released ${released.length} leftover target(s).`
    : `tape ${tape.name} closed and offline; released ${released.length} target(s) for the next tape.`;
  return { tape: tape.name, closed: !plan.alreadyClosed, released, warnings: plan.warnings, message };
}
