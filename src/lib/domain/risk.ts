/**
 * What puts data at risk, from the targets with their copies and the tapes alone: targets with
 * fewer confirmed copies than their policy (a bad copy first), confirmed copies overdue for
 * scrub, tapes with errors (set aside, or holding a copy that read back bad), and the oldest
 * data written but never read back. `at_risk` answers it; `status` shows its counts. Pure.
 */
import { copiesStatus, type TargetCopies } from './copies.ts';
import type { Tape } from './tape.ts';

export type RiskReason = 'bad-copy' | 'unconfirmed' | 'not-written';

export interface AtRiskTarget {
  id: string;
  host: string;
  path: string;
  reason: RiskReason;
  confirmed: number;
  required: number;
  missing: string[];
  /** Copies whose tape file read back bad, with the error. */
  bad: { pool: string; tape?: string; fileNumber?: number; error?: string; at?: string }[];
}

export interface RiskReport {
  counts: { targets: number; badCopies: number; overdueScrub: number; tapesWithErrors: number; unverified: number };
  targets: AtRiskTarget[];
  overdueScrub: { targetId: string; pool: string; tape: string; fileNumber: number; lastVerified: string }[];
  tapesWithErrors: { name: string; state: Tape['state']; reason?: string; badFiles: number }[];
  oldestUnverified: { targetId: string; pool: string; tape: string; fileNumber: number; archivedAt: string }[];
}

const ORDER: Record<RiskReason, number> = { 'bad-copy': 0, unconfirmed: 1, 'not-written': 2 };

/** `limit` bounds each list (not the counts); `overdueBefore`: a confirmed copy last verified before this ISO time is overdue. */
export function assessRisk(tcs: readonly TargetCopies[], tapes: readonly Tape[], o: { overdueBefore: string; limit: number }): RiskReport {
  const targets: AtRiskTarget[] = [];
  const overdue: RiskReport['overdueScrub'] = [];
  const unverified: RiskReport['oldestUnverified'] = [];
  const badOnTape = new Map<string, number>();
  let badCopies = 0;
  for (const { target, copies } of tcs) {
    const bad = copies.filter((c) => c.placement === 'confirm_failed');
    badCopies += bad.length;
    for (const c of bad) if (c.tapeName) badOnTape.set(c.tapeName, (badOnTape.get(c.tapeName) ?? 0) + 1);
    for (const c of copies) {
      if (c.placement === 'confirmed' && c.tapeName && c.fileNumber !== undefined) {
        const last = c.verifiedAt ?? c.archivedAt ?? '';
        if (last < o.overdueBefore) overdue.push({ targetId: c.targetId, pool: c.pool, tape: c.tapeName, fileNumber: c.fileNumber, lastVerified: last });
      }
      if (c.placement === 'archived' && c.tapeName && c.fileNumber !== undefined)
        unverified.push({ targetId: c.targetId, pool: c.pool, tape: c.tapeName, fileNumber: c.fileNumber, archivedAt: c.archivedAt ?? c.updatedAt });
    }
    const s = copiesStatus(target.copies, copies);
    if (s.safe) continue;
    const missing = copies.filter((c) => s.missing.includes(c.pool));
    const reason: RiskReason = bad.length ? 'bad-copy' : missing.some((c) => c.placement === 'archived') ? 'unconfirmed' : 'not-written';
    targets.push({
      id: target.id,
      host: target.host,
      path: target.path,
      reason,
      confirmed: s.confirmed,
      required: s.required,
      missing: s.missing,
      bad: bad.map((c) => ({
        pool: c.pool,
        ...(c.tapeName ? { tape: c.tapeName } : {}),
        ...(c.fileNumber !== undefined ? { fileNumber: c.fileNumber } : {}),
        ...(c.lastError ? { error: c.lastError } : {}),
        ...(c.lastVerify ? { at: c.lastVerify.at } : {}),
      })),
    });
  }
  const tapesWithErrors = tapes
    .filter((t) => t.state === 'disabled' || t.state === 'broken' || badOnTape.has(t.name))
    .map((t) => ({ name: t.name, state: t.state, ...(t.reason ? { reason: t.reason } : {}), badFiles: badOnTape.get(t.name) ?? 0 }));
  targets.sort((a, b) => ORDER[a.reason] - ORDER[b.reason]);
  overdue.sort((a, b) => a.lastVerified.localeCompare(b.lastVerified));
  unverified.sort((a, b) => a.archivedAt.localeCompare(b.archivedAt));
  return {
    counts: { targets: targets.length, badCopies, overdueScrub: overdue.length, tapesWithErrors: tapesWithErrors.length, unverified: unverified.length },
    targets: targets.slice(0, o.limit),
    overdueScrub: overdue.slice(0, o.limit),
    tapesWithErrors,
    oldestUnverified: unverified.slice(0, o.limit),
  };
}
