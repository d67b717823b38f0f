/**
 * The virtual tape library's state on disk (see virtual-library.ts for the layout): schemas
 * of tape meta, faults and drive state, names, and the small fs helpers (atomic JSON writes,
 * directory fsync, callback-style fd calls) the library, its drives and writers share.
 */
import { randomBytes } from 'node:crypto';
import { close as fsClose, fsync as fsFsync, open as fsOpen, read as fsRead, write as fsWrite } from 'node:fs';
import { open, readFile, rename, writeFile } from 'node:fs/promises';
import { z } from 'zod';
import { ValidationError } from '../errors.ts';

// ---------------------------------------------------------------------------------------------
// Types and on-disk schemas

export const nonNegInt = z.number().int().nonnegative();

export const faultSchema = z.discriminatedUnion('kind', [
  /** The tape ends after `afterBytes` bytes in total (all files plus the one being written). */
  z.object({ kind: z.literal('end-of-medium'), afterBytes: nonNegInt, once: z.boolean().optional() }).strict(),
  /** Writing file `fileNumber` fails with TapeIOError once the file would exceed `afterBytes`. */
  z.object({ kind: z.literal('write-error'), fileNumber: nonNegInt, afterBytes: nonNegInt, once: z.boolean().optional() }).strict(),
  /** Reading file `fileNumber` fails with TapeIOError once the read would pass `afterBytes`. */
  z.object({ kind: z.literal('read-error'), fileNumber: nonNegInt, afterBytes: nonNegInt, once: z.boolean().optional() }).strict(),
  /** The byte at `offset` of file `fileNumber` reads back XOR 0xff. */
  z.object({ kind: z.literal('flip-byte'), fileNumber: nonNegInt, offset: nonNegInt, once: z.boolean().optional() }).strict(),
  /** Writes and reads run no faster than this, so tests can act while a write or a read is in progress. */
  z.object({ kind: z.literal('slow'), bytesPerSecond: z.number().int().positive(), once: z.boolean().optional() }).strict(),
]);

/** A fault to inject. `once: true` removes it after it fired, so a retry succeeds. */
export type TapeFault = z.infer<typeof faultSchema>;
export type StoredFault = TapeFault & { id: string };

export const storedFaultsSchema = z.array(z.intersection(faultSchema, z.object({ id: z.string().min(1) })));

/** A run of `count` blocks of `size` bytes each: [size, count]. */
export const blockRunSchema = z.tuple([z.number().int().positive(), z.number().int().positive()]);
export type BlockRun = z.infer<typeof blockRunSchema>;

export const metaSchema = z
  .object({
    version: z.literal(1),
    name: z.string(),
    capacityBytes: z.number().int().positive(),
    writeProtected: z.boolean(),
    createdAt: z.string(),
    /**
     * How the tape's blocks were written. Absent (every meta.json written before variable
     * blocks existed) = 'fixed': each file is whole blocks of the drive's block size.
     * 'variable': an adopted tape whose block sizes are in `blockSizes`; it is read only.
     */
    blockMode: z.enum(['fixed', 'variable']).optional(),
    /** Variable-block tapes: `blockSizes[N]` = the blocks of tape file N, in order, as runs. */
    blockSizes: z.array(z.array(blockRunSchema)).optional(),
    /** Where an adopted tape came from (informational). */
    origin: z
      .object({
        kind: z.literal('tapetown-emulator'),
        /** The emulator directory the files were copied from (never modified). */
        dir: z.string(),
        /** The block size the files were cut into (GNU tar's record size, 10240). */
        recordBytes: z.number().int().positive(),
        importedAt: z.string(),
      })
      .optional(),
  })
  .superRefine((m, ctx) => {
    const variable = m.blockMode === 'variable';
    if (variable !== (m.blockSizes !== undefined)) {
      ctx.addIssue({
        code: 'custom',
        path: ['blockSizes'],
        message: variable ? 'a variable-block tape needs blockSizes' : 'blockSizes is only for blockMode "variable"',
      });
    }
  });
