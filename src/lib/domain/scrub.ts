/**
 * Scrubbing: which confirmed tape files one scrub run re-reads. Tapes are taken one at a time,
 * the tape whose oldest verification is oldest first, and each tape's files in file-number
 * order (one pass over a mounted tape), until the run's byte budget is spent; what is left is
 * the oldest next time, so the whole library is re-read on a cycle. Pure: no catalog, no clock.
 */
import type { TapeFile } from './tape-file.ts';

export type ScrubCandidate = Pick<TapeFile, 'tapeName' | 'fileNumber' | 'targetId' | 'bytes' | 'verifiedAt' | 'archivedAt'>;

export interface ScrubPlan {
  /** In the order to read them: tape after tape, each in file-number order. */
  files: ScrubCandidate[];
  bytes: number;
  /** Confirmed files not taken this run (budget, file limit, or verified too recently). */
  left: number;
}

/** When a file was last read back good (or written, for a file never verified since). */
export const lastGood = (f: Pick<ScrubCandidate, 'verifiedAt' | 'archivedAt'>): string => f.verifiedAt ?? f.archivedAt ?? '';

/**
 * The files of one run: `budgetBytes` is what the run may read (at least one file is always
 * taken, or a file larger than the budget would never be scrubbed); files verified after
 * `notAfter` (ISO time) are skipped.
 */
export function planScrub(confirmed: readonly ScrubCandidate[], o: { budgetBytes: number; maxFiles: number; notAfter?: string }): ScrubPlan {
  const due = confirmed.filter((f) => o.notAfter === undefined || lastGood(f) <= o.notAfter);
  const byTape = new Map<string, ScrubCandidate[]>();
  for (const f of due) byTape.set(f.tapeName, [...(byTape.get(f.tapeName) ?? []), f]);
  const oldest = (files: ScrubCandidate[]) => files.map(lastGood).sort()[0] ?? '';
  const tapes = [...byTape.entries()].sort(([a, fa], [b, fb]) => oldest(fa).localeCompare(oldest(fb)) || a.localeCompare(b));
  const files: ScrubCandidate[] = [];
  let bytes = 0;
  for (const [, onTape] of tapes) {
    for (const f of [...onTape].sort((a, b) => a.fileNumber - b.fileNumber)) {
      const size = f.bytes ?? 0;
      if (files.length >= o.maxFiles || (files.length > 0 && bytes + size > o.budgetBytes)) {
        return { files, bytes, left: confirmed.length - files.length };
      }
      files.push(f);
      bytes += size;
    }
  }
  return { files, bytes, left: confirmed.length - files.length };
}

/** The byte budget of `hours` of drive time at `mbps` (10^6 bytes per second). */
export const scrubBudgetBytes = (hours: number, mbps: number): number => Math.floor(hours * 3600 * mbps * 1e6);
