/**
 * A worker thread for the local source: per-file system calls (lstat, open, read, close) are
 * cheap when synchronous (~2-5 us) but cost a thread-pool hand-off each when asynchronous
 * (tens of us on a small VM, plus context switches), which dominates for many small files.
 * The worker does them synchronously, off the main thread, in batches:
 *
 * - mode "scan": walks a directory tree (sorted by name bytes), hashes regular files and
 *   returns entries in batches on request; a file with several names (nlink > 1) gets a link
 *   group, and its later names reuse the first name's checksum instead of reading it again;
 * - mode "list": the same walk without reading any file (names and types only);
 *   both leave out the relative names in workerData.excludes with their subtrees (nested targets);
 * - mode "read": for a batch of names, lstat + read small files whole into one buffer that
 *   is transferred to the main thread and handed back for reuse.
 *
 * The code is plain CommonJS run with `eval: true` (worker-requests.ts). Names cross the
 * thread boundary as latin1 strings (one char per byte: exact, and cheap to clone).
 */
import { RequestWorker } from '../worker-requests.ts';

const WORKER_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads');
const fs = require('node:fs');
const { createHash } = require('node:crypto');
const SLASH = Buffer.from('/');
const join = (a, b) => (a.length ? Buffer.concat([a, SLASH, b]) : b);
const FLAGS = fs.constants.O_RDONLY | (fs.constants.O_NOFOLLOW || 0) | (fs.constants.O_NONBLOCK || 0);
const errInfo = (e) => ({ message: String((e && e.message) || e), code: e && e.code, syscall: e && e.syscall });
const gone = (e) => e && (e.code === 'ENOENT' || e.code === 'ENOTDIR');
const kindOf = (st) =>
  st.isDirectory() ? 'dir' : st.isFile() ? 'file' : st.isSymbolicLink() ? 'symlink' :
  st.isFIFO() ? 'fifo' : st.isSocket() ? 'socket' : st.isCharacterDevice() ? 'character device' :
  st.isBlockDevice() ? 'block device' : 'special file';

