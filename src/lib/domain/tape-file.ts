/**
 * One tape file (a file number on a tape) holding one target. "archived" means the whole
 * file, trailer and filemark included, is on tape; "confirmed" means it was read back and
 * every checksum matched. Discarded files (end of medium, failed write) leave no record:
 * their file number is reused, so numbers on a tape stay strictly sequential.
 */
export const TAPE_FILE_STATES = ['writing', 'archived', 'confirmed', 'confirm_failed'] as const;
export type TapeFileState = (typeof TAPE_FILE_STATES)[number];

export interface TapeFile {
  tapeName: string;
  fileNumber: number;
  targetId: string;
  state: TapeFileState;
  taskId: string;
  /** The scan (manifest) written to this file; absent in files written before release 0.3, whose target's scan is theirs. */
  scanId?: string;
  manifestPages?: number;
  bytes?: number;
  fileCount?: number;
  /** `tapetown`: a GNU tar the predecessor wrote (no header or trailer of ours). */
  format?: 'tapetown';
  /** A tapetown file: the nested targets tapetown left out of it (tar --exclude), as they were then. */
  excludes?: string[];
  /** SHA-256 of the whole tape file as streamed. */
  sha256?: string;
  startedAt: string;
  archivedAt?: string;
  verifiedAt?: string;
  verifyError?: string;
  lastVerifyTaskId?: string;
}

/** A tape's layout as runs of consecutive file numbers in one state ("1 - 41 : confirmed"), in order. */
export function layoutRuns(files: readonly Pick<TapeFile, 'fileNumber' | 'state'>[]): { from: number; to: number; state: TapeFileState }[] {
  const runs: { from: number; to: number; state: TapeFileState }[] = [];
  for (const f of [...files].sort((a, b) => a.fileNumber - b.fileNumber)) {
    const last = runs.at(-1);
    if (last && last.state === f.state && last.to === f.fileNumber - 1) last.to = f.fileNumber;
    else runs.push({ from: f.fileNumber, to: f.fileNumber, state: f.state });
  }
  return runs;
}
