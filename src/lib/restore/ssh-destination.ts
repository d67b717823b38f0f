/**
 * A restore destination on a data host over SSH. The agent sends one tar stream per target
 * to GNU tar on the host (no name ever on a command line): each file goes under a temporary
 * name beside its place, and only once its SHA-256 matched the catalog does a hard link
 * member give it its real name; the temporary names are removed at the end. What is already
 * in the directory is known from a scan of it first (names, types, checksums), so the
 * extractor's checks (skip identical files, never write through a symlink) hold here too.
 * SFTP is not used: its names are UTF-8 strings, and target names are bytes.
 */
import { createHash } from 'node:crypto';
import { once } from 'node:events';
import type { ManifestEntry } from '../domain/manifest.ts';
import { linkTargetBytes, pathBytes } from '../domain/manifest.ts';
import { errorMessage } from '../errors.ts';
import { describeExit, firstLines, type RemoteProcess } from '../source/ssh/channel.ts';
import { RESTORE_CLEANUP_SCRIPT, RESTORE_EXTRACT_SCRIPT, RESTORE_META_SCRIPT, RESTORE_PREPARE_SCRIPT, remoteCommand } from '../source/ssh/remote-scripts.ts';
import { END_OF_ARCHIVE, encodeHeader, padding, type TarHeaderInit } from '../tar/encode.ts';
import { partName, type DestinationStat, type EntryMeta, type PartFile, type RestoreDestination } from './destination.ts';

/** What the destination needs of the SSH data source. */
export interface RemoteHost {
  readonly host: string;
  run(command: string): Promise<RemoteProcess>;
  scan(path: string, opts: { onSkipped: (s: { path: string; rawPath?: string }) => void }): AsyncIterable<ManifestEntry>;
}

interface Known {
  kind: DestinationStat['kind'];
  size: number;
  inode: string;
  sha256?: string;
  link?: Buffer;
  mode?: number;
  mtimeMs?: number;
}

const SLASH = Buffer.from('/');
const sha1 = (b: Buffer) => createHash('sha1').update(b).digest('hex');
const key = (b: Buffer | null) => (b ? b.toString('latin1') : '');

export class SshDestination implements RestoreDestination {
  private known = new Map<string, Known>();
  private tar: RemoteProcess | undefined;
  private metaFixes: Buffer[] = [];
  private inodes = 0;

  constructor(
    private readonly remote: RemoteHost,
    readonly dir: string,
  ) {}

  get label(): string {
    return `${this.remote.host}:${this.dir}`;
  }

  async prepare(): Promise<void> {
    await this.runScript(RESTORE_PREPARE_SCRIPT, 'creating');
    for await (const e of this.remote.scan(this.dir, {
      onSkipped: (s) => this.known.set(key(pathBytes(s)), { kind: 'other', size: 0, inode: this.newInode() }),
    })) {
      this.known.set(key(pathBytes(e)), {
        kind: e.type,
        size: e.size,
        inode: e.linkGroup !== undefined ? `group:${e.linkGroup}` : this.newInode(),
        ...(e.sha256 ? { sha256: e.sha256 } : {}),
        ...(e.type === 'symlink' ? { link: linkTargetBytes(e) } : {}),
        mode: e.mode,
        mtimeMs: e.mtimeMs,
      });
    }
    this.tar = await this.remote.run(remoteCommand(RESTORE_EXTRACT_SCRIPT, this.dir));
  }

  private newInode(): string {
    return `n:${++this.inodes}`;
  }

  async stat(rel: Buffer | null): Promise<DestinationStat | undefined> {
    if (!rel) return { kind: 'dir', size: 0, inode: 'root' };
    const k = this.known.get(key(rel));
    return k ? { kind: k.kind, size: k.size, inode: k.inode } : undefined;
  }

  async mkdir(rel: Buffer): Promise<void> {
    await this.member({ name: Buffer.concat([rel, SLASH]), type: 'dir', mode: 0o755, mtime: Date.now() / 1000, size: 0 });
    this.known.set(key(rel), { kind: 'dir', size: 0, inode: this.newInode() });
  }

  async sha256(rel: Buffer): Promise<string> {
    const k = this.known.get(key(rel));
    if (!k?.sha256) throw new Error(`no checksum of ${rel.toString('latin1')} on ${this.remote.host}`);
    return k.sha256;
  }

  async readlink(rel: Buffer): Promise<Buffer> {
    return this.known.get(key(rel))?.link ?? Buffer.alloc(0);
  }

