/**
 * Before touching a tape: is it the tape the catalog means, and is the tape where the
 * catalog thinks it is? (CTA's write session checks, Bareos' label checks.)
 */
import { isTapeChanger, type TapeDrive } from '../../lib/tape/drive.ts';
import { readLabel, readTargetHeader, type TapeLabel } from '../../lib/tape-format/index.ts';
import type { JobContext } from '../../lib/jobs/context.ts';
import { errorMessage } from '../../lib/errors.ts';
import type { ExtractOptions } from '../../lib/restore/extract.ts';

export class TapeRefusal extends Error {
  override readonly name = 'TapeRefusal';
  constructor(
    readonly reason: 'wrong-tape' | 'position-mismatch' | 'write-protected' | 'no-tape' | 'blank-tape',
    message: string,
  ) {
    super(message);
  }
}

/** Loads the named tape if the library has a changer; otherwise the operator loaded it. */
export async function mountTape(drive: TapeDrive, tapeName: string): Promise<void> {
  if (isTapeChanger(drive) && (await drive.loadedTape()) !== tapeName) await drive.load(tapeName);
  const status = await drive.status();
  if (!status.loaded) throw new TapeRefusal('no-tape', `no tape in drive ${drive.id}; load tape ${tapeName}`);
}

/** How the target files of a mounted tape are read back (restore, repair staging). */
export interface TapeReading {
  /** The extract options for the target file at the current position: its blocks and its member names. */
  extract(targetPath: string, signal: AbortSignal): Pick<ExtractOptions, 'blocks' | 'tapetown'>;
}

/**
 * Mounts a tape to read target files from: ours after its label is checked (undefined: the
 * tape is blank), or a tapetown tape's (no label; variable blocks; members named by the
 * target's path, which is the identity check of each file).
 */
export async function mountForReading(drive: TapeDrive, ctx: JobContext, tapeName: string): Promise<TapeReading | undefined> {
  const tapetown = (await ctx.catalog.getTape(tapeName))?.format === 'tapetown';
  await mountTape(drive, tapeName);
  if (tapetown) return { extract: (targetPath, signal) => ({ blocks: drive.readFile({ signal, variable: {} }), tapetown: { targetPath } }) };
  if (!(await checkLabel(drive, tapeName))) return undefined;
  return { extract: (_targetPath, signal) => ({ blocks: drive.readFile({ signal }) }) };
}

/** Reads file 0 and checks it names `tapeName`; undefined for a blank tape. */
export async function checkLabel(drive: TapeDrive, tapeName: string): Promise<TapeLabel | undefined> {
  const files = await drive.seekEndOfData();
  if (files === 0) return undefined;
  await drive.rewind();
  let label: TapeLabel;
  try {
    label = await readLabel(drive.readFile());
  } catch (e) {
    throw new TapeRefusal('wrong-tape', `the tape in drive ${drive.id} has no readable label (${errorMessage(e)}); expected ${tapeName}. Load the right tape.`);
  }
  if (label.tapeName !== tapeName) {
    throw new TapeRefusal('wrong-tape', `drive ${drive.id} holds tape "${label.tapeName}", expected "${tapeName}"; load the right tape.`);
  }
  return label;
}

/**
 * Whether file `fileNumber` (the catalog's next number, so not a file the catalog records) is
 * the leftover of a write that failed: an st drive ends an aborted file with a filemark, so
 * it counts as a complete file. Only a file whose header names the write the tape records as
 * its last discarded one at this number (or a write task the catalog records as failed there)
 * may be written over; anything else (a header
 * unreadable, a task unknown: a catalog restored from a backup) may hold data and is kept.
 * Returns that task's id.
 */
export async function leftoverOfFailedWrite(drive: TapeDrive, ctx: JobContext, tapeName: string, fileNumber: number): Promise<string | undefined> {
  await drive.seekFile(fileNumber);
  const header = await readTargetHeader(drive.readFile()).catch(() => undefined);
  if (!header || header.tapeName !== tapeName || header.fileNumber !== fileNumber) return undefined;
  // The tape remembers its last discarded write; older discards are found by their task item (kept 30 days).
  const discarded = (await ctx.catalog.getTape(tapeName))?.lastDiscardedWrite;
  if (discarded?.taskId === header.taskId && discarded.fileNumber === fileNumber) return header.taskId;
  const status = await ctx.tasks.get(header.taskId);
  const failed = status?.kind === 'write' && status.state === 'failed' && status.tapeName === tapeName && status.fileNumber === fileNumber;
  return failed ? header.taskId : undefined;
}
