/**
 * Writing: the label (tape file 0) and one tape file per target (header.json, data/...,
 * trailer.json). The content of every file is hashed while it streams into the tar and
 * checked against the manifest; any difference fails the whole file with SourceChangedError.
 */
import { createHash } from 'node:crypto';
import { hardLinkFollowers, linkTargetBytes, pathBytes, pathKey, summarize, type ManifestEntry } from '../domain/manifest.ts';
import {
  DATA_DIR,
  FORMAT,
  HEADER_MEMBER,
  LABEL_MEMBER,
  SourceChangedError,
  TRAILER_MEMBER,
  TapeFormatError,
  encodeJsonWithList,
  filesDigest,
  formatMajor,
  FORMAT_MAJOR,
  manifestEntryJson,
  type BadEntry,
  type RootMeta,
  type SourceEntry,
  type SourceEntryFields,
  type TapeLabel,
  type TargetHeader,
  type TargetHeaderInit,
  type Trailer,
  type TrailerFile,
} from './format.ts';
import { END_OF_ARCHIVE, encodeHeader, encodeSmallMember, padding } from '../tar/encode.ts';
import { TarOutput, type ChunkWriter } from './output.ts';
import { errnoCode } from '../errors.ts';

const DATA_PREFIX = Buffer.from(DATA_DIR);
const SLASH = Buffer.from('/');
const SHA256_RE = /^[0-9a-f]{64}$/;
/** errno codes of a content read that mean "the file changed under us", not an I/O failure. */
const CHANGED_CODES = new Set(['ENOENT', 'ENOTDIR', 'ELOOP', 'EISDIR', 'ESTALE']);

function seconds(iso: string): number {
  const t = Date.parse(iso);
  return Number.isFinite(t) ? Math.floor(t / 1000) : Math.floor(Date.now() / 1000);
}

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

/** Path and rawPath of an entry (for trailer file lists). */
function who(e: Pick<ManifestEntry, 'path' | 'rawPath'>): Pick<ManifestEntry, 'path' | 'rawPath'> {
  return e.rawPath !== undefined ? { path: e.path, rawPath: e.rawPath } : { path: e.path };
}

// ---------------------------------------------------------------------------------------------
// Label

/** Writes the label tar (tape file 0). Does not close the writer. */
export async function writeLabel(writer: ChunkWriter, label: Omit<TapeLabel, 'format'> & { format?: string }): Promise<void> {
  const format = label.format ?? FORMAT;
  if (formatMajor(format) !== FORMAT_MAJOR) throw new TapeFormatError(`cannot write a label of format ${format}; this code writes ${FORMAT}.`);
  if (!label.tapeName) throw new TapeFormatError('cannot write a label without a tape name.');
  if (!Number.isSafeInteger(label.blockSize) || label.blockSize < 512 || label.blockSize % 512 !== 0) {
    throw new TapeFormatError(`cannot write a label with block size ${label.blockSize}: use a multiple of 512 bytes.`);
  }
  const json: TapeLabel = {
    format,
    tapeName: label.tapeName,
    barcode: label.barcode,
    createdAt: label.createdAt,
    blockSize: label.blockSize,
  };
  const member = encodeSmallMember(LABEL_MEMBER, Buffer.from(JSON.stringify(json, null, 2) + '\n'), seconds(label.createdAt));
  await writer.write(Buffer.concat([member, END_OF_ARCHIVE]));
}

// ---------------------------------------------------------------------------------------------
// Target file

