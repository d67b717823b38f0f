import { createHash } from 'node:crypto';
import { IllegalTransitionError } from '../errors.ts';

/**
 * A target has a scan and one copy per pool its copy policy names (domain/copies.ts):
 *  - scan (on the target): pending -> complete | failed (the manifest is known when complete);
 *  - placement (on each copy): unassigned -> assigned(tape) -> writing(tape, file) -> archived -> confirmed.
 * Assignment may happen before the scan completes; archive only takes scanned targets.
 */
export const SCAN_STATES = ['pending', 'complete', 'failed'] as const;
export type ScanState = (typeof SCAN_STATES)[number];

export const PLACEMENTS = ['unassigned', 'assigned', 'writing', 'archived', 'confirmed', 'confirm_failed', 'write_failed'] as const;
export type Placement = (typeof PLACEMENTS)[number];

const PLACEMENT_TRANSITIONS: Record<Placement, readonly Placement[]> = {
  unassigned: ['assigned'],
  // assigned -> assigned is a move to another tape: allowed because nothing is on tape yet.
  assigned: ['assigned', 'unassigned', 'writing'],
  // back to assigned: end of medium or a retryable failure discarded the tape file.
  writing: ['archived', 'assigned', 'write_failed'],
  archived: ['confirmed', 'confirm_failed'],
  confirmed: ['confirm_failed', 'confirmed'],
  // a way forward after a bad read-back: archive it again (assign, keeping its scan, or
  // rescan first). The bad tape file stays recorded as bad and in the target's history.
  confirm_failed: ['confirmed', 'confirm_failed', 'assigned', 'unassigned'],
  // after a rescan the operator may assign it again.
  write_failed: ['assigned', 'unassigned'],
};

/**
 * Placements in which no good copy of the target is on any tape, so an operator may assign
 * it (again) to a tape, or scan it again: unassigned, assigned (a move), write_failed, and
 * confirm_failed (its tape file read back bad; that file stays recorded as bad).
 */
export const REASSIGNABLE_PLACEMENTS: readonly Placement[] = PLACEMENTS.filter((p) => p !== 'writing' && canTransitionPlacement(p, 'assigned'));

/** Placements in which a copy holds a file that read back good or is not yet read back: a rescan leaves these alone. */
export const KEEPS_FILE_PLACEMENTS: readonly Placement[] = PLACEMENTS.filter((p) => p !== 'writing' && !REASSIGNABLE_PLACEMENTS.includes(p));

/** Placements whose tape file was given up (write failed, read back bad): a rescan sends the copy back to unassigned. */
export const GAVE_UP_FILE_PLACEMENTS: readonly Placement[] = ['write_failed', 'confirm_failed'];

/** A tape file that once held the target and was given up (read back bad), kept as history. */
export interface PreviousFile {
  tapeName: string;
  fileNumber: number;
  state: 'confirm_failed';
  error?: string;
  /** When the target left that file. */
  at: string;
}

/** Where a copy is: the placement machine's state, its tape and file, and the files it gave up. */
export interface Placed {
  placement: Placement;
  tapeName?: string;
  fileNumber?: number;
  lastError?: string;
  previousFiles?: PreviousFile[];
}

/** A copy `t` leaving its current tape file for a new archive: the file goes into its history. */
export function withFileInHistory(t: Placed, at: string): Pick<Placed, 'previousFiles'> {
  if (t.placement !== 'confirm_failed' || !t.tapeName || t.fileNumber === undefined) return t.previousFiles ? { previousFiles: t.previousFiles } : {};
  const entry: PreviousFile = {
    tapeName: t.tapeName,
    fileNumber: t.fileNumber,
    state: 'confirm_failed',
    ...(t.lastError ? { error: t.lastError.slice(0, 1000) } : {}),
    at,
  };
  // Bounded, so a target that keeps failing cannot grow its item without end; the tape files themselves stay.
  return { previousFiles: [...(t.previousFiles ?? []), entry].slice(-20) };
}

export function canTransitionPlacement(from: Placement, to: Placement): boolean {
  return PLACEMENT_TRANSITIONS[from].includes(to);
}

export function assertPlacementTransition(targetId: string, from: Placement, to: Placement): void {
  if (!canTransitionPlacement(from, to)) {
    throw new IllegalTransitionError(`target ${targetId} is ${from} and cannot become ${to}.`, { targetId, from, to });
  }
}

/** The single word operators see for a copy, combining its target's scan and its placement. */
export const TARGET_STATUSES = [
  'imported',
  'scan_failed',
  'scanned',
  'assigned',
  'writing',
  'archived',
  'confirmed',
  'confirm_failed',
  'write_failed',
] as const;
export type TargetStatus = (typeof TARGET_STATUSES)[number];

export function targetStatus(t: { scan: ScanState; placement: Placement }): TargetStatus {
  // A failed scan stays visible as failed until the target is scanned again, assigned or not:
  // nothing of it can be written before that.
  if (t.scan === 'failed' && (t.placement === 'unassigned' || t.placement === 'assigned')) return 'scan_failed';
  if (t.placement === 'unassigned') return t.scan === 'complete' ? 'scanned' : 'imported';
  return t.placement;
}

/** A directory to archive: where it is, what its scan found, and the pools it needs a copy in. */
export interface Target {
  id: string;
  host: string;
  path: string;
  scan: ScanState;
  scanId?: string;
  scanError?: string;
  fileCount?: number;
  totalBytes?: number;
  /** Number of manifest pages of the current scan. */
  manifestPages?: number;
  /** Entries the current scan left out by policy (special files): how many, and the first ones. */
  skippedCount?: number;
  skipped?: { path: string; rawPath?: string; reason: string }[];
  /** The copy policy: the pools each of which must hold a confirmed copy (domain/copies.ts). */
  copies: string[];
  /** Absolute paths of the targets inside this one: their subtrees are not in its manifest nor on its tape files. */
  excludes?: string[];
  /**
   * Adopted from a tapetown database: its targets row, whether tapetown had a file list (not so
   * after "import --no-scan"), and whether the manifest was then taken from the tape (a baseline:
   * nothing to check it against when it was read).
   */
  adopted?: { from: 'tapetown'; id: number; fileList: boolean; baselineFromTape?: boolean };
  importedAt: string;
  updatedAt: string;
  /** Optimistic lock: every conditional write checks and bumps it. */
  version: number;
}

/** The scan id of a manifest adopted from tapetown (md5s, sizes from du): one per tapetown target. */
export const adoptedScanId = (tapetownId: number): string => `tapetown-${tapetownId}`;

/**
 * Why a target cannot be written from its current scan, when it is tapetown's file list: only
 * md5s and approximate sizes, nothing a write could check the source against.
 */
export function approximateScanReason(t: Pick<Target, 'id' | 'adopted' | 'scanId'>, hasTapetownCopy = true): string | undefined {
  if (!t.adopted || t.scanId !== adoptedScanId(t.adopted.id)) return undefined;
  return `adopted from tapetown, and its file list is tapetown's (md5s, sizes from du): ${hasTapetownCopy ? 'confirm its tapetown copy first (it measures every file), or ' : 'it has no tapetown copy on tape; '}"rescan ${t.id}" to scan it on the data host`;
}

/** Deterministic id, so re-importing the same host:path finds the same target. */
export function targetId(host: string, path: string): string {
  return 't-' + createHash('sha256').update(`${host}\0${path}`).digest('hex').slice(0, 16);
}
