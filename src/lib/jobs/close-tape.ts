/**
 * `close_tape [TAPE]`: the tape is closed and offline, and the copies assigned to it but not
 * yet written are released for the next tape of its pool. Also the release of a removed
 * tape's copies (remove_tape).
 */
import { ConditionFailed } from '../catalog/catalog.ts';
import type { Copy } from '../domain/copies.ts';
import { assertNotReadOnly, canBeClosed, SNAPSHOT_ON_CLOSE_STATES, type Tape } from '../domain/tape.ts';
import { ConflictError, errorMessage, IllegalTransitionError } from '../errors.ts';
import type { JobContext } from './context.ts';
import { startTapeSnapshot } from './snapshot-tape.ts';
import { resolveTape } from './tapes.ts';

/** Assigned copies back to unassigned (their tape is closed or removed); the target ids of those released. */
export async function releaseAssigned(ctx: JobContext, copies: Copy[]): Promise<string[]> {
  const released: string[] = [];
  for (const c of copies) {
    const next: Copy = {
      ...c,
      placement: 'unassigned',
      tapeName: undefined,
      fileNumber: undefined,
      updatedAt: ctx.now().toISOString(),
      version: c.version + 1,
    };
    if (await ctx.catalog.updateCopy(c, next)) released.push(c.targetId);
  }
  return released;
}

/** The copies assigned to `tape` and not yet written. */
export const assignedTo = (ctx: JobContext, tape: Pick<Tape, 'name' | 'pool'>) =>
  ctx.catalog.listCopies({ placement: 'assigned', pool: tape.pool, tapeName: tape.name });

export interface ClosePlan {
  tape: Tape;
  warnings: string[];
  toRelease: Copy[];
  alreadyClosed: boolean;
}

/** What close_tape would do, and why an operator might hesitate. Changes nothing. */
export async function planCloseTape(ctx: JobContext, tapeName: string | undefined, pool?: string): Promise<ClosePlan> {
  const tape = await resolveTape(ctx, tapeName, pool);
  if (tape.writeInFlight) {
    throw new ConflictError(`tape ${tape.name} has a write in flight (file ${tape.writeInFlight.fileNumber}); wait for it to finish before closing.`);
  }
  const toRelease = await assignedTo(ctx, tape);
  const warnings: string[] = [];
  if (tape.state === 'closed') return { tape, warnings, toRelease, alreadyClosed: true };
  assertNotReadOnly(tape, `close tape ${tape.name} here (an adopted tape is closed already, or broken; it is never written)`);
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
  /** The catalog snapshot appended to the tape as it closed (docs/tape-format.md); run-job waits for it. */
  snapshot?: { taskId: string; fileNumber: number };
  message: string;
}

/** `close_tape [TAPE]`: closed, offline, and every assigned-but-not-archived copy released. */
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
  // A closed tape that holds targets also holds the catalog as it was when it closed.
  let snapshot: CloseResult['snapshot'];
  const warnings = [...plan.warnings];
  if (!plan.alreadyClosed && tape.nextFileNumber >= 2 && !SNAPSHOT_ON_CLOSE_STATES.includes(tape.state)) {
    // A tape set aside (disabled after an error, broken) is not written to unasked.
    warnings.push(
      `no catalog snapshot was appended to ${tape.name}: it was ${tape.state}${tape.reason ? ` (${tape.reason})` : ''}. "snapshot_catalog --tape ${tape.name}" writes one if the tape is sound.`,
    );
  } else if (!plan.alreadyClosed && tape.nextFileNumber >= 2) {
    try {
      const s = await startTapeSnapshot(ctx, { ...tape, state: 'closed' });
      snapshot = { taskId: s.taskId, fileNumber: s.fileNumber };
    } catch (e) {
      warnings.push(`no catalog snapshot was started on ${tape.name} (${errorMessage(e)}); "snapshot_catalog --tape ${tape.name}" writes one.`);
    }
  }
  const message = plan.alreadyClosed
    ? `tape ${tape.name} was already closed; released ${released.length} leftover target(s).`
    : `tape ${tape.name} closed and offline; released ${released.length} target(s) for the next tape.` +
      (snapshot ? ` The catalog is being appended to it as file ${snapshot.fileNumber} (task ${snapshot.taskId}).` : '');
  return { tape: tape.name, closed: !plan.alreadyClosed, released, warnings, ...(snapshot ? { snapshot } : {}), message };
}
