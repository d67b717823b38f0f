/**
 * A local directory as a data source: `scanLocalDirectory` builds the manifest (what the
 * data host's scan does), `localSource` streams the entries of a manifest from disk for
 * `writeTargetFile`. Names are handled as bytes throughout (readdir with encoding 'buffer'),
 * so names that are not valid UTF-8 survive.
 */
import { createHash } from 'node:crypto';
import { close, constants, open, read } from 'node:fs';
import { lstat, open as openHandle, readdir, readlink, stat } from 'node:fs/promises';
import { resolve } from 'node:path';
import { pathBytes, pathFields, type ManifestEntry } from '../domain/manifest.ts';
import type { SourceEntry } from './format.ts';
import { isUtf8 } from './tar.ts';

const SLASH = Buffer.from('/');
const READ_FLAGS = constants.O_RDONLY | (constants.O_NOFOLLOW ?? 0) | (constants.O_NONBLOCK ?? 0);
const DEFAULT_CHUNK = 1024 * 1024;

export interface ScanWarning {
  path: string;
  rawPath?: string;
  reason: string;
}

export interface ScanOptions {
  /** Entries that are skipped (fifos, sockets, devices, unrepresentable symlinks). */
  onWarning?: (w: ScanWarning) => void;
  signal?: AbortSignal;
  /** Read size when hashing (default 1 MiB). */
  chunkSize?: number;
}

function join(a: Buffer, b: Buffer): Buffer {
  return a.length ? Buffer.concat([a, SLASH, b]) : b;
}

function isMissing(e: unknown): boolean {
  const c = (e as { code?: string } | null)?.code;
  return c === 'ENOENT' || c === 'ENOTDIR';
}

async function hashFile(path: Buffer, chunkSize: number, buffers: [Buffer, Buffer]): Promise<{ size: number; sha256: string }> {
  const h = createHash('sha256');
  let size = 0;
  for await (const chunk of fileChunks(path, chunkSize, buffers)) {
    h.update(chunk);
    size += chunk.length;
  }
  return { size, sha256: h.digest('hex') };
}

/**
 * Scans `root` recursively: depth first, each directory's entries sorted by name bytes, a
 * directory listed before its contents. Regular files are hashed (SHA-256); directories and
 * symlinks are recorded; other types are skipped with a warning. The root itself is not an
 * entry. Paths are relative to root; `mode` is the permission bits; `size` is 0 for
 * directories and symlinks.
 */
export async function* scanLocalDirectory(root: string, opts: ScanOptions = {}): AsyncGenerator<ManifestEntry> {
  const rootAbs = Buffer.from(resolve(root));
  const st = await stat(rootAbs);
  if (!st.isDirectory()) throw new Error(`cannot scan ${root}: not a directory`);
  const chunkSize = opts.chunkSize ?? DEFAULT_CHUNK;
  const warn = (rel: Buffer, reason: string) => opts.onWarning?.({ ...pathFields(rel), reason });
  // One pair of read buffers for the whole scan: files are hashed one after another.
  const buffers: [Buffer, Buffer] = [Buffer.allocUnsafe(chunkSize), Buffer.allocUnsafe(chunkSize)];

  async function* walk(absDir: Buffer, relDir: Buffer): AsyncGenerator<ManifestEntry> {
    const names = (await readdir(absDir, { encoding: 'buffer' })) as Buffer[];
    names.sort(Buffer.compare);
    for (const name of names) {
      opts.signal?.throwIfAborted();
      const rel = join(relDir, name);
      const abs = join(absDir, name);
      let s;
      try {
        s = await lstat(abs);
      } catch (e) {
        if (isMissing(e)) continue; // deleted while scanning
        throw e;
      }
      const base = { ...pathFields(rel), mtimeMs: s.mtimeMs, mode: s.mode & 0o7777 };
      if (s.isDirectory()) {
        yield { ...base, type: 'dir', size: 0 };
        yield* walk(abs, rel);
      } else if (s.isFile()) {
        let h;
        try {
          h = await hashFile(abs, chunkSize, buffers);
        } catch (e) {
          if (isMissing(e)) continue;
          throw e;
        }
        yield { ...base, type: 'file', size: h.size, sha256: h.sha256 };
      } else if (s.isSymbolicLink()) {
        const target = (await readlink(abs, { encoding: 'buffer' })) as Buffer;
        if (!isUtf8(target)) {
          warn(rel, 'skipped: symlink target is not valid UTF-8 (the manifest cannot hold it exactly)');
          continue;
        }
        yield { ...base, type: 'symlink', size: 0, linkTarget: target.toString('utf8') };
      } else {
        const kind = s.isFIFO() ? 'fifo' : s.isSocket() ? 'socket' : s.isCharacterDevice() ? 'character device' : s.isBlockDevice() ? 'block device' : 'special file';
        warn(rel, `skipped: ${kind}`);
      }
    }
  }
  yield* walk(rootAbs, Buffer.alloc(0));
}

/**
 * Reads a file in chunks of up to `chunkSize` bytes with one read ahead of the consumer,
 * alternating between two buffers: a yielded chunk is valid until the consumer asks for the
 * next one. Pass `buffers` to reuse a pair across files. Opens the file when iteration
 * starts; does not follow a symlink (ELOOP) nor block on a fifo.
 */
