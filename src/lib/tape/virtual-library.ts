/**
 * A file-backed virtual tape library (VTL): tapes, drives and a changer, all state on disk.
 *
 * Used by the demo, the tests and by the agent running as a separate process, so nothing
 * lives only in memory: every drive operation re-reads the drive state, the tape's meta and
 * its faults from disk. (An open writer or an active read keeps its file handle and the
 * faults it read when it started, like a real drive keeps its buffer.)
 *
 * On-disk layout under rootDir:
 *
 *   tapes/<name>/meta.json        { version, name, capacityBytes, writeProtected, createdAt }
 *   tapes/<name>/faults.json      injected faults (absent = none)
 *   tapes/<name>/file-0000        complete tape file 0 (the label), raw bytes, padded to blocks
 *   tapes/<name>/file-0001 ...    complete tape files: `tar -tf file-0003` works on a tar file
 *   tapes/<name>/file-000N.partial the file being written (or left by abort/crash: no filemark)
 *   drives/<driveId>.json         { version, tape, fileNumber, midFile }: what is loaded where
 *
 * Semantics: close() of a writer = fsync + rename of the .partial (the filemark). Writing at
 * file N removes files >= N and any .partial first. End of data = the number of complete
 * files numbered contiguously from 0. One process at a time should use a given drive.
 */
import { randomBytes } from 'node:crypto';
import { close as fsClose, fsync as fsFsync, open as fsOpen, read as fsRead, write as fsWrite } from 'node:fs';
import { mkdir, open, readdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { z } from 'zod';
import { ConflictError, NotFoundError, ValidationError } from '../errors.ts';
import {
  DEFAULT_BLOCK_SIZE,
  EndOfMediumError,
  NoTapeError,
  PositionError,
  TapeBusyError,
  TapeIOError,
  WriteProtectedError,
  assertBlockSize,
  assertFileNumber,
  formatBytes,
  type DriveStatus,
  type TapeChanger,
  type TapeDrive,
  type TapeFileWriter,
  SerialQueue,
} from './drive.ts';

// ---------------------------------------------------------------------------------------------
// Types and on-disk schemas

const nonNegInt = z.number().int().nonnegative();

const faultSchema = z.discriminatedUnion('kind', [
  /** The tape ends after `afterBytes` bytes in total (all files plus the one being written). */
  z.object({ kind: z.literal('end-of-medium'), afterBytes: nonNegInt, once: z.boolean().optional() }).strict(),
  /** Writing file `fileNumber` fails with TapeIOError once the file would exceed `afterBytes`. */
  z.object({ kind: z.literal('write-error'), fileNumber: nonNegInt, afterBytes: nonNegInt, once: z.boolean().optional() }).strict(),
  /** Reading file `fileNumber` fails with TapeIOError once the read would pass `afterBytes`. */
  z.object({ kind: z.literal('read-error'), fileNumber: nonNegInt, afterBytes: nonNegInt, once: z.boolean().optional() }).strict(),
  /** The byte at `offset` of file `fileNumber` reads back XOR 0xff. */
  z.object({ kind: z.literal('flip-byte'), fileNumber: nonNegInt, offset: nonNegInt, once: z.boolean().optional() }).strict(),
  /** Writes run no faster than this, so tests can act while a write is in progress. */
  z.object({ kind: z.literal('slow'), bytesPerSecond: z.number().int().positive(), once: z.boolean().optional() }).strict(),
]);

/** A fault to inject. `once: true` removes it after it fired, so a retry succeeds. */
export type TapeFault = z.infer<typeof faultSchema>;
export type StoredFault = TapeFault & { id: string };

const storedFaultsSchema = z.array(z.intersection(faultSchema, z.object({ id: z.string().min(1) })));

const metaSchema = z.object({
  version: z.literal(1),
  name: z.string(),
  capacityBytes: z.number().int().positive(),
  writeProtected: z.boolean(),
  createdAt: z.string(),
});
type TapeMeta = z.infer<typeof metaSchema>;

const driveStateSchema = z.object({
  version: z.literal(1),
  tape: z.string().nullable(),
  /** File the drive is at the start of (or inside, when midFile). */
  fileNumber: nonNegInt,
  /** Positioned inside file `fileNumber` (a read was interrupted): seek before reading or writing. */
  midFile: z.boolean(),
});
type DriveState = z.infer<typeof driveStateSchema>;

const EMPTY_DRIVE: DriveState = { version: 1, tape: null, fileNumber: 0, midFile: false };

export interface TapeInfo {
  name: string;
  capacityBytes: number;
  writeProtected: boolean;
  /** Complete files (= end of data). */
  files: number;
  /** Bytes of all files on tape, including a partial one. */
  usedBytes: number;
  /** A .partial (file without filemark) is on the tape. */
  hasPartial: boolean;
  /** Drive id the tape is loaded in, or null. */
  loadedIn: string | null;
}

export interface VirtualTapeLibraryOptions {
  /** Block size of the library's drives (default 256 KiB). */
  blockSize?: number;
}

const NAME_RE = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;

function assertName(kind: 'tape' | 'drive', name: string): void {
  if (!NAME_RE.test(name)) {
    throw new ValidationError(
      `invalid ${kind} name ${JSON.stringify(name)}: use 1-64 characters from A-Z a-z 0-9 . _ - starting with a letter or digit (e.g. "TA0001L8", "vtl0").`,
    );
  }
}

export function tapeFileName(fileNumber: number): string {
  return `file-${String(fileNumber).padStart(4, '0')}`;
}

const FILE_RE = /^file-(\d+)(\.partial)?$/;

interface TapeFileEntry {
  fileNumber: number;
  partial: boolean;
  name: string;
}

// ---------------------------------------------------------------------------------------------
// Small fs helpers

function isErrno(e: unknown, code: string): boolean {
  return (e as NodeJS.ErrnoException | null)?.code === code;
}

async function readJson(path: string): Promise<unknown | undefined> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (e) {
    if (isErrno(e, 'ENOENT')) return undefined;
    throw e;
  }
  return JSON.parse(text);
}