/** Completes and checks a header: derived fields are computed from the manifest. */
export function buildHeader(init: TargetHeaderInit): TargetHeader {
  const manifest = init.manifest;
  if (!Array.isArray(manifest)) throw new TapeFormatError('the header has no manifest (an array of entries).');
  const problems: string[] = [];
  const seen = new Set<string>();
  for (const e of manifest) {
    const bytes = pathBytes(e);
    const bad = invalidName(bytes);
    const label = JSON.stringify(e.path);
    if (bad) problems.push(`${label}: ${bad}`);
    const key = bytes.toString('base64');
    if (seen.has(key)) problems.push(`${label}: listed twice`);
    seen.add(key);
    if (!Number.isSafeInteger(e.size) || e.size < 0) problems.push(`${label}: invalid size ${e.size}`);
    if (e.type === 'file' && !SHA256_RE.test(e.sha256 ?? '')) problems.push(`${label}: a file without a valid sha256`);
    if (e.type === 'symlink' && typeof e.linkTarget !== 'string') problems.push(`${label}: a symlink without linkTarget`);
    if (e.linkGroup !== undefined && (e.type !== 'file' || !Number.isSafeInteger(e.linkGroup) || e.linkGroup < 1)) {
      problems.push(`${label}: linkGroup ${e.linkGroup} on a ${e.type} (hard link groups are positive integers on regular files)`);
    }
    if (e.type !== 'file' && e.type !== 'dir' && e.type !== 'symlink') problems.push(`${label}: unknown type ${String(e.type)}`);
    if (problems.length >= 20) break;
  }
  if (problems.length) {
    throw new TapeFormatError(`the manifest cannot be archived: ${problems.slice(0, 10).join('; ')}${problems.length > 10 ? '; ...' : ''}`, {
      problems,
    });
  }
  const sum = summarize(manifest);
  const derived = { entries: manifest.length, fileCount: sum.fileCount, totalBytes: sum.totalBytes, manifestDigest: sum.digest };
  for (const k of Object.keys(derived) as (keyof typeof derived)[]) {
    if (init[k] !== undefined && init[k] !== derived[k]) {
      throw new TapeFormatError(`the header says ${k} = ${init[k]} but its manifest gives ${derived[k]}.`);
    }
  }
  const format = init.format ?? FORMAT;
  if (formatMajor(format) !== FORMAT_MAJOR) throw new TapeFormatError(`cannot write format ${format}; this code writes ${FORMAT}.`);
  return {
    format,
    tapeName: init.tapeName,
    fileNumber: init.fileNumber,
    taskId: init.taskId,
    target: { id: init.target.id, host: init.target.host, path: init.target.path },
    scanId: init.scanId,
    ...(init.pool !== undefined ? { pool: init.pool } : {}),
    writtenAt: init.writtenAt,
    ...derived,
    ...(init.skipped?.length ? { skipped: init.skipped, skippedCount: Math.max(init.skippedCount ?? 0, init.skipped.length) } : {}),
    manifest,
  };
}

function* manifestJson(m: ManifestEntry[]): Iterable<ManifestEntry> {
  for (const e of m) yield manifestEntryJson(e);
}

async function putAll(out: TarOutput, chunks: Buffer[]): Promise<void> {
  for (const c of chunks) {
    const p = out.put(c);
    if (p) await p;
  }
}

async function putJsonMember(out: TarOutput, name: string, chunks: Buffer[], mtime: number): Promise<void> {
  const size = chunks.reduce((n, c) => n + c.length, 0);
  await putAll(out, [encodeHeader({ name: Buffer.from(name), type: 'file', mode: 0o644, mtime, size }), ...chunks]);
  await out.zeros(padding(size));
}

function dropContent(content: SourceEntry['content']): void {
  const c = content as { destroy?: () => void } | undefined;
  if (c && typeof c.destroy === 'function') c.destroy();
}

export interface WriteTargetOptions {
  /** The TapeFileWriter (or anything with write()); the caller opens and closes it. */
  writer: ChunkWriter;
  /** Header fields and the manifest; entries/fileCount/totalBytes/manifestDigest are derived. */
  header: TargetHeaderInit;
  /** What to archive, in the order to write it. */
  source: AsyncIterable<SourceEntry> | Iterable<SourceEntry>;
  /**
   * Lists the source as it is once every entry was streamed (files, directories and symlinks;
   * not special files). Any entry not in the manifest was added since the scan and fails the
   * write: without this, an added file would be silently missing from the tape file.
   */
  listing?: () => AsyncIterable<Pick<SourceEntryFields, 'path' | 'rawPath' | 'type'>>;
  /** Called with the bytes the writer has accepted so far. */
  onProgress?: (bytesDone: number) => void;
  signal?: AbortSignal;
}

/** At most this many differences are kept (all are counted). */
const MAX_PROBLEMS = 1000;

/**
 * Streams one target as a tape file: header.json, data/..., trailer.json, end of archive.
 * Resolves with the tar bytes given to the writer and the trailer. Rejects with
 * SourceChangedError (listing every difference) when the source does not match the manifest,
 * with the writer's error when a write fails, or with the signal's reason when aborted; in
 * all these cases the caller must abort/discard the tape file (it has no trailer).
 */
