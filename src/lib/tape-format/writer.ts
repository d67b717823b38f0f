/**
 * Writing: the label (tape file 0) and one tape file per target (header.json, data/...,
 * trailer.json). The content of every file is hashed while it streams into the tar and
 * checked against the manifest; any difference fails the whole file with SourceChangedError.
 */
import { createHash } from 'node:crypto';
import { entriesOf, linkTargetBytes, pathBytes, type ManifestEntry, type ManifestSource } from '../domain/manifest.ts';
import { isFollower, planManifest, trailerFileOf, type ManifestPlan } from './manifest-plan.ts';
import { ManifestCursor } from './manifest-cursor.ts';
import {
  DATA_DIR,
  FORMAT,
  HEADER_MEMBER,
  LABEL_MEMBER,
  SourceChangedError,
  TRAILER_MEMBER,
  TapeFormatError,
  formatMajor,
  FORMAT_MAJOR,
  jsonWithListSize,
  manifestEntryJson,
  streamJsonWithList,
  type BadEntry,
  type RootMeta,
  type SourceEntry,
  type SourceEntryFields,
  type TapeLabel,
  type TargetHeader,
  type TargetHeaderInit,
  type Trailer,
} from './format.ts';
import { END_OF_ARCHIVE, encodeHeader, encodeSmallMember, padding } from '../tar/encode.ts';
import { TarOutput, type ChunkWriter } from './output.ts';
import { errnoCode } from '../errors.ts';

const DATA_PREFIX = Buffer.from(DATA_DIR);
const SLASH = Buffer.from('/');
/** errno codes of a content read that mean "the file changed under us", not an I/O failure. */
const CHANGED_CODES = new Set(['ENOENT', 'ENOTDIR', 'ELOOP', 'EISDIR', 'ESTALE']);

function seconds(iso: string): number {
  const t = Date.parse(iso);
  return Number.isFinite(t) ? Math.floor(t / 1000) : Math.floor(Date.now() / 1000);
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
    ...(label.pool !== undefined ? { pool: label.pool } : {}),
    ...(label.capacityBytes !== undefined ? { capacityBytes: label.capacityBytes } : {}),
  };
  const member = encodeSmallMember(LABEL_MEMBER, Buffer.from(JSON.stringify(json, null, 2) + '\n'), seconds(label.createdAt));
  await writer.write(Buffer.concat([member, END_OF_ARCHIVE]));
}

// ---------------------------------------------------------------------------------------------
// Target file

/** The header's fields (all but the manifest), derived fields from the plan; checks what the caller gave. */
function headerOf(init: TargetHeaderInit, plan: ManifestPlan): Omit<TargetHeader, 'manifest'> {
  const derived = { entries: plan.entries, fileCount: plan.fileCount, totalBytes: plan.totalBytes, manifestDigest: plan.manifestDigest };
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
    ...(init.copies !== undefined ? { copies: init.copies } : {}),
    writtenAt: init.writtenAt,
    ...derived,
    ...(init.skipped?.length ? { skipped: init.skipped, skippedCount: Math.max(init.skippedCount ?? 0, init.skipped.length) } : {}),
  };
}

async function* mapEntries<T>(m: ManifestSource, f: (e: ManifestEntry) => T | undefined): AsyncGenerator<T> {
  for await (const e of entriesOf(m)) {
    const v = f(e);
    if (v !== undefined) yield v;
  }
}

async function putAll(out: TarOutput, chunks: Buffer[]): Promise<void> {
  for (const c of chunks) {
    const p = out.put(c);
    if (p) await p;
  }
}

