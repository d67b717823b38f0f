/**
 * A restore destination on the agent's own file system. Names are bytes: non-UTF-8 names
 * restore exactly. Small files are gathered in memory and written at commit with a few
 * synchronous system calls: a thread-pool round trip per call would make tens of thousands of
 * small files restore at half tar's pace (bench:restore).
 */
import { createHash } from 'node:crypto';
import { closeSync, constants, createReadStream, fchmodSync, fchownSync, futimesSync, lstatSync, openSync, renameSync, unlinkSync, writeSync } from 'node:fs';
import { chmod, chown, lchown, link, lutimes, mkdir, open, readlink, rename, symlink, unlink, utimes, type FileHandle } from 'node:fs/promises';
import { partName, type DestinationStat, type EntryMeta, type PartFile, type RestoreDestination } from './destination.ts';

const SLASH = Buffer.from('/');
/** Files up to this size are written at commit, synchronously. */
const SMALL_FILE = 1024 * 1024;
/** O_EXCL: never opens through a symlink someone left at the temporary name. */
const CREATE_EXCLUSIVE = constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL;

/** Opens a new temporary file; one left by an interrupted restore is removed first. */
function openNew(path: Buffer): number {
  try {
    return openSync(path, CREATE_EXCLUSIVE, 0o600);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
    unlinkSync(path);
    return openSync(path, CREATE_EXCLUSIVE, 0o600);
  }
}

function unlinkIfThereSync(path: Buffer): void {
  try {
    unlinkSync(path);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
  }
}
const sha1 = (b: Buffer) => createHash('sha1').update(b).digest('hex');

async function unlinkIfThere(path: Buffer): Promise<void> {
  await unlink(path).catch((e: NodeJS.ErrnoException) => {
    if (e.code !== 'ENOENT') throw e;
  });
}

export class LocalDestination implements RestoreDestination {
  private readonly root: Buffer;

  constructor(readonly dir: string) {
    this.root = Buffer.from(dir);
  }

  get label(): string {
    return this.dir;
  }

  private abs(rel: Buffer | null): Buffer {
    return rel ? Buffer.concat([this.root, SLASH, rel]) : this.root;
  }

  /** A temporary name beside `rel`, in the same directory (so the rename is atomic). */
  private part(rel: Buffer): Buffer {
    const cut = rel.lastIndexOf(0x2f);
    const dir = cut < 0 ? null : rel.subarray(0, cut);
    const base = rel.subarray(cut + 1);
    const name = partName(base, sha1);
    return this.abs(dir ? Buffer.concat([dir, SLASH, name]) : name);
  }

  async prepare(): Promise<void> {
    await mkdir(this.root, { recursive: true });
  }

  async stat(rel: Buffer | null): Promise<DestinationStat | undefined> {
    const st = lstatSync(this.abs(rel), { throwIfNoEntry: false });
    if (!st) return undefined;
    const kind = st.isFile() ? 'file' : st.isDirectory() ? 'dir' : st.isSymbolicLink() ? 'symlink' : 'other';
    return { kind, size: st.size, inode: `${st.dev}:${st.ino}` };
  }

  async mkdir(rel: Buffer): Promise<void> {
    await mkdir(this.abs(rel)).catch((e: NodeJS.ErrnoException) => {
      if (e.code !== 'EEXIST') throw e;
    });
  }

  async sha256(rel: Buffer): Promise<string> {
    const h = createHash('sha256');
    for await (const chunk of createReadStream(this.abs(rel), { highWaterMark: 1 << 20 })) h.update(chunk as Buffer);
    return h.digest('hex');
  }

  readlink(rel: Buffer): Promise<Buffer> {
    return readlink(this.abs(rel), { encoding: 'buffer' });
  }

  async createFile(rel: Buffer, size: number, meta: EntryMeta): Promise<PartFile> {
    const tmp = this.part(rel);
    const dest = this.abs(rel);
    if (size <= SMALL_FILE) return this.smallFile(tmp, dest, meta);
    await unlinkIfThere(tmp); // left by an interrupted restore
    // O_EXCL: never opens through a symlink someone left at the temporary name.
    const fh: FileHandle = await open(tmp, 'wx', 0o600);
    let open_ = true;
    const closeOnce = async () => {
      if (open_) {
        open_ = false;
        await fh.close();
      }
    };
    return {
      write: async (chunk) => {
        let off = 0;
        while (off < chunk.length) off += (await fh.write(chunk, off, chunk.length - off)).bytesWritten;
      },
      commit: async () => {
        // chown first: it clears set-uid bits that chmod then sets.
        if (meta.uid !== undefined && meta.gid !== undefined) await fh.chown(meta.uid, meta.gid);
        await fh.chmod(meta.mode & 0o7777);
        await fh.utimes(meta.mtimeMs / 1000, meta.mtimeMs / 1000);
        await closeOnce();
        await rename(tmp, dest);
      },
      abort: async () => {
        await closeOnce().catch(() => undefined);
        await unlinkIfThere(tmp);
      },
    };
  }

  /** A small file: its chunks (fresh tape blocks, never reused) are kept until commit writes them. */
  private smallFile(tmp: Buffer, dest: Buffer, meta: EntryMeta): PartFile {
    const chunks: Buffer[] = [];
    return {
      write: async (chunk) => {
        chunks.push(chunk);
      },
      commit: async () => {
        const fd = openNew(tmp);
        try {
          const data = chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks);
          for (let off = 0; off < data.length; ) off += writeSync(fd, data, off, data.length - off);
          // chown first: it clears set-uid bits that chmod then sets.
          if (meta.uid !== undefined && meta.gid !== undefined) fchownSync(fd, meta.uid, meta.gid);
          fchmodSync(fd, meta.mode & 0o7777);
          futimesSync(fd, meta.mtimeMs / 1000, meta.mtimeMs / 1000);
        } finally {
          closeSync(fd);
        }
        renameSync(tmp, dest);
      },
      abort: async () => {
        chunks.length = 0;
        unlinkIfThereSync(tmp); // a commit that failed half way
      },
    };
  }

  async symlink(rel: Buffer, target: Buffer, replace: boolean): Promise<void> {
    if (!replace) return symlink(target, this.abs(rel));
    const tmp = this.part(rel);
    await unlinkIfThere(tmp);
    await symlink(target, tmp);
    await rename(tmp, this.abs(rel));
  }

  async link(existing: Buffer, rel: Buffer, replace: boolean): Promise<void> {
    if (!replace) return link(this.abs(existing), this.abs(rel));
    const tmp = this.part(rel);
    await unlinkIfThere(tmp);
    await link(this.abs(existing), tmp);
    await rename(tmp, this.abs(rel));
  }

  async setMeta(rel: Buffer | null, meta: EntryMeta, kind: 'file' | 'dir' | 'symlink'): Promise<void> {
    const p = this.abs(rel);
    const t = meta.mtimeMs / 1000;
    if (kind === 'symlink') {
      if (meta.uid !== undefined && meta.gid !== undefined) await lchown(p, meta.uid, meta.gid);
      await lutimes(p, t, t);
      return;
    }
    if (meta.uid !== undefined && meta.gid !== undefined) await chown(p, meta.uid, meta.gid);
    await chmod(p, meta.mode & 0o7777);
    await utimes(p, t, t);
  }

  async close(): Promise<void> {}
}
