/**
 * Restore rules, pure: which destination a request names, which members of a tape file a
 * selection takes, and which member names are refused because writing them could land
 * outside the destination directory. The extraction itself is in lib/restore/.
 */
import { UsageError } from '../errors.ts';
import type { Copy, TargetCopies } from './copies.ts';

export interface Destination {
  /** A data host of the agent's configuration; absent: the agent's own file system. */
  host?: string;
  /** Absolute directory the target root is restored to. */
  dir: string;
}

/** `[HOST:]DIR` -> where to restore; DIR must be absolute. */
export function parseDestination(text: string): Destination {
  const m = /^(?:([A-Za-z0-9][A-Za-z0-9._-]*):)?(\/.*)$/.exec(text);
  if (!m) throw new UsageError(`--to "${text}" is not [HOST:]DIR with an absolute DIR; for example --to /restore/obs-1 or --to datahost:/restore/obs-1.`);
  const dir = m[2]!.length > 1 ? m[2]!.replace(/\/+$/, '') : m[2]!;
  if (dir.split('/').includes('..')) throw new UsageError(`--to "${text}" has a ".." component; name the directory directly.`);
  return m[1] ? { host: m[1], dir } : { dir };
}

export const formatDestination = (d: Destination): string => (d.host ? `${d.host}:${d.dir}` : d.dir);

/**
 * An operator's PATH (relative to the target root: "sub/a.dat", "./sub/", "sub") -> its
 * normal form, or a UsageError for names that cannot be inside a target.
 */
export function normalizeSelection(path: string): string {
  const parts = path.split('/').filter((p) => p !== '' && p !== '.');
  if (path.startsWith('/')) throw new UsageError(`path "${path}" is absolute; paths are relative to the target root, e.g. "sub/a.dat".`);
  if (parts.includes('..')) throw new UsageError(`path "${path}" has a ".." component; paths are relative to the target root and stay inside it.`);
  if (parts.length === 0) throw new UsageError(`path "${path}" names the target root; leave the paths out to restore the whole target.`);
  return parts.join('/');
}

const SLASH = 0x2f;

/** Whether `rel` (bytes, relative to the root) is taken by the selection: an empty one takes everything. */
export function isSelected(rel: Buffer, selection: readonly Buffer[]): boolean {
  if (selection.length === 0) return true;
  return selection.some((s) => rel.equals(s) || (rel.length > s.length && rel[s.length] === SLASH && rel.subarray(0, s.length).equals(s)));
}

/**
 * Why a member name (bytes after `data/`) must not be written, or undefined when it is safe:
 * it must be relative, without "." or ".." components, empty components or NUL bytes.
 */
export function unsafeMemberName(rel: Buffer): string | undefined {
  if (rel.length === 0) return 'an empty name';
  if (rel[0] === SLASH) return 'an absolute name';
  if (rel.includes(0)) return 'a NUL byte in its name';
  for (const part of splitPath(rel)) {
    if (part.length === 0) return 'an empty component in its name';
    if (part.length === 1 && part[0] === 0x2e) return 'a "." component in its name';
    if (part.length === 2 && part[0] === 0x2e && part[1] === 0x2e) return 'a ".." component in its name';
  }
  return undefined;
}

/** The components of a relative name. */
export function splitPath(rel: Buffer): Buffer[] {
  const parts: Buffer[] = [];
  let start = 0;
  for (let i = 0; i <= rel.length; i++) {
    if (i === rel.length || rel[i] === SLASH) {
      parts.push(rel.subarray(start, i));
      start = i + 1;
    }
  }
  return parts;
}

/** The proper ancestors of a relative name, outermost first ("a/b/c" -> "a", "a/b"). */
export function ancestors(rel: Buffer): Buffer[] {
  const out: Buffer[] = [];
  for (let i = 0; i < rel.length; i++) if (rel[i] === SLASH) out.push(rel.subarray(0, i));
  return out;
}

/** What a restore did, per file name (directories and symlinks count as files here). */
export interface RestoreCounts {
  restored: number;
  bytes: number;
  skipped: number;
  failed: number;
}

export const noCounts = (): RestoreCounts => ({ restored: 0, bytes: 0, skipped: 0, failed: 0 });

export function addCounts(a: RestoreCounts, b: RestoreCounts): RestoreCounts {
  return { restored: a.restored + b.restored, bytes: a.bytes + b.bytes, skipped: a.skipped + b.skipped, failed: a.failed + b.failed };
}

/** The operator's one-line account of a restore. */
export function restoreMessage(
  r: RestoreCounts & { outcome: 'restored' | 'failed' | 'cancelled'; tapeName: string; targetsDone: number; error?: string },
  destination: string,
): string {
  const figures = `${r.restored} restored (${r.bytes} bytes), ${r.skipped} already there and identical, ${r.failed} failed`;
  if (r.outcome === 'restored') return `restore from ${r.tapeName} to ${destination} complete and verified: ${figures}`;
  if (r.outcome === 'cancelled')
    return `restore from ${r.tapeName} to ${destination} cancelled: ${figures}; what is restored is verified, run the same restore again to finish`;
  return `restore from ${r.tapeName} to ${destination} FAILED: ${figures}${r.error ? `; ${r.error}` : ''}. Files restored are verified; run the restore again (with --from another copy if the tape cannot be read) to finish`;
}

/**
 * The copies a restore may read, best first: confirmed ones, in the order of the copy policy,
 * then extra copies. A copy adopted from tapetown is read only once a confirm here has measured
 * its SHA-256s (before, there is nothing to verify the restored files against).
 */
export function restoreCandidates(tc: TargetCopies): Copy[] {
  const rank = (c: Copy) => {
    const i = tc.target.copies.indexOf(c.pool);
    return i < 0 ? tc.target.copies.length : i;
  };
  return tc.copies
    .filter((c) => c.placement === 'confirmed' && !c.legacy && c.tapeName !== undefined && c.fileNumber !== undefined)
    .sort((a, b) => rank(a) - rank(b));
}
