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
 *   tapes/<name>/meta.json        { version, name, capacityBytes, writeProtected, createdAt,
 *                                   blockMode?, blockSizes?, origin? }
 *   tapes/<name>/faults.json      injected faults (absent = none)
 *   tapes/<name>/file-0000        complete tape file 0 (the label), raw bytes, padded to blocks
 *   tapes/<name>/file-0001 ...    complete tape files: `tar -tf file-0003` works on a tar file
 *   tapes/<name>/file-000N.partial the file being written (or left by abort/crash: no filemark)
 *   drives/<driveId>.json         { version, tape, fileNumber, midFile }: what is loaded where
 *
 * Semantics: close() of a writer = fsync + rename of the .partial (the filemark). Writing at
 * file N removes files >= N and any .partial first. End of data = the number of complete
 * files numbered contiguously from 0. One process at a time should use a given drive.
 *
 * Variable-block tapes (adopted from tapetown, importTapetownTape(); see tapetown-import.ts):
 * meta.json has `blockMode: "variable"` and `blockSizes`, where blockSizes[N] lists the blocks
 * of file-000N in order as runs [size, count] (e.g. [[10240, 812], [4096, 1]]); the files
 * themselves are the emulator's tar files byte for byte, not padded. Such a tape is write
 * protected for good (openWriter and setWriteProtected(false) refuse), is read with
 * readFile({ variable }), and a fixed-block read of it fails with BlockSizeError. A meta.json
 * without blockMode (all older ones) is a fixed-block tape: files are whole blocks of the
 * drive's block size, the same blocks a variable-block read yields.
 */
import { randomBytes } from 'node:crypto';
import { mkdir, readdir, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { ConflictError, NotFoundError, ValidationError } from '../errors.ts';
import { importTapetownTape, type TapetownImport, type TapetownImportOptions } from './tapetown-import.ts';
import { DEFAULT_BLOCK_SIZE, assertBlockSize, assertFileNumber } from './drive.ts';
import { VirtualTapeDrive } from './virtual-drive.ts';
import {
  EMPTY_DRIVE,
  FILE_RE,
  NAME_RE,
  assertName,
  countComplete,
  driveStateSchema,
  faultSchema,
  tapeFileName,
  isErrno,
  isVariableBlock,
  metaSchema,
  readJson,
  storedFaultsSchema,
  writeJsonAtomic,
  type DriveState,
  type StoredFault,
  type TapeFault,
  type TapeFileEntry,
  type TapeInfo,
  type TapeMeta,
  type VirtualTapeLibraryOptions,
} from './vtl-state.ts';
import { formatIssues } from '../validation.ts';

export { VirtualTapeDrive } from './virtual-drive.ts';
export { tapeFileName, type StoredFault, type TapeFault, type TapeInfo, type VirtualTapeLibraryOptions } from './vtl-state.ts';
export { TAPETOWN_RECORD_BYTES, type TapetownImport, type TapetownImportOptions } from './tapetown-import.ts';

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

  /**
   * Adopt a tape of tapetown's emulator: a new tape `name` whose files 0, 1, ... are copies of
   * `emulatorDir`/file00000.tar, file00001.tar, ... (up to the first gap; the names after a
   * gap come back in `ignored`), variable-block and write protected. The source directory is
   * only read. NotFoundError / ValidationError for a missing, empty or foreign directory,
   * ConflictError when the name is taken.
   */
  importTapetownTape(name: string, emulatorDir: string, opts: TapetownImportOptions = {}): Promise<TapetownImport> {
    return importTapetownTape(this, name, emulatorDir, opts);
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
    if (!on && isVariableBlock(meta)) {
      throw new ConflictError(
        `tape ${name} is an adopted variable-block tape (tapetown) and stays write protected: nothing may be appended to it or written over it. Write to another tape.`,
        { tape: name },
      );
    }
    await writeJsonAtomic(join(this.tapeDir(name), 'meta.json'), { ...meta, writeProtected: on });
  }

  /** Persist a fault on the tape; returns its id. Faults act when a writer or read starts. */
  async injectFault(name: string, fault: TapeFault): Promise<string> {
    await this.readMetaOrThrow(name);
    const parsed = faultSchema.safeParse(fault);
    if (!parsed.success) {
      throw new ValidationError(`invalid fault for tape ${name}: ${formatIssues(parsed.error)}`);
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
      throw new NotFoundError(
        `no tape named ${name} in the virtual library at ${this.rootDir}; create it with "tape-agent vtl create ${this.rootDir} ${name}" or list the tapes with "tape-agent vtl list ${this.rootDir}".`,
        {
          tape: name,
        },
      );
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

  /** The complete tape files (0 .. end of data - 1) with their sizes on tape. */
  async tapeFiles(name: string): Promise<{ fileNumber: number; tapeBytes: number }[]> {
    const count = await this.countFiles(name);
    const out: { fileNumber: number; tapeBytes: number }[] = [];
    for (let n = 0; n < count; n++) out.push({ fileNumber: n, tapeBytes: (await stat(this.tapeFilePath(name, n))).size });
    return out;
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
      blockMode: meta.blockMode ?? 'fixed',
      files: countComplete(files),
      usedBytes,
      hasPartial: files.some((f) => f.partial),
      loadedIn: loaded.get(meta.name) ?? null,
    };
  }
}