export type TapeMeta = z.infer<typeof metaSchema>;

/** Whether a tape was written in variable-block mode (an older meta.json without blockMode is fixed). */
export function isVariableBlock(meta: TapeMeta): meta is TapeMeta & { blockMode: 'variable'; blockSizes: BlockRun[][] } {
  return meta.blockMode === 'variable';
}

export const driveStateSchema = z.object({
  version: z.literal(1),
  tape: z.string().nullable(),
  /** File the drive is at the start of (or inside, when midFile). */
  fileNumber: nonNegInt,
  /** Positioned inside file `fileNumber` (a read was interrupted): seek before reading or writing. */
  midFile: z.boolean(),
});
export type DriveState = z.infer<typeof driveStateSchema>;

export const EMPTY_DRIVE: DriveState = { version: 1, tape: null, fileNumber: 0, midFile: false };

export interface TapeInfo {
  name: string;
  capacityBytes: number;
  writeProtected: boolean;
  /** 'variable': an adopted (tapetown) tape, read with variable blocks, never written. */
  blockMode: 'fixed' | 'variable';
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

export const NAME_RE = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;

export function assertName(kind: 'tape' | 'drive', name: string): void {
  if (!NAME_RE.test(name)) {
    throw new ValidationError(
      `invalid ${kind} name ${JSON.stringify(name)}: use 1-64 characters from A-Z a-z 0-9 . _ - starting with a letter or digit (e.g. "TA0001L8", "vtl0").`,
    );
  }
}

export function tapeFileName(fileNumber: number): string {
  return `file-${String(fileNumber).padStart(4, '0')}`;
}

export const FILE_RE = /^file-(\d+)(\.partial)?$/;

export interface TapeFileEntry {
  fileNumber: number;
  partial: boolean;
  name: string;
}

// ---------------------------------------------------------------------------------------------
// Small fs helpers

export function isErrno(e: unknown, code: string): boolean {
  return (e as NodeJS.ErrnoException | null)?.code === code;
}

export async function readJson(path: string): Promise<unknown | undefined> {
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
export async function writeJsonAtomic(path: string, value: unknown): Promise<void> {
  const tmp = `${path}.tmp-${process.pid}-${randomBytes(4).toString('hex')}`;
  await writeFile(tmp, JSON.stringify(value, null, 2) + '\n');
  await rename(tmp, path);
}

export async function fsyncDir(dir: string): Promise<void> {
  const dh = await open(dir, 'r');
  try {
    await dh.sync();
  } finally {
    await dh.close();
  }
}

export function countComplete(files: TapeFileEntry[]): number {
  const complete = new Set(files.filter((f) => !f.partial).map((f) => f.fileNumber));
  let n = 0;
  while (complete.has(n)) n++;
  return n;
}

export function minBy<T>(items: T[], key: (t: T) => number): T | undefined {
  let best: T | undefined;
  for (const it of items) if (best === undefined || key(it) < key(best)) best = it;
  return best;
}

// Callback-style fs calls: measurably cheaper per call than FileHandle methods.
export function fdWrite(fd: number, buf: Buffer, off: number, len: number, pos: number): Promise<number> {
  return new Promise((res, rej) => fsWrite(fd, buf, off, len, pos, (e, n) => (e ? rej(e) : res(n))));
}

export function fdRead(fd: number, buf: Buffer, off: number, len: number, pos: number): Promise<number> {
  return new Promise((res, rej) => fsRead(fd, buf, off, len, pos, (e, n) => (e ? rej(e) : res(n))));
}

export function fdSync(fd: number): Promise<void> {
  return new Promise((res, rej) => fsFsync(fd, (e) => (e ? rej(e) : res())));
}

export function fdClose(fd: number): Promise<void> {
  return new Promise((res, rej) => fsClose(fd, (e) => (e ? rej(e) : res())));
}

export function fdOpen(path: string, flags: string): Promise<number> {
  return new Promise((res, rej) => fsOpen(path, flags, (e, fd) => (e ? rej(e) : res(fd))));
}