export async function* fileChunks(path: Buffer | string, chunkSize = DEFAULT_CHUNK, buffers?: [Buffer, Buffer]): AsyncGenerator<Buffer> {
  const bufs = buffers ?? [Buffer.allocUnsafe(chunkSize), Buffer.allocUnsafe(chunkSize)];
  const fh = await openHandle(path, READ_FLAGS);
  let pending: Promise<{ bytesRead: number; buffer: Buffer }> | undefined;
  try {
    let pos = 0;
    let i = 0;
    pending = fh.read(bufs[0], 0, bufs[0].length, pos);
    for (;;) {
      const { bytesRead, buffer } = await pending;
      pending = undefined;
      if (bytesRead === 0) return;
      pos += bytesRead;
      i ^= 1;
      pending = fh.read(bufs[i]!, 0, bufs[i]!.length, pos);
      yield bytesRead === buffer.length ? buffer : buffer.subarray(0, bytesRead);
    }
  } finally {
    if (pending) await pending.catch(() => undefined);
    await fh.close();
  }
}

/**
 * Reads a small file whole: up to size + 1 bytes (one more than expected shows growth).
 * Callback fs calls: cheaper than FileHandle for many small files.
 */
function readSmall(path: Buffer, size: number): Promise<Buffer> {
  return new Promise((resolvePromise, reject) => {
    open(path, READ_FLAGS, (err, fd) => {
      if (err) return reject(err);
      const buf = Buffer.allocUnsafe(size + 1);
      let got = 0;
      const step = () =>
        read(fd, buf, got, buf.length - got, got, (rerr, n) => {
          if (rerr) return close(fd, () => reject(rerr));
          got += n;
          // Done at EOF, when grown past size, or when exactly size bytes came with a short read.
          if (n === 0 || got >= size) {
            close(fd, (cerr) => (cerr ? reject(cerr) : resolvePromise(buf.subarray(0, got))));
          } else {
            step();
          }
        });
      step();
    });
  });
}

export interface LocalSourceOptions {
  /** Entries prepared ahead of the writer (default 64). */
  readAhead?: number;
  /** Bytes of small files read ahead (default 32 MiB). */
  readAheadBytes?: number;
  /** Files up to this size are read whole, ahead of time (default 1 MiB). */
  smallFileMax?: number;
  /** Read size for larger files (default 1 MiB). */
  chunkSize?: number;
}

/**
 * Streams the entries of `manifest` from `root`, in manifest order, with their current
 * metadata (lstat) and content from disk. An entry that no longer exists is not yielded (the
 * writer reports it missing). Small files are read ahead, several at a time; larger ones
 * stream in 1 MiB chunks when the writer gets to them.
 */
export async function* localSource(
  root: string,
  manifest: Iterable<ManifestEntry> | AsyncIterable<ManifestEntry>,
  opts: LocalSourceOptions = {},
): AsyncGenerator<SourceEntry> {
  const rootAbs = Buffer.from(resolve(root));
  const readAhead = Math.max(1, opts.readAhead ?? 64);
  const readAheadBytes = opts.readAheadBytes ?? 32 * 1024 * 1024;
  const smallMax = opts.smallFileMax ?? 1024 * 1024;
  const chunkSize = opts.chunkSize ?? DEFAULT_CHUNK;

  const prepare = async (e: ManifestEntry): Promise<SourceEntry | null> => {
    const abs = join(rootAbs, pathBytes(e));
    const who = e.rawPath !== undefined ? { path: e.path, rawPath: e.rawPath } : { path: e.path };
    let s;
    try {
      s = await lstat(abs);
    } catch (err) {
      if (isMissing(err)) return null;
      throw err;
    }
    const base = { ...who, mode: s.mode & 0o7777, mtimeMs: s.mtimeMs };
    if (s.isDirectory()) return { entry: { ...base, type: 'dir', size: 0 } };
    if (s.isSymbolicLink()) {
      const t = (await readlink(abs, { encoding: 'buffer' })) as Buffer;
      return { entry: { ...base, type: 'symlink', size: 0, linkTarget: t.toString('utf8') } };
    }
    if (!s.isFile()) return null;
    if (s.size <= smallMax) {
      try {
        const buf = await readSmall(abs, s.size);
        return { entry: { ...base, type: 'file', size: s.size }, content: [buf] };
      } catch (err) {
        const c = (err as { code?: string }).code;
        if (isMissing(err) || c === 'ELOOP') return null;
        throw err;
      }
    }
    return { entry: { ...base, type: 'file', size: s.size }, content: fileChunks(abs, chunkSize) };
  };

  const queue: { p: Promise<SourceEntry | null>; bytes: number }[] = [];
  let queuedBytes = 0;
  const next = async (): Promise<SourceEntry | null> => {
    const q = queue.shift()!;
    queuedBytes -= q.bytes;
    return q.p;
  };
  for await (const e of manifest) {
    const p = prepare(e);
    p.catch(() => undefined); // awaited below; avoid an unhandled rejection meanwhile
    const bytes = e.type === 'file' && e.size <= smallMax ? e.size : 0;
    queue.push({ p, bytes });
    queuedBytes += bytes;
    while (queue.length >= readAhead || queuedBytes > readAheadBytes) {
      const r = await next();
      if (r) yield r;
    }
  }
  while (queue.length) {
    const r = await next();
    if (r) yield r;
  }
}
