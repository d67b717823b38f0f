/**
 * The first pass of a write over its manifest, before anything goes to tape: every entry is
 * checked (names, sizes, checksums, link groups), the header's derived fields and the
 * trailer's file list figures are computed, and so are the byte sizes of header.json and
 * trailer.json (a tar header needs the size before the data). Memory does not grow with the
 * manifest beyond 8 bytes per name (the NameSet) and the hard-linked names' groups.
 */
import { createHash, hash } from 'node:crypto';
import { entriesOf, ManifestSummary, pathBytes, type ManifestEntry, type ManifestSource } from '../domain/manifest.ts';
import { type BadEntry, jsonBytes, manifestEntryJson, SourceChangedError, TapeFormatError, type TrailerFile } from './format.ts';

const SHA256_RE = /^[0-9a-f]{64}$/;

/** Why a name cannot be archived, or null when it is fine. */
export function invalidName(name: Buffer): string | null {
  if (name.length === 0) return 'empty name';
  if (name.includes(0)) return 'name contains a NUL byte';
  if (name[0] === 0x2f) return 'absolute name (leading "/")';
  for (const part of name.toString('latin1').split('/')) {
    if (part === '') return 'empty path component ("//" or trailing "/")';
    if (part === '.' || part === '..') return `"${part}" path component`;
  }
  return null;
}

/** 64 bits of a name's SHA-1, as a bigint (one-shot: no hash object per name). */
function nameHash(name: Buffer): bigint {
  return hash('sha1', name, 'buffer').readBigUInt64BE(0);
}

/**
 * The names of a manifest as sorted 64-bit hashes: "is this name in the manifest" in 8 bytes a
 * name (a million names: 8 MB). Two names share a hash with odds of about n²/2⁶⁵.
 */
export class NameSet {
  private hashes = new BigUint64Array(1024);
  private size = 0;
  private sorted = true;

  add(name: Buffer): void {
    if (this.size === this.hashes.length) {
      const bigger = new BigUint64Array(this.hashes.length * 2);
      bigger.set(this.hashes);
      this.hashes = bigger;
    }
    this.hashes[this.size++] = nameHash(name);
    this.sorted = false;
  }

  /** Sorts; returns the hashes that occur more than once. */
  seal(): Set<bigint> {
    this.hashes = this.hashes.slice(0, this.size).sort();
    this.sorted = true;
    const twice = new Set<bigint>();
    for (let i = 1; i < this.size; i++) if (this.hashes[i] === this.hashes[i - 1]) twice.add(this.hashes[i]!);
    return twice;
  }

  has(name: Buffer): boolean {
    if (!this.sorted) throw new Error('NameSet.has before seal()');
    const h = nameHash(name);
    let lo = 0;
    let hi = this.size - 1;
    while (lo <= hi) {
      const mid = (lo + hi) >>> 1;
      const v = this.hashes[mid]!;
      if (v === h) return true;
      if (v < h) lo = mid + 1;
      else hi = mid - 1;
    }
    return false;
  }

  static hashOf = nameHash;
}

export interface ManifestPlan {
  entries: number;
  fileCount: number;
  totalBytes: number;
  manifestDigest: string;
  hasLinkGroups: boolean;
  /** Sum of the JSON bytes of the header's manifest items. */
  manifestItemBytes: number;
  /** The trailer's file list on success: every file with content (not the hard links), in order. */
  trailerFiles: { count: number; itemBytes: number; dataBytes: number; digest: string };
  names: NameSet;
}

/** A trailer file list item of a manifest entry (files with content only). */
export function trailerFileOf(e: ManifestEntry): TrailerFile {
  return e.rawPath !== undefined ? { path: e.path, rawPath: e.rawPath, size: e.size, sha256: e.sha256! } : { path: e.path, size: e.size, sha256: e.sha256! };
}