export async function writeTargetFile(opts: WriteTargetOptions): Promise<{ bytes: number; trailer: Trailer }> {
  const { signal } = opts;
  signal?.throwIfAborted();
  const header = buildHeader(opts.header);
  const index = new Map<string, { e: ManifestEntry; seen: boolean }>();
  for (const e of header.manifest) index.set(pathKey(e), { e, seen: false });
  /** Hard link followers -> their leader's key; leaders written so far -> the source's inode. */
  const followers = hardLinkFollowers(header.manifest);
  const leaders = new Map<string, { inode: string | undefined }>();
  // Every name of a hard link group is one file: a group whose names disagree in size or
  // checksum was scanned while it changed.
  const inconsistent: BadEntry[] = [];
  for (const [key, leaderKey] of followers) {
    const m = index.get(key)!.e;
    const l = index.get(leaderKey)!.e;
    if (m.size !== l.size || m.sha256 !== l.sha256) {
      inconsistent.push({
        path: m.path,
        reason: `a hard link of ${JSON.stringify(l.path)} with another size or checksum in the manifest (changed during the scan)`,
      });
    }
  }
  if (inconsistent.length) throw new SourceChangedError(inconsistent);

  const out = new TarOutput(opts.writer, { onProgress: opts.onProgress });
  const problems: BadEntry[] = [];
  let problemCount = 0;
  const problem = (e: Pick<ManifestEntry, 'path'>, reason: string) => {
    problemCount++;
    if (problems.length < MAX_PROBLEMS) problems.push({ path: e.path, reason });
    out.discard();
  };
  const files: TrailerFile[] = [];
  let dataBytes = 0;
  const writtenAt = seconds(header.writtenAt);
  const { manifest, ...head } = header;

  try {
    await putJsonMember(out, HEADER_MEMBER, encodeJsonWithList(head, 'manifest', manifestJson(manifest)), writtenAt);
    // data/ carries the root directory's mode and mtime when the source reports them (its
    // first entry); otherwise 0755 and the time of writing.
    let root: RootMeta | undefined;
    let dataDirWritten = false;
    const putDataDir = async () => {
      dataDirWritten = true;
      const meta = root ? { mode: root.mode, mtime: Math.floor(root.mtimeMs / 1000) } : { mode: 0o755, mtime: writtenAt };
      await putAll(out, [encodeHeader({ name: DATA_PREFIX, type: 'dir', size: 0, ...meta })]);
    };

    for await (const se of opts.source) {
      signal?.throwIfAborted();
      const f = se.entry;
      if (f.root) {
        if (dataDirWritten) problem({ path: '.' }, 'the source reported the root directory after other entries');
        else if (f.type !== 'dir') problem({ path: '.' }, `the target root is a ${f.type} now, not a directory`);
        else root = { mode: (f.mode ?? 0o755) & 0o7777, mtimeMs: f.mtimeMs ?? writtenAt * 1000 };
        continue;
      }
      if (!dataDirWritten) await putDataDir();
      const bytes = pathBytes(f);
      const key = bytes.toString('base64');
      const slot = index.get(key);
      if (!slot) {
        problem(f, 'not in the manifest (new since the scan)');
        dropContent(se.content);
        continue;
      }
      if (slot.seen) {
        problem(f, 'yielded twice by the source');
        dropContent(se.content);
        continue;
      }
      slot.seen = true;
      const m = slot.e;
      if (f.type !== m.type) {
        problem(m, `type changed since the scan: ${m.type} in the manifest, ${f.type} now`);
        dropContent(se.content);
        continue;
      }
      const mtime = Math.floor(m.mtimeMs / 1000);
      if (m.type === 'dir') {
        const p = out.put(encodeHeader({ name: Buffer.concat([DATA_PREFIX, bytes, SLASH]), type: 'dir', mode: m.mode, mtime, size: 0 }));
        if (p) await p;
        continue;
      }
      if (m.type === 'symlink') {
        const linkname = linkTargetBytes(m);
        if (!linkTargetBytes(f).equals(linkname)) {
          problem(m, `symlink target changed since the scan: ${JSON.stringify(m.linkTarget)} -> ${JSON.stringify(f.linkTarget)}`);
          continue;
        }
        const p = out.put(encodeHeader({ name: Buffer.concat([DATA_PREFIX, bytes]), type: 'symlink', mode: m.mode, mtime, size: 0, linkname }));
        if (p) await p;
        continue;
      }
      // Regular file: a hard link to its group's leader, or content.
      const size = m.size;
      const leaderKey = followers.get(key);
      if (leaderKey !== undefined) {
        dropContent(se.content);
        const leader = leaders.get(leaderKey);
        const leaderPath = JSON.stringify(index.get(leaderKey)!.e.path);
        if (!leader) {
          problem(m, `a hard link of ${leaderPath}, which could not be archived`);
        } else if (f.hardLinkOf !== undefined ? f.hardLinkOf !== leaderKey : f.inode === undefined || f.inode !== leader.inode) {
          problem(m, `no longer a hard link of ${leaderPath} (replaced or relinked since the scan)`);
        } else if (f.hardLinkOf === undefined && f.size !== size) {
          problem(m, `size changed since the scan: ${size} bytes in the manifest, ${f.size} now`);
        } else {
          const linkname = Buffer.concat([DATA_PREFIX, Buffer.from(leaderKey, 'base64')]);
          const p = out.put(encodeHeader({ name: Buffer.concat([DATA_PREFIX, bytes]), type: 'hardlink', mode: m.mode, mtime, size: 0, linkname }));
          if (p) await p;
        }
        continue;
      }
      if (f.hardLinkOf !== undefined) {
        dropContent(se.content);
        const other = index.get(f.hardLinkOf)?.e.path ?? Buffer.from(f.hardLinkOf, 'base64').toString('latin1');
        problem(m, `became a hard link of ${JSON.stringify(other)} since the scan`);
        continue;
      }
      if (f.size !== size) {
        problem(m, `size changed since the scan: ${size} bytes in the manifest, ${f.size} now`);
        dropContent(se.content);
        continue;
      }
      const hp = out.put(encodeHeader({ name: Buffer.concat([DATA_PREFIX, bytes]), type: 'file', mode: m.mode, mtime, size }));
      if (hp) await hp;
      const hash = createHash('sha256');
      let n = 0;
      let grew = false;
      const content = se.content;
      try {
        if (content) {
          const sync = typeof (content as Iterable<Buffer>)[Symbol.iterator] === 'function';
          const it = content as AsyncIterable<Buffer | string | Uint8Array> & Iterable<Buffer | string | Uint8Array>;
          const take = (c: Buffer | string | Uint8Array): Promise<void> | undefined | false => {
            let b = Buffer.isBuffer(c) ? c : typeof c === 'string' ? Buffer.from(c) : Buffer.from(c.buffer, c.byteOffset, c.byteLength);
            if (n + b.length > size) {
              grew = true;
              b = b.subarray(0, size - n);
            }
            n += b.length;
            if (b.length) hash.update(b);
            const p = b.length ? out.put(b) : undefined;
            return grew ? false : p;
          };
          if (sync) {
            for (const c of it as Iterable<Buffer>) {
              const p = take(c);
              if (p === false) break;
              if (p) await p;
            }
          } else {
            for await (const c of it) {
              const p = take(c);
              if (p === false) break;
              if (p) await p;
              if (signal?.aborted) break;
            }
            signal?.throwIfAborted();
          }
        }
      } catch (e) {
        const code = errnoCode(e);
        // errno codes of the content stream (not of the writer) that mean the file changed
        if (e !== out.failure && code && CHANGED_CODES.has(code)) {
          problem(m, `could not be read (${code}): deleted or replaced since the scan`);
          continue;
        }
        throw e;
      }
      if (grew) {
        problem(m, `changed while being read: more than the ${size} bytes of the manifest`);
        continue;
      }
      if (n < size) {
        problem(m, `changed while being read: only ${n} of ${size} bytes`);
        continue;
      }
      const sha256 = hash.digest('hex');
      if (sha256 !== m.sha256) {
        problem(m, `content changed since the scan: SHA-256 ${sha256}, manifest ${m.sha256}`);
        continue;
      }
      const zp = out.zeros(padding(size));
      if (zp) await zp;
      files.push({ ...who(m), size, sha256 });
      dataBytes += size;
      if (m.linkGroup !== undefined) leaders.set(key, { inode: f.inode });
    }
    if (!dataDirWritten) await putDataDir();

    for (const { e, seen } of index.values()) if (!seen) problem(e, 'missing from the source (deleted since the scan?)');
    if (opts.listing) {
      try {
        for await (const l of opts.listing()) {
          signal?.throwIfAborted();
          if (!index.has(pathKey(l))) problem(l, `added since the scan (a new ${l.type === 'dir' ? 'directory' : l.type}): not in the manifest`);
        }
      } catch (e) {
        // With changes already found, those are the answer (and the file is discarded either way).
        if (!problemCount || signal?.aborted) throw e;
      }
    }
    if (problemCount) throw new SourceChangedError(problems, problemCount);

    const trailer: Trailer = {
      format: header.format,
      targetId: header.target.id,
      taskId: header.taskId,
      fileCount: files.length,
      dataBytes,
      manifestDigest: header.manifestDigest,
      digest: filesDigest(files),
      complete: true,
      ...(root ? { root } : {}),
      files,
    };
    const { files: list, ...thead } = trailer;
    await putJsonMember(out, TRAILER_MEMBER, encodeJsonWithList(thead, 'files', list), Math.floor(Date.now() / 1000));
    await putAll(out, [END_OF_ARCHIVE]);
    await out.flush();
    return { bytes: out.bytes, trailer };
  } catch (e) {
    await out.settle();
    throw e;
  }
}
