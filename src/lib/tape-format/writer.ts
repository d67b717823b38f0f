/**
 * Writing: the label (tape file 0) and one tape file per target (header.json, data/...,
 * trailer.json). The content of every file is hashed while it streams into the tar and
 * checked against the manifest; any difference fails the whole file with SourceChangedError.
 */
import { createHash } from 'node:crypto';
import { pathBytes, summarize, type ManifestEntry } from '../domain/manifest.ts';
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
  type SourceEntry,
  type TapeLabel,
  type TargetHeader,
  type TargetHeaderInit,
  type Trailer,
  type TrailerFile,
} from './format.ts';
import { END_OF_ARCHIVE, encodeHeader, encodeSmallMember, padding } from './tar.ts';
import { TarOutput, type ChunkWriter } from './output.ts';

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
    writtenAt: init.writtenAt,
    ...derived,
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

function errnoCode(e: unknown): string | undefined {
  const c = (e as { code?: unknown } | null)?.code;
  return typeof c === 'string' ? c : undefined;
}

export interface WriteTargetOptions {
  /** The TapeFileWriter (or anything with write()); the caller opens and closes it. */
  writer: ChunkWriter;
  /** Header fields and the manifest; entries/fileCount/totalBytes/manifestDigest are derived. */
  header: TargetHeaderInit;
  /** What to archive, in the order to write it. */
  source: AsyncIterable<SourceEntry> | Iterable<SourceEntry>;
  /** Called with the bytes the writer has accepted so far. */
  onProgress?: (bytesDone: number) => void;
  signal?: AbortSignal;
}

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
  for (const e of header.manifest) index.set(pathBytes(e).toString('base64'), { e, seen: false });

  const out = new TarOutput(opts.writer, { onProgress: opts.onProgress });
  const problems: BadEntry[] = [];
  const problem = (e: Pick<ManifestEntry, 'path'>, reason: string) => {
    problems.push({ path: e.path, reason });
    out.discard();
  };
  const files: TrailerFile[] = [];
  let dataBytes = 0;
  const writtenAt = seconds(header.writtenAt);
  const { manifest, ...head } = header;

  try {
    await putJsonMember(out, HEADER_MEMBER, encodeJsonWithList(head, 'manifest', manifestJson(manifest)), writtenAt);
    await putAll(out, [encodeHeader({ name: DATA_PREFIX, type: 'dir', mode: 0o755, mtime: writtenAt, size: 0 })]);

    for await (const se of opts.source) {
      signal?.throwIfAborted();
      const f = se.entry;
      const bytes = pathBytes(f);
      const slot = index.get(bytes.toString('base64'));
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
        if (f.linkTarget !== m.linkTarget) {
          problem(m, `symlink target changed since the scan: ${JSON.stringify(m.linkTarget)} -> ${JSON.stringify(f.linkTarget)}`);
          continue;
        }
        const linkname = Buffer.from(m.linkTarget ?? '', 'utf8');
        const p = out.put(encodeHeader({ name: Buffer.concat([DATA_PREFIX, bytes]), type: 'symlink', mode: m.mode, mtime, size: 0, linkname }));
        if (p) await p;
        continue;
      }
      // Regular file.
      const size = m.size;
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
    }

    for (const { e, seen } of index.values()) if (!seen) problem(e, 'missing from the source (deleted since the scan?)');
    if (problems.length) throw new SourceChangedError(problems);

    const trailer: Trailer = {
      format: header.format,
      targetId: header.target.id,
      taskId: header.taskId,
      fileCount: files.length,
      dataBytes,
      manifestDigest: header.manifestDigest,
      digest: filesDigest(files),
      complete: true,
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
