import { IllegalTransitionError } from '../errors.ts';

/**
 * Tape lifecycle: registered -> labelled -> full -> closed, plus disabled and broken
 * (read-only, with a reason) for the operator. "Online" is a separate flag: the tape the
 * jobs write to and confirm on by default; at most one tape is online.
 */
export const TAPE_STATES = ['registered', 'labelled', 'full', 'closed', 'disabled', 'broken'] as const;
export type TapeState = (typeof TAPE_STATES)[number];

const TAPE_TRANSITIONS: Record<TapeState, readonly TapeState[]> = {
  registered: ['labelled', 'full', 'closed', 'disabled', 'broken'],
  labelled: ['full', 'closed', 'disabled', 'broken'],
  full: ['closed', 'disabled', 'broken'],
  closed: [],
  disabled: ['registered', 'labelled', 'closed'],
  broken: ['closed'],
};

export function canTransitionTape(from: TapeState, to: TapeState): boolean {
  return TAPE_TRANSITIONS[from].includes(to);
}

export function assertTapeTransition(tape: string, from: TapeState, to: TapeState): void {
  if (!canTransitionTape(from, to)) {
    throw new IllegalTransitionError(`tape ${tape} is ${from} and cannot become ${to}.`, { tape, from, to });
  }
}

/** States in which new files may be appended. */
export const WRITABLE_TAPE_STATES: readonly TapeState[] = ['registered', 'labelled'];

/** States in which a tape may be the online tape (written to, or confirmed on once full). */
export const ONLINE_TAPE_STATES: readonly TapeState[] = [...WRITABLE_TAPE_STATES, 'full'];

/** States from which a tape may be closed: derived from the transitions. */
export const CLOSABLE_TAPE_STATES: readonly TapeState[] = TAPE_STATES.filter((s) => canTransitionTape(s, 'closed'));

/** Tapes a restore may read: a broken tape is not mounted again. */
export const READABLE_TAPE_STATES: readonly TapeState[] = TAPE_STATES.filter((s) => s !== 'broken');

export const canGoOnline = (state: TapeState): boolean => ONLINE_TAPE_STATES.includes(state);
export const canBeClosed = (state: TapeState): boolean => CLOSABLE_TAPE_STATES.includes(state);

/** The states from which close_tape appends a catalog snapshot: a tape in good order (not set aside after an error). */
export const SNAPSHOT_ON_CLOSE_STATES: readonly TapeState[] = CLOSABLE_TAPE_STATES.filter((s) => s !== 'disabled' && s !== 'broken');

export const TAPE_FORMATS = ['tapetown'] as const;
export type TapeFormatName = (typeof TAPE_FORMATS)[number];

/** Why nothing may be written to this tape, when it is an adopted one: no job appends to, labels or writes over it. */
export function readOnlyReason(tape: Pick<Tape, 'name' | 'format'>): string | undefined {
  if (tape.format !== 'tapetown') return undefined;
  return `tape ${tape.name} was written by tapetown and adopted read only: nothing is ever written to it, appended to it or written over it. Write new copies to a tape of a current pool ("open_tape --new NAME --pool P", then "assign" and "archive").`;
}

/** Refuses `what` (e.g. "assign targets to it") on an adopted tape, with what to do instead. */
export function assertNotReadOnly(tape: Pick<Tape, 'name' | 'format'>, what: string): void {
  const why = readOnlyReason(tape);
  if (why) throw new IllegalTransitionError(`cannot ${what}: ${why} Nothing was changed.`, { tape: tape.name, format: tape.format });
}

export interface WriteInFlight {
  fileNumber: number;
  targetId: string;
  taskId: string;
  startedAt: string;
}

/** A catalog snapshot tape file (docs/tape-format.md, "Catalog snapshot files"). */
export interface TapeSnapshot {
  fileNumber: number;
  taskId: string;
  at: string;
  bytes: number;
  sha256: string;
  items: { catalog: number; manifests: number };
}

export interface Tape {
  name: string;
  barcode: string;
  pool: string;
  capacityBytes: number;
  state: TapeState;
  online: boolean;
  bytesUsed: number;
  /** File 0 is the label; targets start at file 1. */
  nextFileNumber: number;
  filesWritten: number;
  filesConfirmed: number;
  writeInFlight?: WriteInFlight;
  /** The last write given up on this tape, until a write completes: what it left may be written over (absent before release 0.3). */
  lastDiscardedWrite?: { taskId: string; fileNumber: number };
  reason?: string;
  /** Set when the tape was rebuilt from what is on it (rebuild_catalog); `complete` once it was read to its end. */
  rebuilt?: { taskId: string; at: string; complete: boolean; verified: boolean };
  /** A catalog snapshot being appended to this closed tape (close_tape); no other write runs meanwhile. */
  snapshotInFlight?: { taskId: string; fileNumber: number; startedAt: string };
  /** The catalog snapshots on this tape (tape files that hold no target), oldest first (added in release 0.9). */
  snapshots?: TapeSnapshot[];
  /** Absent: our own format (tape-archive/1). `tapetown`: adopted from the predecessor, read only for ever (docs/tapetown.md). */
  format?: TapeFormatName;
  /** An adopted tape's row in the tapetown database. */
  tapetown?: { id: number; serial: string; status: string /** The data host its targets were adopted on. */; host?: string };
  createdAt: string;
  updatedAt: string;
}

export const TAPE_NAME_RE = /^[A-Za-z0-9][A-Za-z0-9._-]{0,31}$/;

export function validateTapeName(name: string): string | undefined {
  if (!TAPE_NAME_RE.test(name)) {
    return `tape name "${name}" is invalid: use 1-32 letters, digits, '.', '_' or '-', starting with a letter or digit.`;
  }
  return undefined;
}

/** LTO barcodes: six characters plus the media type (e.g. ABC123L9). */
export const BARCODE_RE = /^[A-Z0-9]{6}(L[5-9T]|LA|M8)?$/;