/** A JSON member whose size is known before its bytes are (a second read of the manifest gives them). */
async function putJsonMember(out: TarOutput, name: string, size: number, chunks: AsyncIterable<Buffer>, mtime: number): Promise<void> {
  await putAll(out, [encodeHeader({ name: Buffer.from(name), type: 'file', mode: 0o644, mtime, size })]);
  let n = 0;
  for await (const c of chunks) {
    n += c.length;
    if (n > size) break;
    const p = out.put(c);
    if (p) await p;
  }
  // The manifest is read once per member: pages of a scan never change, so this is a bug or a damaged catalog.
  if (n !== size)
    throw new TapeFormatError(`${name}: the manifest read back differs from its first read (${n} bytes, ${size} expected); nothing was archived.`);
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
/** Names the source gave last, to tell "yielded twice" from "out of order". */
const RECENT = 1024;

type Key = string;

/**
 * Streams one target as a tape file: header.json, data/..., trailer.json, end of archive.
 * The manifest is read four times, never held whole: checked and measured, written into
 * header.json, read alongside the source, written into trailer.json (its list is every file
 * with content, each checked against the data as it streamed). Resolves with the tar bytes
 * given to the writer and the trailer (without its file list). Rejects with
 * SourceChangedError (listing every difference) when the source does not match the manifest,
 * with the writer's error when a write fails, or with the signal's reason when aborted; in
 * all these cases the caller must abort/discard the tape file (it has no trailer).
 */
export async function writeTargetFile(opts: WriteTargetOptions): Promise<{ bytes: number; trailer: Omit<Trailer, 'files'> }> {
  const { signal } = opts;
  signal?.throwIfAborted();
  const manifest = opts.header.manifest;
  const plan = await planManifest(manifest);
  const header = headerOf(opts.header, plan);
  signal?.throwIfAborted();

  const out = new TarOutput(opts.writer, { onProgress: opts.onProgress });
  const problems: BadEntry[] = [];
  let problemCount = 0;
  const problem = (e: Pick<ManifestEntry, 'path'>, reason: string) => {
    problemCount++;
    if (problems.length < MAX_PROBLEMS) problems.push({ path: e.path, reason });
    out.discard();
  };
  const cursor = new ManifestCursor(entriesOf(manifest), (e) => problem(e, 'missing from the source (deleted since the scan?)'));
  const recent = new Set<Key>();
  const written = { count: 0, bytes: 0, hash: createHash('sha256') };
  const writtenAt = seconds(header.writtenAt);

  try {
    const headerSize = jsonWithListSize(header, 'manifest', plan.entries, plan.manifestItemBytes);
    await putJsonMember(out, HEADER_MEMBER, headerSize, streamJsonWithList(header, 'manifest', mapEntries(manifest, manifestEntryJson)), writtenAt);
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
      const slot = await cursor.take(key);
      if (!slot) {
        dropContent(se.content);
        if (recent.has(key)) problem(f, 'yielded twice by the source');
        else if (plan.names.has(bytes)) problem(f, 'given by the source out of manifest order');
        else problem(f, 'not in the manifest (new since the scan)');
        continue;
      }
      recent.add(key);
      if (recent.size > RECENT) recent.delete(recent.values().next().value!);
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
      const leaderKey = slot.leaderKey;
      if (leaderKey !== undefined) {
        dropContent(se.content);
        const leader = cursor.leaders.get(m.linkGroup!)!;
        const leaderPath = JSON.stringify(leader.path);
        if (!leader.done) {
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
        problem(m, `became a hard link of ${JSON.stringify(Buffer.from(f.hardLinkOf, 'base64').toString('latin1'))} since the scan`);
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
      written.count++;
      written.bytes += size;
      written.hash.update(`${key} ${size} ${sha256}\n`);
      if (m.linkGroup !== undefined) {
        const l = cursor.leaders.get(m.linkGroup)!;
        l.done = true;
        l.inode = f.inode;
      }
    }
    if (!dataDirWritten) await putDataDir();
    await cursor.rest();

    if (opts.listing) {
      try {
        for await (const l of opts.listing()) {
          signal?.throwIfAborted();
          if (!plan.names.has(pathBytes(l))) problem(l, `added since the scan (a new ${l.type === 'dir' ? 'directory' : l.type}): not in the manifest`);
        }
      } catch (e) {
        // With changes already found, those are the answer (and the file is discarded either way).
        if (!problemCount || signal?.aborted) throw e;
      }
    }
    if (problemCount) throw new SourceChangedError(problems, problemCount);

    // What streamed is what the manifest lists, file for file: the trailer's list is the manifest's.
    const tf = plan.trailerFiles;
    if (written.count !== tf.count || written.bytes !== tf.dataBytes || written.hash.digest('hex') !== tf.digest) {
      throw new TapeFormatError(
        `the files written (${written.count}, ${written.bytes} bytes) are not the manifest's (${tf.count}, ${tf.dataBytes} bytes); nothing was archived.`,
      );
    }
    const trailer: Omit<Trailer, 'files'> = {
      format: header.format,
      targetId: header.target.id,
      taskId: header.taskId,
      fileCount: tf.count,
      dataBytes: tf.dataBytes,
      manifestDigest: header.manifestDigest,
      digest: tf.digest,
      complete: true,
      ...(root ? { root } : {}),
    };
    const leaders = new Map<number, true>();
    const files = mapEntries(manifest, (e) => {
      if (e.type !== 'file' || isFollower(e, leaders)) return undefined;
      if (e.linkGroup !== undefined) leaders.set(e.linkGroup, true);
      return trailerFileOf(e);
    });
    await putJsonMember(
      out,
      TRAILER_MEMBER,
      jsonWithListSize(trailer, 'files', tf.count, tf.itemBytes),
      streamJsonWithList(trailer, 'files', files),
      Math.floor(Date.now() / 1000),
    );
    await putAll(out, [END_OF_ARCHIVE]);
    await out.flush();
    return { bytes: out.bytes, trailer };
  } catch (e) {
    await out.settle();
    throw e;
  }
}
