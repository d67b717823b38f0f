/**
 * Copies: a target is safe only when every pool its copy policy names holds a confirmed copy
 * of it. Each copy runs the placement state machine of domain/target.ts on its own, in its
 * own pool, so the seed's jobs work per pool. A tape belongs to one pool and a target has at
 * most one copy per pool, so two copies of a target never share a tape. Pure: no catalog, no clock.
 */
import { KEEPS_FILE_PLACEMENTS, targetStatus, withFileInHistory, type Placed, type ScanState, type Target, type TargetStatus } from './target.ts';

/** The pool a tape is in when none is given, and the one copy a target needs by default. */
export const DEFAULT_POOL = 'default';

export const POOL_RE = /^[A-Za-z0-9._-]{1,32}$/;

/** The pools every target of a policy must have a confirmed copy in, in order. */
export type CopyPolicy = readonly string[];

export const DEFAULT_POLICY: CopyPolicy = [DEFAULT_POOL];

export function validatePoolName(pool: string): string | undefined {
  return POOL_RE.test(pool) ? undefined : `pool "${pool}" is invalid: use 1-32 letters, digits, '.', '_' or '-'.`;
}

/** ["primary", "offsite"] (or "primary,offsite") -> the policy, or what is wrong with it. */
export function parseCopyPolicy(input: string | readonly string[]): { policy: CopyPolicy } | { error: string } {
  const text = typeof input === 'string' ? input : input.join(',');
  const pools = (typeof input === 'string' ? input.split(',') : [...input]).map((p) => p.trim());
  if (pools.length === 0 || pools.some((p) => p === ''))
    return { error: `copy policy "${text}" names an empty pool; write pools separated by commas, e.g. primary,offsite.` };
  const bad = pools.map(validatePoolName).find(Boolean);
  if (bad) return { error: bad };
  const twice = pools.find((p, i) => pools.indexOf(p) !== i);
  if (twice) return { error: `copy policy "${text}" names pool ${twice} twice; two copies in one pool could share a fate, name each pool once.` };
  return { policy: pools };
}

/** One copy of a target: where it is in its pool, and what its tape file holds once written. */
export interface Copy extends Placed {
  targetId: string;
  pool: string;
  /** The target's import time: the copies of a pool are taken in import order. */
  importedAt: string;
  /** Bytes on tape and when the file was written and last read back good (archived, confirmed). */
  bytes?: number;
  archivedAt?: string;
  verifiedAt?: string;
  /** The last read-back of its tape file (confirm or scrub), good or bad. */
  lastVerify?: { at: string; ok: boolean; taskId: string; scrub?: boolean };
  /** A copy adopted from tapetown, checked as tapetown did (md5 only, sizes from du) until a confirm here reads it back. */
  legacy?: 'tapetown-md5';
  /** Set by `repair`: the next write of this copy reads this confirmed copy's tape file, not the source. */
  repairFrom?: RepairSource;
  updatedAt: string;
  /** Optimistic lock: every conditional write of this copy checks and bumps it. */
  version: number;
}

/** Another copy's tape file a repair reads (through the agent's staging directory) instead of the source. */
export interface RepairSource {
  tapeName: string;
  fileNumber: number;
  scanId: string;
  manifestPages: number;
}

/** A copy leaving its tape file (assigned anew, rescanned, released): the file's figures do not come along. */
export function withoutFileFigures(c: Copy): Copy {
  const { bytes: _b, archivedAt: _a, verifiedAt: _v, lastVerify: _l, repairFrom: _r, ...rest } = c;
  return rest;
}

/**
 * A copy off its tape file, to start again: unassigned, or assigned to `tapeName`. A file read
 * back bad goes into its history; the file's figures and the last error stay behind.
 */
export function startedAgain(c: Copy, now: string, tapeName?: string): Copy {
  return {
    ...withoutFileFigures(c),
    ...withFileInHistory(c, now),
    placement: tapeName === undefined ? 'unassigned' : 'assigned',
    tapeName,
    fileNumber: undefined,
    lastError: undefined,
    updatedAt: now,
    version: c.version + 1,
  };
}

/** A target with all its copies, as one Query on its partition reads them. */
export interface TargetCopies {
  target: Target;
  copies: Copy[];
}

