/**
 * A target's manifest: every entry under the target directory, as scanned on the data host.
 * Paths are relative to the target root, POSIX, without a leading "./". File names are bytes
 * on Unix; a name that is not valid UTF-8 keeps its exact bytes in `rawPath` (base64) and a
 * readable stand-in in `path`.
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
  /** Symlinks only. */
  linkTarget?: string;
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

/** A stable key for an entry's name (exact bytes), for lookups across sources. */
export function pathKey(e: Pick<ManifestEntry, 'path' | 'rawPath'>): string {
  return pathBytes(e).toString('base64');
}

/** Manifest summary: counts and a digest over all entries, in order. */
export function summarize(entries: Iterable<ManifestEntry>): { fileCount: number; totalBytes: number; digest: string } {
  const h = createHash('sha256');
  let fileCount = 0;
  let totalBytes = 0;
  for (const e of entries) {
    if (e.type === 'file') {
      fileCount++;
      totalBytes += e.size;
    }
    h.update(`${pathKey(e)}\0${e.type}\0${e.size}\0${e.sha256 ?? ''}\0${e.linkTarget ?? ''}\n`);
  }
  return { fileCount, totalBytes, digest: h.digest('hex') };
}
