/**
 * Where a restore writes: a directory on the agent's host (local-destination.ts) or on a data
 * host over SFTP (sftp-destination.ts). Names are bytes relative to the destination root
 * (`null` is the root itself). The extractor (extract.ts) decides what is safe to write; a
 * destination only does what it is told, and never follows a symlink in the last component:
 * files are written to a temporary name beside their place and renamed over it.
 */
export interface DestinationStat {
  kind: 'file' | 'dir' | 'symlink' | 'other';
  size: number;
  /** Identifies the inode (device and inode number), to tell hard links apart. */
  inode: string;
}

export interface EntryMeta {
  mode: number;
  mtimeMs: number;
  /** Set only when ownership is restored (the agent runs as root and the manifest has it). */
  uid?: number;
  gid?: number;
}

/** A file being written under a temporary name; `commit` gives it its meta and its name. */
export interface PartFile {
  write(chunk: Buffer): Promise<void>;
  /** Only after exactly `size` bytes were written and their checksum matched. */
  commit(): Promise<void>;
  /** Removes the temporary file (a checksum mismatch, an error). */
  abort(): Promise<void>;
}

export interface RestoreDestination {
  /** `host:dir` or `dir`, for messages. */
  readonly label: string;
  /** Creates the root directory (and its parents) if needed. */
  prepare(): Promise<void>;
  stat(rel: Buffer | null): Promise<DestinationStat | undefined>;
  mkdir(rel: Buffer): Promise<void>;
  /** SHA-256 (hex) of an existing regular file. */
  sha256(rel: Buffer): Promise<string>;
  readlink(rel: Buffer): Promise<Buffer>;
  /** A new file of `size` bytes for `rel`, under a temporary name until it is committed. */
  createFile(rel: Buffer, size: number, meta: EntryMeta): Promise<PartFile>;
  /** Creates a symlink; `replace` puts it in place of whatever non-directory is there. */
  symlink(rel: Buffer, target: Buffer, replace: boolean): Promise<void>;
  /** Another name for an existing file; `replace` as for symlink. */
  link(existing: Buffer, rel: Buffer, replace: boolean): Promise<void>;
  /** Mode, mtime and (when given) owner of an entry; for a symlink only mtime and owner. */
  setMeta(rel: Buffer | null, meta: EntryMeta, kind: 'file' | 'dir' | 'symlink'): Promise<void>;
  close(): Promise<void>;
}

/** The temporary name a file is written under before it is renamed into place. */
export function partName(base: Buffer, hash: (b: Buffer) => string): Buffer {
  return Buffer.from(`.tape-restore-${hash(base).slice(0, 16)}.part`);
}
