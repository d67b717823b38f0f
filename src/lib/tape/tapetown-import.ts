/**
 * Adopting a tape of tapetown's own emulator into the virtual tape library.
 *
 * tapetown's emulator (`emulator_dir` in its tape.conf) kept tape file N as
 * `emulator_dir/fileNNNNN.tar` (five digits, from file00000.tar): the output of `ssh HOST tar
 * -c /abs/target` for one target, a GNU tar archive, with no label file. The import copies
 * file00000.tar, file00001.tar, ... (contiguous from 00000, up to the first gap) to tape
 * files 0, 1, ... of a new tape; the source directory is only read.
 *
 * Block sizes: tapetown's drive was in variable-block mode, each block as long as one write()
 * of ssh. The emulator files keep no block boundaries, so they are cut as GNU tar wrote them:
 * records of 10240 bytes (tar's default blocking factor 20), the last block whatever remains
 * (a partial trailing tar, e.g. one cut off at the end of the tape, ends in a short block).
 * The tape is variable-block (meta.json `blockMode: 'variable'` with the sizes as runs) and
 * write protected: nothing is ever appended to an adopted tape or written over it.
 */
import { constants as fsConstants } from 'node:fs';
import { copyFile, mkdir, readdir, rm, stat } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { ConflictError, NotFoundError, ValidationError } from '../errors.ts';
import { MAX_VARIABLE_BLOCK_BYTES } from './drive.ts';
import type { VirtualTapeLibrary } from './virtual-library.ts';
import { fdClose, fdOpen, fdSync, fsyncDir, isErrno, writeJsonAtomic, type BlockRun, type TapeInfo, type TapeMeta } from './vtl-state.ts';

/** GNU tar's default record size (blocking factor 20 x 512), the block size an adopted file is cut into. */
export const TAPETOWN_RECORD_BYTES = 10240;

/** tapetown's emulator file name for tape file N: file00000.tar, file00001.tar, ... */
export const EMULATOR_FILE_RE = /^file(\d{5,})\.tar$/;

export function emulatorFileName(fileNumber: number): string {
  return `file${String(fileNumber).padStart(5, '0')}.tar`;
}

export interface TapetownImportOptions {
  /** The block size the files are cut into (default TAPETOWN_RECORD_BYTES, 10240). */
  recordBytes?: number;
}

export interface TapetownImport {
  tape: TapeInfo;
  /** Emulator files not imported because they come after a gap in the numbering. */
  ignored: string[];
}

/** The blocks of a file of `bytes` bytes cut into records: whole records, then what remains. */
export function recordRuns(bytes: number, recordBytes: number): BlockRun[] {
  const whole = Math.floor(bytes / recordBytes);
  const rest = bytes % recordBytes;
  const runs: BlockRun[] = [];
  if (whole > 0) runs.push([recordBytes, whole]);
  if (rest > 0) runs.push([rest, 1]);
  return runs;
}

interface EmulatorFile {
  path: string;
  bytes: number;
}

/** The emulator's tape files in order, file00000.tar up to the first gap, and the names after it. */
export async function scanEmulatorDir(dir: string): Promise<{ files: EmulatorFile[]; ignored: string[] }> {
  const what = "give the emulator_dir from tapetown's tape.conf (it holds file00000.tar, file00001.tar, ...)";
  let names: string[];
  try {
    if (!(await stat(dir)).isDirectory()) throw new ValidationError(`${dir} is not a directory; ${what}.`, { dir });
    names = await readdir(dir);
  } catch (e) {
    if (isErrno(e, 'ENOENT')) throw new NotFoundError(`the tapetown emulator directory ${dir} does not exist; ${what}.`, { dir });
    throw e;
  }
  const byNumber = new Map<number, string>();
  for (const name of names) {
    const m = EMULATOR_FILE_RE.exec(name);
    if (m) byNumber.set(Number(m[1]), name);
  }
  if (!byNumber.has(0)) {
    throw new ValidationError(
      `no file00000.tar in ${dir} (${names.length === 0 ? 'the directory is empty' : `${byNumber.size} fileNNNNN.tar of ${names.length} entries`}): not a tapetown emulator tape, whose file N is fileNNNNN.tar from file00000.tar; ${what}.`,
      { dir },
    );
  }
  const files: EmulatorFile[] = [];
  for (let n = 0; byNumber.has(n); n++) {
    const path = join(dir, byNumber.get(n)!);
    const st = await stat(path);
    if (!st.isFile())
      throw new ValidationError(`${path} is not a regular file; a tapetown emulator tape file is a plain tar file. Nothing was imported.`, { path });
    files.push({ path, bytes: st.size });
  }
  const ignored = [...byNumber.entries()]
    .filter(([n]) => n > files.length)
    .sort(([a], [b]) => a - b)
    .map(([, name]) => name);
  return { files, ignored };
}

/** Create tape `name` in `lib` from the emulator directory (see the file comment). */
export async function importTapetownTape(
  lib: VirtualTapeLibrary,
  name: string,
  emulatorDir: string,
  opts: TapetownImportOptions = {},
): Promise<TapetownImport> {
  const dir = lib.tapeDir(name); // validates the name
  const recordBytes = opts.recordBytes ?? TAPETOWN_RECORD_BYTES;
  if (!Number.isSafeInteger(recordBytes) || recordBytes < 1 || recordBytes > MAX_VARIABLE_BLOCK_BYTES) {
    throw new ValidationError(
      `invalid record size ${recordBytes} for importing ${name}: give a whole number of bytes up to 16 MiB (tapetown's GNU tar wrote 10240).`,
    );
  }
  const source = resolve(emulatorDir);
  const { files, ignored } = await scanEmulatorDir(source);
  await mkdir(lib.tapesDir, { recursive: true });
  try {
    await mkdir(dir);
  } catch (e) {
    if (!isErrno(e, 'EEXIST')) throw e;
    const half = (await lib.readMeta(name).catch(() => 'unreadable')) === undefined;
    throw new ConflictError(
      half
        ? `${dir} exists without meta.json (an import or create that did not finish?); remove that directory and import again, or pick another name.`
        : `tape ${name} already exists in the library at ${lib.rootDir}; pick another name for the adopted tape.`,
      { tape: name },
    );
  }
  try {
    const blockSizes: BlockRun[][] = [];
    let total = 0;
    for (const [n, f] of files.entries()) {
      const dest = lib.tapeFilePath(name, n);
      await copyFile(f.path, dest, fsConstants.COPYFILE_EXCL);
      const fd = await fdOpen(dest, 'r');
      try {
        await fdSync(fd);
      } finally {
        await fdClose(fd);
      }
      const bytes = (await stat(dest)).size;
      if (bytes !== f.bytes) {
        throw new ConflictError(
          `${f.path} changed while it was copied (${f.bytes} bytes, then ${bytes}); make sure nothing writes to ${source} and import again.`,
          {
            tape: name,
          },
        );
      }
      blockSizes.push(recordRuns(bytes, recordBytes));
      total += bytes;
    }
    await fsyncDir(dir);
    const now = new Date().toISOString();
    const meta: TapeMeta = {
      version: 1,
      name,
      capacityBytes: Math.max(1, total),
      writeProtected: true,
      createdAt: now,
      blockMode: 'variable',
      blockSizes,
      origin: { kind: 'tapetown-emulator', dir: source, recordBytes, importedAt: now },
    };
    await writeJsonAtomic(join(dir, 'meta.json'), meta); // the tape exists from here on
  } catch (e) {
    await rm(dir, { recursive: true, force: true });
    throw e;
  }
  return { tape: await lib.tapeInfo(name), ignored };
}
