/**
 * Before the drive self-test erases a tape: is it really scratch? A tape with any data is
 * refused unless the operator says `--force`; a tape whose label names a tape the catalog
 * knows is refused always (its files may be the only copy of someone's data).
 */
import { ArchiveError, errorMessage } from '../errors.ts';
import { readLabel } from '../tape-format/index.ts';
import type { TapeDrive } from './drive.ts';

/** The tape is not scratch: the self-test refuses to erase it; nothing was written. */
export class NotScratchError extends ArchiveError {
  override readonly name = 'NotScratchError';
  readonly code = 'NOT_SCRATCH';
  readonly status = 409;
}

export interface ScratchCheck {
  /** Complete files on the tape (0: blank). */
  files: number;
  /** The tape name in its label, when file 0 is one of our labels. */
  label?: string;
}

export interface ScratchOptions {
  force?: boolean;
  /** The catalog's state of a tape name, or undefined if it does not know it; absent when no catalog is configured. */
  catalogState?: (tapeName: string) => Promise<string | undefined>;
}

/** Reads how many files the loaded tape holds and its label (read only), and refuses as above. */
export async function checkScratchTape(drive: TapeDrive, opts: ScratchOptions = {}): Promise<ScratchCheck> {
  const files = await drive.seekEndOfData();
  if (files === 0) {
    await drive.rewind();
    return { files };
  }
  await drive.rewind();
  let unreadable: string | undefined;
  const label = await readLabel(drive.readFile()).then(
    (l) => l.tapeName,
    (e: unknown) => {
      unreadable = errorMessage(e);
      return undefined;
    },
  );
  await drive.rewind();
  const known = label && opts.catalogState ? await opts.catalogState(label) : undefined;
  if (label && known) {
    throw new NotScratchError(
      `the tape in drive ${drive.id} is ${label}, which the catalog knows (${known}, ${files} file(s) on tape); the self-test never erases a catalogued tape. Load a scratch tape.`,
    );
  }
  if (!opts.force) {
    const what = label
      ? `is labelled ${label}${opts.catalogState ? ' (not in the catalog)' : ' (no catalog configured to look it up)'}`
      : `holds data whose file 0 is not a label of ours (${unreadable}; a tape of ours written with another block size reads like this: give its --block-size)`;
    throw new NotScratchError(
      `the tape in drive ${drive.id} ${what} and has ${files} file(s); the self-test would erase them. Load a blank tape, or add --force if its data is not needed.`,
    );
  }
  return { files, ...(label ? { label } : {}) };
}