  async createFile(rel: Buffer, size: number, meta: EntryMeta): Promise<PartFile> {
    const cut = rel.lastIndexOf(0x2f);
    const part = Buffer.concat([cut < 0 ? Buffer.alloc(0) : rel.subarray(0, cut + 1), partName(rel.subarray(cut + 1), sha1)]);
    await this.member({ name: part, type: 'file', size, ...this.headerMeta(meta) });
    let written = 0;
    const finish = async () => {
      if (written < size) await this.send(Buffer.alloc(size - written));
      await this.send(Buffer.alloc(padding(size)));
    };
    return {
      write: async (chunk) => {
        if (written + chunk.length > size) throw new Error(`more than the ${size} bytes announced for ${rel.toString('latin1')}`);
        written += chunk.length;
        await this.send(chunk);
      },
      commit: async () => {
        await finish();
        await this.member({ name: rel, type: 'hardlink', linkname: part, size: 0, ...this.headerMeta(meta) });
        this.known.set(key(rel), { kind: 'file', size, inode: this.newInode() });
      },
      abort: async () => {
        if (this.tar) await finish();
      },
    };
  }

  async symlink(rel: Buffer, target: Buffer): Promise<void> {
    await this.member({ name: rel, type: 'symlink', linkname: target, size: 0, mode: 0o777, mtime: Date.now() / 1000 });
    this.known.set(key(rel), { kind: 'symlink', size: 0, inode: this.newInode(), link: target });
  }

  async link(existing: Buffer, rel: Buffer): Promise<void> {
    await this.member({ name: rel, type: 'hardlink', linkname: existing, size: 0, mode: 0o644, mtime: 0 });
    const k = this.known.get(key(existing));
    this.known.set(key(rel), { kind: 'file', size: k?.size ?? 0, inode: k?.inode ?? this.newInode() });
  }

  async setMeta(rel: Buffer | null, meta: EntryMeta, kind: 'file' | 'dir' | 'symlink'): Promise<void> {
    if (kind === 'dir') {
      // Set once tar has finished (deepest first, as called), so no later member changes them.
      this.metaFixes.push(Buffer.from(`${(meta.mode & 0o7777).toString(8)}\0${(meta.mtimeMs / 1000).toFixed(3)}\0`), rel ?? Buffer.from('.'), Buffer.from([0]));
      return;
    }
    const k = rel ? this.known.get(key(rel)) : undefined;
    if (kind === 'symlink' || !rel || !k || k.mode === undefined) return; // a symlink's time comes with its member
    if ((k.mode & 0o7777) === (meta.mode & 0o7777) && Math.floor(k.mtimeMs! / 1000) === Math.floor(meta.mtimeMs / 1000)) return;
    this.metaFixes.push(Buffer.from(`${(meta.mode & 0o7777).toString(8)}\0${(meta.mtimeMs / 1000).toFixed(3)}\0`), rel, Buffer.from([0]));
  }

  async close(): Promise<void> {
    const tar = this.tar;
    if (!tar) return;
    this.tar = undefined;
    try {
      await this.write(tar, END_OF_ARCHIVE);
      tar.channel.end();
    } catch {
      // the exit status below says why
    }
    const x = await tar.exit;
    if (x.code !== 0) {
      throw new Error(
        `GNU tar on ${this.remote.host} failed (${describeExit(x)}): ${firstLines(tar.stderr()) || '(no message)'}; what it wrote of this target is not verified there: run the restore again`,
      );
    }
    await this.runScript(RESTORE_CLEANUP_SCRIPT, 'cleaning up');
    if (this.metaFixes.length) await this.runScript(RESTORE_META_SCRIPT, 'setting modes and times in', Buffer.concat(this.metaFixes));
  }

  private headerMeta(meta: EntryMeta): Pick<TarHeaderInit, 'mode' | 'mtime' | 'uid' | 'gid' | 'exactMtime'> {
    return {
      mode: meta.mode,
      mtime: meta.mtimeMs / 1000,
      exactMtime: true,
      ...(meta.uid !== undefined && meta.gid !== undefined ? { uid: meta.uid, gid: meta.gid } : {}),
    };
  }

  private async member(h: TarHeaderInit): Promise<void> {
    await this.send(encodeHeader({ exactMtime: true, ...h }));
  }

  private async send(b: Buffer): Promise<void> {
    if (!this.tar) throw new Error(`the restore stream to ${this.label} is not open`);
    if (b.length) await this.write(this.tar, b);
  }

  private async write(p: RemoteProcess, b: Buffer): Promise<void> {
    if (p.channel.write(b)) return;
    const ended = p.exit.then((x) => {
      throw new Error(`GNU tar on ${this.remote.host} stopped (${describeExit(x)}): ${firstLines(p.stderr()) || '(no message)'}`);
    });
    await Promise.race([once(p.channel, 'drain'), ended]);
  }

  private async runScript(script: string, what: string, input?: Buffer): Promise<void> {
    const p = await this.remote.run(remoteCommand(script, this.dir));
    try {
      if (input) await this.write(p, input);
      p.channel.end();
      for (let b = await p.stdout.read(); b !== null; b = await p.stdout.read());
    } catch (e) {
      throw new Error(`${what} ${this.label} failed: ${errorMessage(e)}`);
    }
    const x = await p.exit;
    if (x.code !== 0) throw new Error(`${what} ${this.label} failed (${describeExit(x)}): ${firstLines(p.stderr()) || '(no message)'}`);
  }
}
