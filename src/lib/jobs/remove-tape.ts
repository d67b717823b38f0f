/**
 * `remove_tape NAME`: takes back a registration that holds nothing (a mistyped open_tape, a
 * cartridge never used). A tape with any file written, or a write in flight, is refused: its
 * record is the only map of what is on it. Targets assigned to it are released.
 */
import { ConditionFailed } from '../catalog/catalog.ts';
import { assertNotReadOnly, type Tape } from '../domain/tape.ts';
import { ConflictError, IllegalTransitionError, NotFoundError } from '../errors.ts';
import type { JobContext } from './context.ts';
import { resolveTape } from './tapes.ts';
import { assignedTo, releaseAssigned } from './close-tape.ts';

export interface RemoveTapeResult {
  tape: string;
  wasOnline: boolean;
  released: string[];
  message: string;
}

export async function removeTape(ctx: JobContext, input: { name: string }): Promise<RemoveTapeResult> {
  let tape: Tape;
  try {
    tape = await resolveTape(ctx, input.name);
  } catch (e) {
    // Removed already, but stopped before every target was released: release the rest now
    // (the copy index finds a tape's copies by the tape's name alone).
    const left = e instanceof NotFoundError ? await ctx.catalog.listCopiesOnTapeName('assigned', input.name) : [];
    if (!left.length) throw e;
    const released = await releaseAssigned(ctx, left);
    return {
      tape: input.name,
      wasOnline: false,
      released,
      message: `tape ${input.name} was already removed; released ${released.length} target(s) still assigned to it.`,
    };
  }
  assertNotReadOnly(tape, `remove tape ${tape.name} (its name could then be labelled again)`);
  const files = await ctx.catalog.listTapeFiles(tape.name);
  if (tape.writeInFlight || tape.filesWritten > 0 || tape.nextFileNumber > 1 || files.length > 0) {
    throw new IllegalTransitionError(
      `tape ${tape.name} holds data (${files.length} file(s) recorded, next file ${tape.nextFileNumber}${tape.writeInFlight ? ', a write in flight' : ''}); only a tape with nothing written can be removed. Close it instead ("close_tape ${tape.name}").`,
    );
  }
  // Read before the removal too: on a catalog not yet migrated this refuses before any change.
  await assignedTo(ctx, tape);
  try {
    await ctx.catalog.removeTape(tape);
  } catch (e) {
    if (e instanceof ConditionFailed) {
      throw new ConflictError(
        `tape ${tape.name} changed while it was removed (a write started, or it was opened or closed); nothing was changed. Check "tapes" and try again.`,
      );
    }
    throw e;
  }
  // The tape is gone, so no archive or assign can take these any more; an interrupted release
  // is finished by running remove_tape again.
  const released = await releaseAssigned(ctx, await assignedTo(ctx, tape));
  return {
    tape: tape.name,
    wasOnline: tape.online,
    released,
    message: `tape ${tape.name} removed from the catalog${tape.online ? ` (pool ${tape.pool} has no online tape now; open one with "open_tape NAME")` : ''}; released ${released.length} assigned target(s).`,
  };
}