/** Write JSON atomically (temp file + rename) so another process never reads half a file. */
async function writeJsonAtomic(path: string, value: unknown): Promise<void> {
  const tmp = `${path}.tmp-${process.pid}-${randomBytes(4).toString('hex')}`;
  await writeFile(tmp, JSON.stringify(value, null, 2) + '\n');
  await rename(tmp, path);
}

async function fsyncDir(dir: string): Promise<void> {
  const dh = await open(dir, 'r');
  try {
    await dh.sync();
  } finally {
    await dh.close();
  }
}

// ---------------------------------------------------------------------------------------------
// The library

export class VirtualTapeLibrary {
  readonly blockSize: number;

  constructor(
    readonly rootDir: string,
    opts: VirtualTapeLibraryOptions = {},
  ) {
    this.blockSize = opts.blockSize ?? DEFAULT_BLOCK_SIZE;
    assertBlockSize(this.blockSize);
  }

  get tapesDir(): string {
    return join(this.rootDir, 'tapes');
  }

  get drivesDir(): string {
    return join(this.rootDir, 'drives');
  }

  tapeDir(name: string): string {
    assertName('tape', name);
    return join(this.tapesDir, name);
  }

  /** Path of complete tape file N of a tape (exists only once the file has its filemark). */
  tapeFilePath(name: string, fileNumber: number): string {
    assertFileNumber(fileNumber, name);
    return join(this.tapeDir(name), tapeFileName(fileNumber));
  }

  partialFilePath(name: string, fileNumber: number): string {
    return `${this.tapeFilePath(name, fileNumber)}.partial`;
  }

  async createTape(name: string, opts: { capacityBytes: number }): Promise<TapeInfo> {
    assertName('tape', name);
    if (!Number.isSafeInteger(opts.capacityBytes) || opts.capacityBytes <= 0) {
      throw new ValidationError(`invalid capacity ${opts.capacityBytes} for tape ${name}: give a positive whole number of bytes.`);
    }
    await mkdir(this.tapesDir, { recursive: true });
    const dir = this.tapeDir(name);
    try {
      await mkdir(dir);
    } catch (e) {
      if (isErrno(e, 'EEXIST')) {
        throw new ConflictError(`tape ${name} already exists in the library at ${this.rootDir}; pick another name.`, { tape: name });
      }
      throw e;
    }
    const meta: TapeMeta = {
      version: 1,
      name,
      capacityBytes: opts.capacityBytes,
      writeProtected: false,
      createdAt: new Date().toISOString(),
    };
    await writeJsonAtomic(join(dir, 'meta.json'), meta);
    return this.tapeInfo(name);
  }

