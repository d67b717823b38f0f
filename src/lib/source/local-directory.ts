/**
 * A local directory as a data source: `scanLocalDirectory` builds the manifest (what the
 * data host's scan does), `localSource` streams the entries of a manifest from disk for
 * `writeTargetFile`. Names are handled as bytes throughout (readdir with encoding 'buffer'),
 * so names that are not valid UTF-8 survive.
 *
 * Per-file system calls run synchronously in a worker thread (fs-worker.ts): for many small
 * files that is several times cheaper than one thread-pool round trip per call, and it keeps
 * the main thread free for hashing. Large files stream with 1 MiB asynchronous reads.
 */
import { constants } from 'node:fs';
import { open as openHandle, stat } from 'node:fs/promises';
import { resolve } from 'node:path';
import { linkTargetFields, pathBytes, pathFields, skipReason, type ManifestEntry } from '../domain/manifest.ts';
import type { SourceEntry, SourceEntryFields } from '../tape-format/format.ts';
import { FsWorker, workerError, type WorkerErrorInfo } from './fs-worker.ts';

const SLASH = Buffer.from('/');
const READ_FLAGS = constants.O_RDONLY | (constants.O_NOFOLLOW ?? 0) | (constants.O_NONBLOCK ?? 0);
const DEFAULT_CHUNK = 1024 * 1024;

export interface ScanWarning {
  path: string;
  rawPath?: string;
  reason: string;
}

export interface ScanOptions {
  /** Entries that are skipped by policy (fifos, sockets, device nodes). */
  onWarning?: (w: ScanWarning) => void;
  signal?: AbortSignal;
  /** Read size when hashing (default 1 MiB). */
  chunkSize?: number;
  /** Names relative to root (nested targets) left out with their subtrees. */
  excludes?: readonly string[];
}

/** The exclude names as the worker compares them: the bytes of each name, one char per byte. */
const excludesForWorker = (excludes: readonly string[] | undefined) => (excludes ?? []).map((x) => Buffer.from(x).toString('latin1'));

const fromLatin1 = (s: string) => Buffer.from(s, 'latin1');

interface ScanItem {
  rel: string;
  type: 'dir' | 'file' | 'symlink' | 'other';
  size: number;
  mtimeMs: number;
  mode: number;
  uid?: number;
  gid?: number;
  sha256?: string;
  link?: string;
  kind?: string;
  group?: number;
}
interface ScanReply {
  entries: ScanItem[];
  done: boolean;
  error?: WorkerErrorInfo;
}

/**
 * Scans `root` recursively: depth first, each directory's entries sorted by name bytes, a
 * directory listed before its contents. Regular files are hashed (SHA-256); directories and
 * symlinks are recorded; other types are skipped with a warning; `excludes` (nested targets)
 * are left out with everything under them. The root itself is not an entry. Paths are relative to root; `mode` is the permission bits; `size` is 0 for
 * directories and symlinks. Entries that vanish during the scan are left out.
 */
export async function* scanLocalDirectory(root: string, opts: ScanOptions = {}): AsyncGenerator<ManifestEntry> {
  const rootAbs = resolve(root);
  const st = await stat(rootAbs);
  if (!st.isDirectory()) throw new Error(`cannot scan ${root}: not a directory`);
  const walk = walkInWorker(
    { mode: 'scan', root: Buffer.from(rootAbs), chunkSize: opts.chunkSize ?? DEFAULT_CHUNK, excludes: excludesForWorker(opts.excludes) },
    1000,
    256 * 1024 * 1024,
  );
  for await (const it of walk) {
    opts.signal?.throwIfAborted();
    const rel = fromLatin1(it.rel);
    const base = {
      ...pathFields(rel),
      mtimeMs: it.mtimeMs,
      mode: it.mode,
      ...(it.uid !== undefined && it.gid !== undefined ? { uid: it.uid, gid: it.gid } : {}),
    };
    if (it.type === 'dir') yield { ...base, type: 'dir', size: 0 };
    else if (it.type === 'file') yield { ...base, type: 'file', size: it.size, sha256: it.sha256!, ...(it.group ? { linkGroup: it.group } : {}) };
    else if (it.type === 'symlink') yield { ...base, type: 'symlink', size: 0, ...linkTargetFields(fromLatin1(it.link!)) };
    else opts.onWarning?.({ ...pathFields(rel), reason: skipReason(it.kind ?? 'special file') });
  }
}