/** Whether an entry is a hard link to an earlier name of its group (`leaders`: groups seen so far). */
export function isFollower(e: ManifestEntry, leaders: Map<number, unknown>): boolean {
  return e.type === 'file' && e.linkGroup !== undefined && leaders.has(e.linkGroup);
}

/** Reads the manifest once: throws TapeFormatError for entries that cannot be archived, SourceChangedError for inconsistent link groups. */
export async function planManifest(manifest: ManifestSource): Promise<ManifestPlan> {
  const problems: string[] = [];
  const summary = new ManifestSummary();
  const names = new NameSet();
  const leaders = new Map<number, { path: string; size: number; sha256: string | undefined }>();
  const inconsistent: BadEntry[] = [];
  let manifestItemBytes = 0;
  const files = { count: 0, itemBytes: 0, dataBytes: 0, hash: createHash('sha256') };
  for await (const e of entriesOf(manifest)) {
    const bytes = pathBytes(e);
    const label = JSON.stringify(e.path);
    if (problems.length < 20) {
      const bad = invalidName(bytes);
      if (bad) problems.push(`${label}: ${bad}`);
      if (!Number.isSafeInteger(e.size) || e.size < 0) problems.push(`${label}: invalid size ${e.size}`);
      if (e.type === 'file' && !SHA256_RE.test(e.sha256 ?? '')) problems.push(`${label}: a file without a valid sha256`);
      if (e.type === 'symlink' && typeof e.linkTarget !== 'string') problems.push(`${label}: a symlink without linkTarget`);
      if (e.linkGroup !== undefined && (e.type !== 'file' || !Number.isSafeInteger(e.linkGroup) || e.linkGroup < 1)) {
        problems.push(`${label}: linkGroup ${e.linkGroup} on a ${e.type} (hard link groups are positive integers on regular files)`);
      }
      if (e.type !== 'file' && e.type !== 'dir' && e.type !== 'symlink') problems.push(`${label}: unknown type ${String(e.type)}`);
    }
    names.add(bytes);
    summary.add(e);
    manifestItemBytes += jsonBytes(manifestEntryJson(e));
    if (e.type !== 'file') continue;
    if (isFollower(e, leaders)) {
      // Every name of a hard link group is one file: names that disagree were scanned while it changed.
      const l = leaders.get(e.linkGroup!)!;
      if (e.size !== l.size || e.sha256 !== l.sha256) {
        inconsistent.push({
          path: e.path,
          reason: `a hard link of ${JSON.stringify(l.path)} with another size or checksum in the manifest (changed during the scan)`,
        });
      }
      continue;
    }
    if (e.linkGroup !== undefined) leaders.set(e.linkGroup, { path: e.path, size: e.size, sha256: e.sha256 });
    const f = trailerFileOf(e);
    files.count++;
    files.itemBytes += jsonBytes(f);
    files.dataBytes += e.size;
    files.hash.update(`${bytes.toString('base64')} ${f.size} ${f.sha256}\n`);
  }
  const twice = names.seal();
  if (twice.size) {
    // Rare: find the names again to say which.
    for await (const e of entriesOf(manifest)) {
      if (twice.has(NameSet.hashOf(pathBytes(e)))) problems.push(`${JSON.stringify(e.path)}: listed twice`);
      if (problems.length >= 20) break;
    }
  }
  if (problems.length) {
    throw new TapeFormatError(`the manifest cannot be archived: ${problems.slice(0, 10).join('; ')}${problems.length > 10 ? '; ...' : ''}`, {
      problems,
    });
  }
  if (inconsistent.length) throw new SourceChangedError(inconsistent);
  const sum = summary.result();
  return {
    entries: summary.entries,
    fileCount: sum.fileCount,
    totalBytes: sum.totalBytes,
    manifestDigest: sum.digest,
    hasLinkGroups: summary.hasLinkGroups,
    manifestItemBytes,
    trailerFiles: { count: files.count, itemBytes: files.itemBytes, dataBytes: files.dataBytes, digest: files.hash.digest('hex') },
    names,
  };
}