  async listTapes(): Promise<TapeInfo[]> {
    let names: string[];
    try {
      names = await readdir(this.tapesDir);
    } catch (e) {
      if (isErrno(e, 'ENOENT')) return [];
      throw e;
    }
    const loaded = await this.loadedTapes();
    const out: TapeInfo[] = [];
    for (const name of names.filter((n) => NAME_RE.test(n)).sort()) {
      const meta = await this.readMeta(name).catch(() => undefined);
      if (meta) out.push(await this.infoFor(meta, loaded));
    }
    return out;
  }

  async tapeInfo(name: string): Promise<TapeInfo> {
    const meta = await this.readMetaOrThrow(name);
    return this.infoFor(meta, await this.loadedTapes());
  }

  async setWriteProtected(name: string, on: boolean): Promise<void> {
    const meta = await this.readMetaOrThrow(name);
    await writeJsonAtomic(join(this.tapeDir(name), 'meta.json'), { ...meta, writeProtected: on });
  }

  /** Persist a fault on the tape; returns its id. Faults act when a writer or read starts. */
  async injectFault(name: string, fault: TapeFault): Promise<string> {
    await this.readMetaOrThrow(name);
    const parsed = faultSchema.safeParse(fault);
    if (!parsed.success) {
      throw new ValidationError(
        `invalid fault for tape ${name}: ${parsed.error.issues.map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`).join('; ')}`,
      );
    }
    const id = randomBytes(6).toString('hex');
    const faults = await this.listFaults(name);
    faults.push({ ...parsed.data, id });
    await this.writeFaults(name, faults);
    return id;
  }

  async listFaults(name: string): Promise<StoredFault[]> {
    const raw = await readJson(join(this.tapeDir(name), 'faults.json'));
    if (raw === undefined) return [];
    return storedFaultsSchema.parse(raw) as StoredFault[];
  }

  async clearFaults(name: string): Promise<void> {
    await this.readMetaOrThrow(name);
    await rm(join(this.tapeDir(name), 'faults.json'), { force: true });
  }

  /** Remove one fault (used when a `once` fault fired). */
  async removeFault(name: string, id: string): Promise<void> {
    const faults = await this.listFaults(name);
    const rest = faults.filter((f) => f.id !== id);
    if (rest.length !== faults.length) await this.writeFaults(name, rest);
  }

  drive(driveId: string, opts: { blockSize?: number } = {}): VirtualTapeDrive {
    assertName('drive', driveId);
    return new VirtualTapeDrive(this, driveId, opts.blockSize ?? this.blockSize);
  }

  // -- internals used by the drive ---------------------------------------------------------

  async readMeta(name: string): Promise<TapeMeta | undefined> {
    const raw = await readJson(join(this.tapeDir(name), 'meta.json'));
    return raw === undefined ? undefined : metaSchema.parse(raw);
  }

  async readMetaOrThrow(name: string): Promise<TapeMeta> {
    const meta = await this.readMeta(name);
    if (!meta) {
      throw new NotFoundError(`no tape named ${name} in the virtual library at ${this.rootDir}; create it with createTape() or check listTapes().`, {
        tape: name,
      });
    }
    return meta;
  }

  /** Tape files on disk, sorted by file number (complete before partial for the same number). */
  async listFiles(name: string): Promise<TapeFileEntry[]> {
    const entries = await readdir(this.tapeDir(name));
    const files: TapeFileEntry[] = [];
    for (const e of entries) {
      const m = FILE_RE.exec(e);
      if (m) files.push({ fileNumber: Number(m[1]), partial: m[2] !== undefined, name: e });
    }
    return files.sort((a, b) => a.fileNumber - b.fileNumber || Number(a.partial) - Number(b.partial));
  }

  /** Number of complete files numbered contiguously from 0 = end of data. */
  async countFiles(name: string): Promise<number> {
    return countComplete(await this.listFiles(name));
  }

  async readDriveState(driveId: string): Promise<DriveState> {
    const raw = await readJson(join(this.drivesDir, `${driveId}.json`));
    return raw === undefined ? { ...EMPTY_DRIVE } : driveStateSchema.parse(raw);
  }

  async writeDriveState(driveId: string, state: Omit<DriveState, 'version'>): Promise<void> {
    await mkdir(this.drivesDir, { recursive: true });
    await writeJsonAtomic(join(this.drivesDir, `${driveId}.json`), { version: 1, ...state });
  }

  /** tape name -> drive id, for every drive that has a tape loaded. */
  async loadedTapes(): Promise<Map<string, string>> {
    const map = new Map<string, string>();
    let entries: string[];
    try {
      entries = await readdir(this.drivesDir);
    } catch (e) {
      if (isErrno(e, 'ENOENT')) return map;
      throw e;
    }
    for (const e of entries) {
      if (!e.endsWith('.json')) continue;
      const id = e.slice(0, -'.json'.length);
      if (!NAME_RE.test(id)) continue;
      const st = await this.readDriveState(id).catch(() => undefined);
      if (st?.tape) map.set(st.tape, id);
    }
    return map;
  }

  private async writeFaults(name: string, faults: StoredFault[]): Promise<void> {
    const path = join(this.tapeDir(name), 'faults.json');
    if (faults.length === 0) await rm(path, { force: true });
    else await writeJsonAtomic(path, faults);
  }

  private async infoFor(meta: TapeMeta, loaded: Map<string, string>): Promise<TapeInfo> {
    const files = await this.listFiles(meta.name);
    let usedBytes = 0;
    for (const f of files) usedBytes += (await stat(join(this.tapeDir(meta.name), f.name))).size;
    return {
      name: meta.name,
      capacityBytes: meta.capacityBytes,
      writeProtected: meta.writeProtected,
      files: countComplete(files),
      usedBytes,
      hasPartial: files.some((f) => f.partial),
      loadedIn: loaded.get(meta.name) ?? null,
    };
  }
}

function countComplete(files: TapeFileEntry[]): number {
  const complete = new Set(files.filter((f) => !f.partial).map((f) => f.fileNumber));
  let n = 0;
  while (complete.has(n)) n++;
  return n;
}

// ---------------------------------------------------------------------------------------------
// The drive

export class VirtualTapeDrive implements TapeDrive, TapeChanger {
  /** What this drive object is doing right now (in this process). */
  private busy: { op: 'writing' | 'reading'; fileNumber: number } | null = null;

  constructor(
    readonly library: VirtualTapeLibrary,
    readonly id: string,
    readonly blockSize: number,
  ) {
    assertBlockSize(blockSize);
  }

  // -- changer -----------------------------------------------------------------------------

  async load(tapeName: string): Promise<void> {
    this.assertIdle('load a tape');
    assertName('tape', tapeName);
    const meta = await this.library.readMeta(tapeName);
    if (!meta) {
      throw new NoTapeError(
        `cannot load tape ${tapeName} into ${this.id}: no such tape in the virtual library at ${this.library.rootDir}; create it or check listTapes().`,
        { drive: this.id, tape: tapeName },
      );
    }
    const other = (await this.library.loadedTapes()).get(tapeName);
    if (other !== undefined && other !== this.id) {
      throw new TapeBusyError(`cannot load tape ${tapeName} into ${this.id}: it is loaded in drive ${other}; unload it there first.`, {
        drive: this.id,
        tape: tapeName,
      });
    }
    // Loading swaps out whatever was in this drive; the new tape is at BOT.
    await this.library.writeDriveState(this.id, { tape: tapeName, fileNumber: 0, midFile: false });
  }

  async unload(): Promise<void> {
    this.assertIdle('unload');
    await this.library.writeDriveState(this.id, { tape: null, fileNumber: 0, midFile: false });
  }

  async loadedTape(): Promise<string | null> {
    return (await this.library.readDriveState(this.id)).tape;
  }

  // -- drive -------------------------------------------------------------------------------

  async status(): Promise<DriveStatus> {
    const st = await this.library.readDriveState(this.id);
    const meta = st.tape ? await this.library.readMeta(st.tape) : undefined;
    if (!st.tape || !meta) return { loaded: false, writeProtected: false, fileNumber: null, blockSize: this.blockSize };
    return { loaded: true, writeProtected: meta.writeProtected, fileNumber: st.fileNumber, blockSize: this.blockSize };
  }

  async rewind(): Promise<void> {
    this.assertIdle('rewind');
    const { tape } = await this.loaded();
    await this.library.writeDriveState(this.id, { tape, fileNumber: 0, midFile: false });
  }

  async seekFile(fileNumber: number): Promise<void> {
    this.assertIdle('seek');
    assertFileNumber(fileNumber, this.id);
    const { tape } = await this.loaded();
    const count = await this.library.countFiles(tape);
    if (fileNumber > count) {
      throw new PositionError(
        `cannot seek to file ${fileNumber} on tape ${tape} in ${this.id}: the tape has ${count} file(s)${count > 0 ? ` (0..${count - 1})` : ''}, file ${fileNumber} is past end of data. Use seekEndOfData() to append.`,
        { drive: this.id, tape, fileNumber },
      );
    }
    await this.library.writeDriveState(this.id, { tape, fileNumber, midFile: false });
  }

  async seekEndOfData(): Promise<number> {
    this.assertIdle('seek to end of data');
    const { tape } = await this.loaded();
    const count = await this.library.countFiles(tape);
    await this.library.writeDriveState(this.id, { tape, fileNumber: count, midFile: false });
    return count;
  }

  readFile(opts: { signal?: AbortSignal } = {}): AsyncIterable<Buffer> {
    return this.readGen(opts.signal);
  }

  private async *readGen(signal: AbortSignal | undefined): AsyncGenerator<Buffer> {
    this.assertIdle('read');
    signal?.throwIfAborted();
    const { tape, state } = await this.loaded();
    const n = state.fileNumber;
    if (state.midFile) {
      throw new PositionError(
        `drive ${this.id} is positioned inside file ${n} of tape ${tape} (an earlier read stopped early); seekFile(${n}) to read it from the start.`,
        { drive: this.id, tape, fileNumber: n },
      );
    }
    const count = await this.library.countFiles(tape);
    if (n >= count) {
      throw new PositionError(
        `drive ${this.id} is at end of data of tape ${tape} (file ${n}); there is no file to read. seekFile() to a file below ${count}.`,
        { drive: this.id, tape, fileNumber: n },
      );
    }
    const faults = (await this.library.listFaults(tape)).filter((f) => 'fileNumber' in f && f.fileNumber === n);
    const readFault = minBy(
      faults.filter((f): f is StoredFault & { kind: 'read-error' } => f.kind === 'read-error'),
      (f) => f.afterBytes,
    );
    const flips = faults.filter((f): f is StoredFault & { kind: 'flip-byte' } => f.kind === 'flip-byte');
    const readLimit = readFault ? readFault.afterBytes : Infinity;

    this.busy = { op: 'reading', fileNumber: n };
    let fd: number | undefined;
    try {
      fd = await fdOpen(this.library.tapeFilePath(tape, n), 'r');
      await this.library.writeDriveState(this.id, { tape, fileNumber: n, midFile: true });
      const bs = this.blockSize;
      // Read several blocks per syscall; yield them as block-sized views of a fresh buffer.
      const readSize = Math.max(bs, Math.floor(STAGE_BYTES / bs) * bs);
      let pos = 0;
      for (;;) {
        signal?.throwIfAborted();
        const buf = Buffer.allocUnsafe(readSize);
        let got = 0;
        while (got < buf.length) {
          const r = await fdRead(fd, buf, got, buf.length - got, pos + got);
          if (r === 0) break;
          got += r;
        }
        if (got === 0) break; // the filemark
        for (let off = 0; off < got; off += bs) {
          signal?.throwIfAborted();
          const len = Math.min(bs, got - off);
          const at = pos + off;
          if (readFault && at + len > readLimit) {
            if (readFault.once) await this.library.removeFault(tape, readFault.id);
            throw new TapeIOError(
              `read error on tape ${tape} in ${this.id}, file ${n} at byte ${Math.max(at, readLimit)} (injected read-error fault). Retry the read (seekFile(${n})) or read another copy.`,
              { drive: this.id, tape, fileNumber: n },
            );
          }
          for (const f of flips) {
            if (f.offset >= at && f.offset < at + len) {
              buf[off + f.offset - at]! ^= 0xff;
              if (f.once) await this.library.removeFault(tape, f.id);
            }
          }
          yield buf.subarray(off, off + len);
        }
        pos += got;
        if (got < buf.length) break; // end of the file
      }
      await this.library.writeDriveState(this.id, { tape, fileNumber: n + 1, midFile: false });
    } finally {
      this.busy = null;
      if (fd !== undefined) await fdClose(fd).catch(() => undefined);
    }
  }

  async openWriter(): Promise<TapeFileWriter> {
    this.assertIdle('open a writer');
    const { tape, state, meta } = await this.loaded();
    const n = state.fileNumber;
    if (meta.writeProtected) {
      throw new WriteProtectedError(
        `tape ${tape} in drive ${this.id} is write protected; load another tape or clear the protection (setWriteProtected(${JSON.stringify(tape)}, false)).`,
        { drive: this.id, tape, fileNumber: n },
      );
    }
    if (state.midFile) {
      throw new PositionError(
        `drive ${this.id} is positioned inside file ${n} of tape ${tape}; writing there would cut the file. seekFile() or seekEndOfData() first.`,
        { drive: this.id, tape, fileNumber: n },
      );
    }
    const dir = this.library.tapeDir(tape);
    const files = await this.library.listFiles(tape);
    const count = countComplete(files);
    if (n > count) {
      throw new PositionError(
        `drive ${this.id} is at file ${n} but tape ${tape} has only ${count} file(s) (changed by another process?); seekEndOfData() or seekFile() first.`,
        { drive: this.id, tape, fileNumber: n },
      );
    }
    // Tape semantics: writing here loses everything after this position.
    let baseUsed = 0;
    for (const f of files) {
      if (f.fileNumber >= n || f.partial) await rm(join(dir, f.name), { force: true });
      else baseUsed += (await stat(join(dir, f.name))).size;
    }
    const faults = await this.library.listFaults(tape);
    const eomFault = minBy(
      faults.filter((f): f is StoredFault & { kind: 'end-of-medium' } => f.kind === 'end-of-medium'),
      (f) => f.afterBytes,
    );
    const writeFault = minBy(
      faults.filter((f): f is StoredFault & { kind: 'write-error' } => f.kind === 'write-error' && f.fileNumber === n),
      (f) => f.afterBytes,
    );
    const slow = faults.find((f): f is StoredFault & { kind: 'slow' } => f.kind === 'slow');
    const partialPath = this.library.partialFilePath(tape, n);
    const fd = await fdOpen(partialPath, 'w');
    this.busy = { op: 'writing', fileNumber: n };
    return new VirtualTapeFileWriter({
      drive: this,
      tape,
      fileNumber: n,
      blockSize: this.blockSize,
      fd,
      partialPath,
      finalPath: this.library.tapeFilePath(tape, n),
      dir,
      capacityBytes: meta.capacityBytes,
      baseUsed,
      eomFault,
      writeFault,
      ...(slow ? { slowBytesPerSecond: slow.bytesPerSecond } : {}),
    });
  }

  /** Called by the writer when it is done (closed or aborted). */
  async writerFinished(tape: string, nextFileNumber: number): Promise<void> {
    this.busy = null;
    await this.library.writeDriveState(this.id, { tape, fileNumber: nextFileNumber, midFile: false });
  }

  private assertIdle(what: string): void {
    if (this.busy) {
      throw new TapeBusyError(
        this.busy.op === 'writing'
          ? `cannot ${what} on ${this.id}: a writer for file ${this.busy.fileNumber} is open; close() or abort() it first.`
          : `cannot ${what} on ${this.id}: file ${this.busy.fileNumber} is being read; finish or stop that read first.`,
        { drive: this.id, fileNumber: this.busy.fileNumber },
      );
    }
  }

  private async loaded(): Promise<{ tape: string; state: DriveState; meta: TapeMeta }> {
    const state = await this.library.readDriveState(this.id);
    if (!state.tape) {
      throw new NoTapeError(`no tape loaded in drive ${this.id}; load one first (load(name)).`, { drive: this.id });
    }
    const meta = await this.library.readMeta(state.tape);
    if (!meta) {
      throw new NoTapeError(`tape ${state.tape} loaded in drive ${this.id} no longer exists in the library; unload() and load another tape.`, {
        drive: this.id,
        tape: state.tape,
      });
    }
    return { tape: state.tape, state, meta };
  }
}

function minBy<T>(items: T[], key: (t: T) => number): T | undefined {
  let best: T | undefined;
  for (const it of items) if (best === undefined || key(it) < key(best)) best = it;
  return best;
}

// ---------------------------------------------------------------------------------------------
// The writer

/**
 * Writes are staged in a buffer of several blocks (STAGE_BYTES) so that small chunks cost a
 * memcpy rather than a syscall each; chunks of at least a stage go straight from the caller's
 * buffer to the file. Capacity and faults are still checked on every write() at block
 * granularity, so errors surface from the write() that crosses the limit, exactly as if every
 * block went to tape at once.
 */
const STAGE_BYTES = 4 * 1024 * 1024;

interface WriterInit {
  drive: VirtualTapeDrive;
  tape: string;
  fileNumber: number;
  blockSize: number;
  fd: number;
  partialPath: string;
  finalPath: string;
  dir: string;
  capacityBytes: number;
  /** Bytes of the files before this one. */
  baseUsed: number;
  eomFault: (StoredFault & { kind: 'end-of-medium' }) | undefined;
  writeFault: (StoredFault & { kind: 'write-error' }) | undefined;
  slowBytesPerSecond?: number;
}

class VirtualTapeFileWriter implements TapeFileWriter {
  readonly blockSize: number;
  readonly fileNumber: number;
  private readonly stage: Buffer;
  /** Bytes in `stage`: whole blocks followed by at most one partial block. */
  private stageLen = 0;
  /** Bytes written to the file (whole blocks). */
  private flushed = 0;
  /** Bytes given to write(). */
  private payload = 0;
  /** Max bytes this file may hold, in whole blocks, and which limit that is. */
  private readonly maxFileBytes: number;
  private readonly limitKind: 'end-of-medium' | 'write-error' | 'none';
  private readonly capacity: number;
  private state: 'open' | 'failed' | 'closed' | 'aborted' = 'open';
  private failure: Error | undefined;
  private readonly queue = new SerialQueue();

  constructor(private readonly w: WriterInit) {
    const bs = w.blockSize;
    this.blockSize = bs;
    this.fileNumber = w.fileNumber;
    this.stage = Buffer.allocUnsafe(Math.max(bs, Math.floor(STAGE_BYTES / bs) * bs));
    this.capacity = Math.min(w.capacityBytes, w.eomFault?.afterBytes ?? Infinity);
    const eomLimit = this.capacity - w.baseUsed;
    const errLimit = w.writeFault?.afterBytes ?? Infinity;
    const limit = Math.min(eomLimit, errLimit);
    this.limitKind = limit === Infinity ? 'none' : errLimit <= eomLimit ? 'write-error' : 'end-of-medium';
    this.maxFileBytes = limit === Infinity ? Infinity : Math.max(0, Math.floor(limit / bs) * bs);
  }

  private slowStart = 0;
  private slowBytes = 0;

  write(chunk: Buffer): Promise<void> {
    const bps = this.w.slowBytesPerSecond;
    if (!bps) return this.queue.run(() => this.doWrite(chunk));
    return this.queue.run(async () => {
      await this.doWrite(chunk);
      if (!this.slowStart) this.slowStart = Date.now();
      this.slowBytes += chunk.length;
      const due = this.slowStart + (this.slowBytes / bps) * 1000 - Date.now();
      if (due > 0) await new Promise((r) => setTimeout(r, due));
    });
  }

  close(): Promise<{ bytes: number; tapeBytes: number }> {
    return this.queue.run(() => this.doClose());
  }

  abort(): Promise<void> {
    return this.queue.run(() => this.doAbort());
  }

  private assertOpen(op: string): void {
    if (this.state === 'failed') throw this.failure!;
    if (this.state !== 'open') {
      throw new Error(`cannot ${op} tape file ${this.fileNumber} on ${this.w.drive.id}: the writer is already ${this.state}.`);
    }
  }

  private fail(e: unknown): never {
    this.state = 'failed';
    this.failure = e as Error;
    throw e;
  }

  private async doWrite(chunk: Buffer): Promise<void> {
    this.assertOpen('write');
    try {
      const bs = this.blockSize;
      const buffered = this.flushed + this.stageLen;
      // Whole blocks this write completes: do they still fit on the tape?
      if (Math.floor((buffered + chunk.length) / bs) * bs > this.maxFileBytes) {
        const take = Math.max(0, this.maxFileBytes - buffered);
        await this.append(chunk.subarray(0, take));
        await this.flushWholeBlocks();
        await this.limitReached();
      }
      await this.append(chunk);
      this.payload += chunk.length;
    } catch (e) {
      this.fail(e);
    }
  }

  /** Stage or write data; only ever called with data that fits. */
  private async append(data: Buffer): Promise<void> {
    const bs = this.blockSize;
    const stage = this.stage;
    let off = 0;
    while (off < data.length) {
      const left = data.length - off;
      if (this.stageLen === 0 && left >= stage.length) {
        const n = Math.floor(left / bs) * bs; // straight from the caller's buffer, no copy
        await this.pwrite(data.subarray(off, off + n));
        off += n;
        continue;
      }
      const n = Math.min(stage.length - this.stageLen, left);
      data.copy(stage, this.stageLen, off, off + n);
      this.stageLen += n;
      off += n;
      if (this.stageLen === stage.length) {
        await this.pwrite(stage);
        this.stageLen = 0;
      }
    }
  }

  private async flushWholeBlocks(): Promise<void> {
    const whole = Math.floor(this.stageLen / this.blockSize) * this.blockSize;
    if (whole === 0) return;
    await this.pwrite(this.stage.subarray(0, whole));
    this.stage.copy(this.stage, 0, whole, this.stageLen);
    this.stageLen -= whole;
  }

  /** The tape (or the injected write error) stops this file here. */
  private async limitReached(): Promise<never> {
    const { w } = this;
    const lib = w.drive.library;
    if (this.limitKind === 'write-error' && w.writeFault) {
      if (w.writeFault.once) await lib.removeFault(w.tape, w.writeFault.id);
      throw new TapeIOError(
        `write error on tape ${w.tape} in ${w.drive.id}, file ${w.fileNumber} at byte ${this.flushed} (injected write-error fault). abort() this file and write it again, or use another tape.`,
        { drive: w.drive.id, tape: w.tape, fileNumber: w.fileNumber },
      );
    }
    if (w.eomFault && w.eomFault.afterBytes < w.capacityBytes && w.eomFault.once) await lib.removeFault(w.tape, w.eomFault.id);
    throw new EndOfMediumError(
      `end of medium on tape ${w.tape} in ${w.drive.id} while writing file ${w.fileNumber}: ${formatBytes(w.baseUsed + this.flushed)} of ${formatBytes(this.capacity)} used. abort() this file and continue on another tape.`,
      { drive: w.drive.id, tape: w.tape, fileNumber: w.fileNumber },
    );
  }

  private async pwrite(buf: Buffer): Promise<void> {
    let done = 0;
    while (done < buf.length) done += await fdWrite(this.w.fd, buf, done, buf.length - done, this.flushed + done);
    this.flushed += buf.length;
  }

  private async doClose(): Promise<{ bytes: number; tapeBytes: number }> {
    this.assertOpen('close');
    const { w } = this;
    try {
      const bs = this.blockSize;
      const rem = this.stageLen % bs;
      if (rem !== 0) {
        // Zero-pad the last block; that block must fit too.
        if (this.flushed + this.stageLen - rem + bs > this.maxFileBytes) {
          this.stageLen -= rem;
          await this.flushWholeBlocks();
          await this.limitReached();
        }
        this.stage.fill(0, this.stageLen, this.stageLen + bs - rem);
        this.stageLen += bs - rem;
      }
      await this.flushWholeBlocks();
      // The filemark: data on stable storage, then the file becomes complete.
      await fdSync(w.fd);
      await fdClose(w.fd);
      this.fdClosed = true;
      await rename(w.partialPath, w.finalPath);
      await fsyncDir(w.dir);
    } catch (e) {
      this.fail(e);
    }
    this.state = 'closed';
    await w.drive.writerFinished(w.tape, w.fileNumber + 1);
    return { bytes: this.payload, tapeBytes: this.flushed };
  }

  private fdClosed = false;

  private async doAbort(): Promise<void> {
    if (this.state === 'closed' || this.state === 'aborted') return;
    const { w } = this;
    this.state = 'aborted';
    if (!this.fdClosed) {
      // Blocks already accepted reach the tape (as a drive flushes its buffer); a trailing
      // partial block does not: a drive only writes whole blocks.
      await this.flushWholeBlocks().catch(() => undefined);
      await fdClose(w.fd).catch(() => undefined);
    }
    this.fdClosed = true;
    // The .partial stays (data without filemark); the drive is left at the start of it, so
    // end of data is this file number and the next write replaces it.
    await w.drive.writerFinished(w.tape, w.fileNumber);
  }
}

// Callback-style fs calls: measurably cheaper per call than FileHandle methods.
function fdWrite(fd: number, buf: Buffer, off: number, len: number, pos: number): Promise<number> {
  return new Promise((res, rej) => fsWrite(fd, buf, off, len, pos, (e, n) => (e ? rej(e) : res(n))));
}

function fdRead(fd: number, buf: Buffer, off: number, len: number, pos: number): Promise<number> {
  return new Promise((res, rej) => fsRead(fd, buf, off, len, pos, (e, n) => (e ? rej(e) : res(n))));
}

function fdSync(fd: number): Promise<void> {
  return new Promise((res, rej) => fsFsync(fd, (e) => (e ? rej(e) : res())));
}

function fdClose(fd: number): Promise<void> {
  return new Promise((res, rej) => fsClose(fd, (e) => (e ? rej(e) : res())));
}

function fdOpen(path: string, flags: string): Promise<number> {
  return new Promise((res, rej) => fsOpen(path, flags, (e, fd) => (e ? rej(e) : res(fd))));
}