/**
 * Lists `root` as it is now, without reading any file: every directory, regular file and
 * symlink (special files and `excludes` are left out, as the scan leaves them out), for the
 * writer's check that nothing was added since the scan.
 */
export async function* listLocalDirectory(
  root: string,
  opts: { signal?: AbortSignal; excludes?: readonly string[] } = {},
): AsyncGenerator<Pick<SourceEntryFields, 'path' | 'rawPath' | 'type'>> {
  const workerData = { mode: 'list', root: Buffer.from(resolve(root)), excludes: excludesForWorker(opts.excludes) };
  for await (const it of walkInWorker(workerData, 5000, Number.MAX_SAFE_INTEGER)) {
    opts.signal?.throwIfAborted();
    if (it.type !== 'other') yield { ...pathFields(fromLatin1(it.rel)), type: it.type };
  }
}

/**
 * The worker's walk (scan or list mode) in batches, one batch requested ahead so the worker
 * walks while the consumer handles the last one; the worker ends with the iteration.
 */
async function* walkInWorker(workerData: Record<string, unknown>, maxEntries: number, maxBytes: number): AsyncGenerator<ScanItem> {
  const worker = new FsWorker<{ maxEntries: number; maxBytes: number }, ScanReply>(workerData);
  const ask = () => {
    const p = worker.request({ maxEntries, maxBytes });
    p.catch(() => undefined); // a prefetch left pending when the consumer stops early
    return p;
  };
  try {
    let next = ask();
    for (;;) {
      const reply = await next;
      if (!reply.done) next = ask();
      yield* reply.entries;
      if (reply.error) throw workerError(reply.error);
      if (reply.done) return;
    }
  } finally {
    await worker.close();
  }
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

export interface LocalSourceOptions {
  /** Files up to this size are read whole by the worker, ahead of time (default 1 MiB). */
  smallFileMax?: number;
  /** Small-file bytes per worker batch (default 4 MiB). */
  batchBytes?: number;
  /** Entries per worker batch (default 512). */
  batchEntries?: number;
  /** Batches requested ahead (default 3). */
  batchesAhead?: number;
  /** Read size for larger files (default 1 MiB). */
  chunkSize?: number;
  signal?: AbortSignal;
}

interface ReadResult {
  missing?: boolean;
  error?: WorkerErrorInfo;
  type?: 'dir' | 'file' | 'symlink' | string;
  mode?: number;
  mtimeMs?: number;
  size?: number;
  link?: string;
  off?: number;
  len?: number;
  large?: boolean;
  inode?: string;
  /** A hard link follower: metadata only, its content is its leader's. */
  skipped?: boolean;
}
interface ReadReply {
  results: ReadResult[];
  ab: ArrayBuffer;
}
interface Batch {
  entries: ManifestEntry[];
  reply: Promise<ReadReply>;
}

/**
 * Streams the entries of `manifest` from `root`, in manifest order, with their current
 * metadata (lstat) and content from disk. An entry that no longer exists (or is no longer a
 * file, directory or symlink) is not yielded: the writer reports it missing. Small files are
 * read ahead in batches by a worker thread; their buffers are reused once the consumer has
 * moved past them (the writer copies content before asking for the next entry). Larger files
 * stream in 1 MiB chunks when the consumer gets to them.
 */
export async function* localSource(
  root: string,
  manifest: Iterable<ManifestEntry> | AsyncIterable<ManifestEntry>,
  opts: LocalSourceOptions = {},
): AsyncGenerator<SourceEntry> {
  const rootAbs = Buffer.from(resolve(root));
  const smallMax = opts.smallFileMax ?? 1024 * 1024;
  const batchBytes = opts.batchBytes ?? 4 * 1024 * 1024;
  const batchEntries = opts.batchEntries ?? 512;
  const ahead = Math.max(1, opts.batchesAhead ?? 3);
  const chunkSize = opts.chunkSize ?? DEFAULT_CHUNK;
  // Fixed capacity so every returned buffer fits any batch: the batch limit plus one file.
  const capacity = batchBytes + smallMax + 64 * 1024;

  const worker = new FsWorker<{ paths: string[]; noRead: number[]; capacity: number; free: ArrayBuffer[] }, ReadReply>({
    mode: 'read',
    root: rootAbs,
    smallMax,
  });
  const free: ArrayBuffer[] = [];
  const batches: Batch[] = [];
  const it = (Symbol.asyncIterator in manifest ? manifest[Symbol.asyncIterator]() : (manifest as Iterable<ManifestEntry>)[Symbol.iterator]()) as
    | AsyncIterator<ManifestEntry>
    | Iterator<ManifestEntry>;
  let exhausted = false;
  // Hard link followers are not read: the writer archives them as links to their leader.
  const leaders = new Set<number>();
  const isFollower = (e: ManifestEntry) => {
    if (e.linkGroup === undefined || e.type !== 'file') return false;
    if (leaders.has(e.linkGroup)) return true;
    leaders.add(e.linkGroup);
    return false;
  };

  const fill = async () => {
    while (!exhausted && batches.length < ahead) {
      const entries: ManifestEntry[] = [];
      let bytes = 0;
      while (entries.length < batchEntries && bytes < batchBytes) {
        const r = await it.next();
        if (r.done) {
          exhausted = true;
          break;
        }
        entries.push(r.value);
        if (r.value.type === 'file' && r.value.size <= smallMax) bytes += r.value.size + 1;
      }
      if (!entries.length) break;
      const recycled = free.splice(0);
      const noRead = entries.flatMap((e, i) => (isFollower(e) ? [i] : []));
      const reply = worker.request({ paths: entries.map((e) => pathBytes(e).toString('latin1')), noRead, capacity, free: recycled }, recycled);
      reply.catch(() => undefined);
      batches.push({ entries, reply });
    }
  };

  try {
    // The root directory first: its mode and mtime go into the data/ member.
    // stat, not lstat: a target path may be a symlink to the directory (the scan follows it too)
    const rootStat = await stat(rootAbs);
    yield { entry: { path: '', type: rootStat.isDirectory() ? 'dir' : 'file', size: 0, mode: rootStat.mode & 0o7777, mtimeMs: rootStat.mtimeMs, root: true } };
    await fill();
    while (batches.length) {
      const batch = batches.shift()!;
      const { results, ab } = await batch.reply;
      await fill(); // keep the worker busy while this batch is consumed
      for (let i = 0; i < batch.entries.length; i++) {
        opts.signal?.throwIfAborted();
        const e = batch.entries[i]!;
        const r = results[i]!;
        if (r.missing) continue;
        if (r.error) {
          if (r.error.code === 'ENOENT' || r.error.code === 'ENOTDIR') continue;
          throw workerError(r.error);
        }
        const who = e.rawPath !== undefined ? { path: e.path, rawPath: e.rawPath } : { path: e.path };
        const base = { ...who, mode: r.mode!, mtimeMs: r.mtimeMs! };
        if (r.type === 'dir') yield { entry: { ...base, type: 'dir', size: 0 } };
        else if (r.type === 'symlink') yield { entry: { ...base, type: 'symlink', size: 0, ...linkTargetFields(fromLatin1(r.link!)) } };
        else if (r.type === 'file' && r.skipped) {
          yield { entry: { ...base, type: 'file', size: r.size!, inode: r.inode! } };
        } else if (r.type === 'file' && r.large) {
          const abs = Buffer.concat([rootAbs, SLASH, pathBytes(e)]);
          yield { entry: { ...base, type: 'file', size: r.size!, inode: r.inode! }, content: fileChunks(abs, chunkSize) };
        } else if (r.type === 'file') {
          yield { entry: { ...base, type: 'file', size: r.size!, inode: r.inode! }, content: [Buffer.from(ab, r.off!, r.len!)] };
        }
        // other types (fifo, socket, device): not yielded, reported missing by the writer
      }
      free.push(ab); // the consumer has moved past every entry of this batch
    }
  } finally {
    if (!exhausted) await (it as AsyncIterator<ManifestEntry>).return?.();
    await worker.close();
  }
}