/** A new target's copies: one per pool of its policy, none assigned. */
export function newCopies(t: Pick<Target, 'id' | 'copies' | 'importedAt'>, now: string): Copy[] {
  return t.copies.map((pool) => ({ targetId: t.id, pool, placement: 'unassigned', importedAt: t.importedAt, updatedAt: now, version: 1 }));
}

/** What operators see of a target with copies: `safe`, or what is still missing. */
export type CopiesStatus =
  | { safe: true; confirmed: number; required: number; extra: string[] }
  | { safe: false; confirmed: number; required: number; missing: string[]; extra: string[] };

/**
 * Safe only when every required pool has a confirmed copy. A confirmed copy in a pool the
 * policy no longer names is kept and reported as extra, never counted and never deleted.
 */
export function copiesStatus(policy: CopyPolicy, copies: readonly Pick<Copy, 'pool' | 'placement'>[]): CopiesStatus {
  const confirmedIn = new Set(copies.filter((c) => c.placement === 'confirmed').map((c) => c.pool));
  const missing = policy.filter((p) => !confirmedIn.has(p));
  const extra = [...confirmedIn].filter((p) => !policy.includes(p)).sort();
  const confirmed = policy.length - missing.length;
  return missing.length ? { safe: false, confirmed, required: policy.length, missing, extra } : { safe: true, confirmed, required: policy.length, extra };
}

/** "safe", or "1/2 confirmed (missing: offsite)". */
export function describeCopies(s: CopiesStatus): string {
  return s.safe ? 'safe' : `${s.confirmed}/${s.required} confirmed (missing: ${s.missing.join(', ')})`;
}

/**
 * The one word for a whole target: that of the first copy its policy needs that is not yet
 * confirmed (what holds it up), or `confirmed` once all are. With one copy it is that copy's.
 */
export function overallStatus(tc: TargetCopies): TargetStatus {
  const required = tc.target.copies.map((pool) => tc.copies.find((c) => c.pool === pool));
  const behind = required.findIndex((c) => c?.placement !== 'confirmed');
  if (behind < 0 && required.length) return 'confirmed';
  // A required pool without a copy record (not yet created) counts as unassigned.
  return targetStatus({ scan: tc.target.scan, placement: required[behind]?.placement ?? 'unassigned' });
}

/** A copy's own status word (its target's scan with its placement). */
export const copyStatus = (scan: ScanState, c: Pick<Copy, 'placement'>): TargetStatus => targetStatus({ scan, placement: c.placement });

/** Two copies of one target never share a tape: the tapes a new copy may not go to. */
export function tapesTaken(copies: readonly Pick<Copy, 'pool' | 'placement' | 'tapeName'>[], exceptPool?: string): Set<string> {
  return new Set(copies.filter((c) => c.pool !== exceptPool && c.tapeName !== undefined && c.placement !== 'unassigned').map((c) => c.tapeName!));
}

/** Placements in which a copy holds (or is about to hold) data on its tape. */
const ON_TAPE: readonly Copy['placement'][] = ['writing', ...KEEPS_FILE_PLACEMENTS];

/**
 * A policy change: the copies to create (pools newly required), the copies assigned but not
 * written in pools no longer required (released), and the copies with data on tape that a
 * lower policy leaves as extra. Dropping a pool that holds data needs `force`; no copy record
 * is ever deleted.
 */
export function planPolicyChange(
  from: CopyPolicy,
  to: CopyPolicy,
  copies: readonly Pick<Copy, 'pool' | 'placement'>[],
  force = false,
): { create: string[]; release: string[]; keptAsExtra: string[] } | { error: string } {
  const have = new Set(copies.map((c) => c.pool));
  const create = to.filter((p) => !have.has(p));
  const dropped = copies.filter((c) => !to.includes(c.pool));
  const keptAsExtra = dropped.filter((c) => ON_TAPE.includes(c.placement)).map((c) => c.pool);
  const release = dropped.filter((c) => c.placement === 'assigned').map((c) => c.pool);
  if (keptAsExtra.length && !force) {
    return {
      error: `the new policy (${to.join(', ')}) drops pool(s) ${keptAsExtra.join(', ')} that hold data on tape (policy was ${from.join(', ')}); those copies would be kept as extra, never deleted. Repeat with --force to accept that. Nothing was changed.`,
    };
  }
  return { create, release, keptAsExtra };
}