if (workerData.mode === 'scan' || workerData.mode === 'list') {
  const root = Buffer.from(workerData.root);
  const listOnly = workerData.mode === 'list';
  const chunk = workerData.chunkSize || 65536;
  const buf = Buffer.allocUnsafe(chunk);
  const groups = new Map(); // "dev:ino" -> { group, size, sha256 }
  // Nested targets: relative names (latin1 of their bytes), each left out with its subtree.
  const excluded = new Set(workerData.excludes || []);
  function* walk(absDir, relDir) {
    let names;
    try { names = fs.readdirSync(absDir, { encoding: 'buffer' }); } catch (e) { if (gone(e)) return; throw e; }
    names.sort(Buffer.compare);
    for (const name of names) {
      const rel = join(relDir, name);
      if (excluded.size && excluded.has(rel.toString('latin1'))) continue;
      const abs = join(absDir, name);
      let st;
      try { st = fs.lstatSync(abs); } catch (e) { if (gone(e)) continue; throw e; }
      const base = { rel: rel.toString('latin1'), mtimeMs: st.mtimeMs, mode: st.mode & 0o7777, uid: st.uid, gid: st.gid };
      const kind = kindOf(st);
      if (listOnly) {
        yield { rel: base.rel, type: kind === 'dir' || kind === 'file' || kind === 'symlink' ? kind : 'other', kind };
        if (kind === 'dir') yield* walk(abs, rel);
        continue;
      }
      const inode = st.nlink > 1 ? st.dev + ':' + st.ino : null;
      const known = inode !== null ? groups.get(inode) : undefined;
      if (kind === 'dir') {
        yield { ...base, type: 'dir', size: 0 };
        yield* walk(abs, rel);
      } else if (kind === 'file' && known && known.size === st.size) {
        yield { ...base, type: 'file', size: known.size, sha256: known.sha256, group: known.group };
      } else if (kind === 'file') {
        let fd;
        try { fd = fs.openSync(abs, FLAGS); } catch (e) { if (gone(e)) continue; throw e; }
        const h = createHash('sha256');
        let size = 0;
        try {
          for (;;) {
            const n = fs.readSync(fd, buf, 0, chunk, size);
            if (n === 0) break;
            h.update(n === chunk ? buf : buf.subarray(0, n));
            size += n;
          }
        } finally { fs.closeSync(fd); }
        const sha256 = h.digest('hex');
        if (inode !== null && known) {
          yield { ...base, type: 'file', size, sha256, group: known.group };
        } else if (inode !== null) {
          const group = groups.size + 1;
          groups.set(inode, { group, size, sha256 });
          yield { ...base, type: 'file', size, sha256, group };
        } else {
          yield { ...base, type: 'file', size, sha256 };
        }
      } else if (kind === 'symlink') {
        let link;
        try { link = fs.readlinkSync(abs, { encoding: 'buffer' }).toString('latin1'); } catch (e) { if (gone(e)) continue; throw e; }
        yield { ...base, type: 'symlink', size: 0, link };
      } else {
        yield { ...base, type: 'other', kind };
      }
    }
  }
  let it = null;
  parentPort.on('message', (msg) => {
    const out = [];
    try {
      if (!it) it = walk(root, Buffer.alloc(0));
      let bytes = 0;
      while (out.length < msg.maxEntries && bytes < msg.maxBytes) {
        const r = it.next();
        if (r.done) { parentPort.postMessage({ entries: out, done: true }); return; }
        out.push(r.value);
        bytes += r.value.size || 0;
      }
      parentPort.postMessage({ entries: out, done: false });
    } catch (e) {
      parentPort.postMessage({ entries: out, done: true, error: errInfo(e) });
    }
  });
} else {
  const root = Buffer.from(workerData.root);
  const smallMax = workerData.smallMax;
  const pool = [];
  parentPort.on('message', (msg) => {
    for (const ab of msg.free || []) pool.push(ab);
    let ab = null;
    for (let i = 0; i < pool.length; i++) if (pool[i].byteLength >= msg.capacity) { ab = pool.splice(i, 1)[0]; break; }
    if (!ab) ab = new ArrayBuffer(msg.capacity);
    const buf = Buffer.from(ab);
    let off = 0;
    const results = [];
    const noRead = new Set(msg.noRead || []);
    for (let i = 0; i < msg.paths.length; i++) {
      const p = msg.paths[i];
      const abs = join(root, Buffer.from(p, 'latin1'));
      try {
        const st = fs.lstatSync(abs, { throwIfNoEntry: false });
        if (!st) { results.push({ missing: true }); continue; }
        const r = { type: kindOf(st), mode: st.mode & 0o7777, mtimeMs: st.mtimeMs, size: st.size };
        if (r.type === 'file') r.inode = st.dev + ':' + st.ino;
        if (r.type === 'file' && noRead.has(i)) {
          r.skipped = true; // a hard link of a file already read: metadata only
        } else if (r.type === 'symlink') {
          r.link = fs.readlinkSync(abs, { encoding: 'buffer' }).toString('latin1');
        } else if (r.type === 'file' && st.size <= smallMax && off + st.size + 1 <= buf.length) {
          let fd;
          try { fd = fs.openSync(abs, FLAGS); } catch (e) {
            if (gone(e) || e.code === 'ELOOP') { results.push({ missing: true }); continue; }
            throw e;
          }
          let got = 0;
          try {
            // up to size + 1 bytes: one more than expected shows that the file grew
            for (;;) {
              const n = fs.readSync(fd, buf, off + got, st.size + 1 - got, got);
              got += n;
              if (n === 0 || got >= st.size) break;
            }
          } finally { fs.closeSync(fd); }
          r.off = off;
          r.len = got;
          off += got;
        } else if (r.type === 'file') {
          r.large = true;
        }
        results.push(r);
      } catch (e) {
        results.push({ error: errInfo(e) });
      }
    }
    parentPort.postMessage({ results, ab }, [ab]);
  });
}
`;

export interface WorkerErrorInfo {
  message: string;
  code?: string;
  syscall?: string;
}

/** Turns an error reported by the worker back into an Error with its errno code. */
export function workerError(info: WorkerErrorInfo): Error {
  const e = new Error(info.message) as Error & { code?: string; syscall?: string };
  if (info.code) e.code = info.code;
  if (info.syscall) e.syscall = info.syscall;
  return e;
}

/** The local source's worker for one walk or one read of files (workerData.mode). */
export class FsWorker<Req, Res> extends RequestWorker<Req, Res> {
  constructor(workerData: Record<string, unknown>) {
    super(WORKER_SOURCE, workerData, 'the file system worker');
  }
}
