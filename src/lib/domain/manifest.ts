/**
 * A target's manifest: every entry under the target directory, as scanned on the data host.
 * Paths are relative to the target root, POSIX, without a leading "./". File names are bytes
 * on Unix; a name that is not valid UTF-8 keeps its exact bytes in `rawPath` (base64) and a
 * readable stand-in in `path`. Symlink targets are bytes too: `rawLinkTarget` likewise.
 *
 * Hard links: every name of a regular file whose link count is above 1 carries its inode's
 * `linkGroup` number (1, 2, ... in manifest order; a group of one name has its other names
 * outside the target). The first name of a group in
 * manifest order is its leader and carries the data on tape; the others are tar hard links
 * to it. Every name of a group has the same size and sha256.
 */
import { createHash } from 'node:crypto';

export type EntryType = 'file' | 'dir' | 'symlink';

export interface ManifestEntry {
  path: string;
  /** base64 of the exact name bytes, present only when they are not valid UTF-8. */
  rawPath?: string;
  type: EntryType;
  size: number;
  mtimeMs: number;
  mode: number;
  /** SHA-256 (hex) of the content; files only. */
  sha256?: string;
  /** Symlinks only (a Latin-1 stand-in when `rawLinkTarget` is set). */
  linkTarget?: string;
  /** base64 of the exact symlink target bytes, present only when they are not valid UTF-8. */
  rawLinkTarget?: string;
  /** Regular files with several names in the target: the group shared by all its names. */
  linkGroup?: number;
  /** MD5 (hex) of the content, as tapetown recorded it (adopted manifests; files only). Not in the digest. */
  md5?: string;
  /** Adopted from tapetown: size is du's allocated KiB times 1024, mode and mtime unknown (0), until a confirm reads the tape. */
  approximate?: true;
  /** Owner and group as numbers (since release 0.5; older manifests have none). Not in the digest. */
  uid?: number;
  gid?: number;
}

const utf8 = new TextDecoder('utf-8', { fatal: true });

/** Builds the path fields of an entry from the name's bytes. */
export function pathFields(bytes: Buffer): { path: string; rawPath?: string } {
  try {
    return { path: utf8.decode(bytes) };
  } catch {
    return { path: bytes.toString('latin1'), rawPath: bytes.toString('base64') };
  }
}

/** The exact bytes of an entry's name. */
export function pathBytes(e: Pick<ManifestEntry, 'path' | 'rawPath'>): Buffer {
  return e.rawPath !== undefined ? Buffer.from(e.rawPath, 'base64') : Buffer.from(e.path, 'utf8');
}

/** Why an entry of this kind is not archived (the policy: special files are skipped and reported). */
export function skipReason(kind: string): string {
  return `skipped: a ${kind} (special files are not archived; recreate it after a restore if it is needed)`;
}

/** Builds the link target fields of a symlink entry from the target's bytes. */
export function linkTargetFields(bytes: Buffer): { linkTarget: string; rawLinkTarget?: string } {
  const f = pathFields(bytes);
  return f.rawPath !== undefined ? { linkTarget: f.path, rawLinkTarget: f.rawPath } : { linkTarget: f.path };
}

/** The exact bytes of a symlink's target (empty for other entries). */
export function linkTargetBytes(e: Pick<ManifestEntry, 'linkTarget' | 'rawLinkTarget'>): Buffer {
  return e.rawLinkTarget !== undefined ? Buffer.from(e.rawLinkTarget, 'base64') : Buffer.from(e.linkTarget ?? '', 'utf8');
}

/**
 * The names that are hard links to an earlier name (followers), keyed by their pathKey, with
 * the key of their group's leader. Entries without a linkGroup are never followers.
 */
export function hardLinkFollowers(entries: Iterable<ManifestEntry>): Map<string, string> {
  const leaders = new Map<number, string>();
  const followers = new Map<string, string>();
  for (const e of entries) {
    if (e.linkGroup === undefined || e.type !== 'file') continue;
    const leader = leaders.get(e.linkGroup);
    if (leader === undefined) leaders.set(e.linkGroup, pathKey(e));
    else followers.set(pathKey(e), leader);
  }
  return followers;
}

/** A stable key for an entry's name (exact bytes), for lookups across sources. */
export function pathKey(e: Pick<ManifestEntry, 'path' | 'rawPath'>): string {
  return pathBytes(e).toString('base64');
}

/**
 * Manifest summary, entry by entry (memory does not grow with the manifest; hard-linked
 * names aside): counts and a digest over all entries, in order. `fileCount` counts every name
 * of a regular file; `totalBytes` counts content once (a hard link adds no bytes).
 */
export class ManifestSummary {
  private readonly h = createHash('sha256');
  entries = 0;
  fileCount = 0;
  totalBytes = 0;
  private readonly groups = new Set<number>();

  add(e: ManifestEntry): void {
    this.entries++;
    if (e.type === 'file') {
      this.fileCount++;
      if (e.linkGroup === undefined) this.totalBytes += e.size;
      else if (!this.groups.has(e.linkGroup)) {
        this.groups.add(e.linkGroup);
        this.totalBytes += e.size;
      }
    }
    // Fields added later are appended only when present, so older manifests keep their digest.
    const raw = e.rawLinkTarget !== undefined ? `\0raw:${e.rawLinkTarget}` : '';
    const group = e.linkGroup !== undefined ? `\0group:${e.linkGroup}` : '';
    this.h.update(`${pathKey(e)}\0${e.type}\0${e.size}\0${e.sha256 ?? ''}\0${e.linkTarget ?? ''}${raw}${group}\n`);
  }

  /** Whether any entry is in a hard link group. */
  get hasLinkGroups(): boolean {
    return this.groups.size > 0;
  }

  result(): { fileCount: number; totalBytes: number; digest: string } {
    return { fileCount: this.fileCount, totalBytes: this.totalBytes, digest: this.h.copy().digest('hex') };
  }
}

export function summarize(entries: Iterable<ManifestEntry>): { fileCount: number; totalBytes: number; digest: string } {
  const s = new ManifestSummary();
  for (const e of entries) s.add(e);
  return s.result();
}

/**
 * A manifest that can be read as often as needed: entries in memory, or a reader that streams
 * them again each time (the catalog's pages, one page in memory at a time).
 */
export type ManifestSource = readonly ManifestEntry[] | (() => AsyncIterable<ManifestEntry>);

export function entriesOf(m: ManifestSource): Iterable<ManifestEntry> | AsyncIterable<ManifestEntry> {
  return typeof m === 'function' ? m() : m;
}
