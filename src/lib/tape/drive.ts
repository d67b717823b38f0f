/**
 * The tape device abstraction: one `TapeDrive` interface with two implementations,
 * the file-backed virtual tape library (virtual-library.ts) and the Linux st driver
 * (st-drive.ts). Everything above this layer (labels, the archiver, the agent) talks to
 * a `TapeDrive` and never knows which one it has.
 *
 * Tape model: a tape is a sequence of files separated by filemarks, followed by end of
 * data (EOD). Files are numbered from 0 (file 0 is the label by convention of the layer
 * above). Data is written and read in fixed-size blocks. Writing always begins a new file
 * at the current position and everything after that position is lost.
 *
 * Variable blocks: tapes adopted from the predecessor tool tapetown were written with the
 * drive in variable-block mode (each block as long as the write() that made it). They are
 * read with `readFile({ variable: { maxBlockBytes } })`, which yields every block as it is on
 * tape; a fixed-block read of such a tape fails with BlockSizeError. They are never written.
 *
 * Error classes carry a stable `code` and extend `ArchiveError` so the CLI and handlers map
 * them like every other error of the project; `isTapeError()` narrows to the tape ones.
 */
import { ArchiveError } from '../errors.ts';

export const DEFAULT_BLOCK_SIZE = 256 * 1024;

/**
 * Default read buffer of a variable-block read: the largest block it can read. tapetown read
 * its tapes with `dd bs=512k`, so its blocks are at most 512 KiB; 1 MiB leaves room.
 */
export const DEFAULT_MAX_BLOCK_BYTES = 1024 * 1024;

/** The largest read buffer a variable-block read may ask for (the st driver's limit is of that order). */
export const MAX_VARIABLE_BLOCK_BYTES = 16 * 1024 * 1024;

export interface ReadFileOptions {
  signal?: AbortSignal;
  /**
   * Read in variable-block mode: each yielded Buffer is one block as it is on tape (any size,
   * odd sizes too). `maxBlockBytes` (default DEFAULT_MAX_BLOCK_BYTES) is the read buffer: a
   * block larger than it fails the read with BlockSizeError (raise maxBlockBytes and read the
   * file again from its start). On a fixed-block tape the blocks are the tape's block size.
   */
  variable?: { maxBlockBytes?: number };
}

export interface DriveStatus {
  /** A tape is in the drive and ready. */
  loaded: boolean;
  /** The loaded tape is write protected (false when no tape is loaded). */
  writeProtected: boolean;
  /** The file the drive is positioned in or at the start of; null when unknown or no tape. */
  fileNumber: number | null;
  /** The fixed block size this drive object reads and writes with. */
  blockSize: number;
}

export interface TapeDrive {
  /** "vtl0", "/dev/nst0" */
  readonly id: string;
  status(): Promise<DriveStatus>;
  rewind(): Promise<void>;
  /**
   * Position at the start of tape file N (0-based; file 0 is the label). N equal to the
   * number of files on tape positions at end of data; PositionError if N is past end of data.
   */
  seekFile(fileNumber: number): Promise<void>;
  /** Position at end of data; returns the number of complete files on tape (= the next file number to write). */
  seekEndOfData(): Promise<number>;
  /**
   * Read the file at the current position up to its filemark, as fixed-size blocks; afterwards
   * the position is the next file. Each yielded Buffer is fresh (the consumer may keep it).
   * PositionError when positioned at end of data or inside a file (after an interrupted read:
   * seekFile first). If the consumer stops early or the signal aborts, the position is inside
   * the file.
   *
   * With `variable` (see ReadFileOptions): variable-block mode, one yielded Buffer per block
   * on tape, BlockSizeError for a block larger than `variable.maxBlockBytes`. Without it, a
   * tape written in variable-block mode fails with BlockSizeError (read it with `variable`).
   * The drive's fixed block size is in force again afterwards (also after an error or abort).
   */
  readFile(opts?: ReadFileOptions): AsyncIterable<Buffer>;
  /**
   * Begin a new file at the current position (which must be the start of a file or end of
   * data). Everything after this position is lost (tape semantics).
   */
  openWriter(): Promise<TapeFileWriter>;
}

export interface TapeFileWriter {
  readonly blockSize: number;
  /** The file number this writer is writing. */
  readonly fileNumber: number;
  /**
   * Buffers into fixed-size blocks. EndOfMediumError when the tape is full, TapeIOError on an
   * I/O error. The chunk may be reused by the caller once the promise resolves. After a
   * rejection the writer is failed: write() and close() reject again; call abort().
   */
  write(chunk: Buffer): Promise<void>;
  /**
   * Pads the last block with zeros, writes the filemark synchronously (flushing the drive
   * buffer); resolves only then, with the payload bytes written (`bytes`, what write() was
   * given) and the bytes on tape including padding (`tapeBytes`, a multiple of blockSize).
   */
  close(): Promise<{ bytes: number; tapeBytes: number }>;
  /** Gives the file up without a filemark; partial data stays on tape until overwritten, as on real tape. */
  abort(): Promise<void>;
}

/** Optional: libraries with a changer (the virtual library) can load a tape by name. */
export interface TapeChanger {
  load(tapeName: string): Promise<void>;
  unload(): Promise<void>;
  loadedTape(): Promise<string | null>;
  /** Optional: the names of every tape the library holds (rebuild_catalog --all). */
  inventory?(): Promise<string[]>;
}

export function isTapeChanger(x: unknown): x is TapeChanger {
  const c = x as Partial<TapeChanger> | null;
  return !!c && typeof c.load === 'function' && typeof c.unload === 'function' && typeof c.loadedTape === 'function';
}

// ---------------------------------------------------------------------------------------------
// Errors

export interface TapeErrorContext {
  /** Drive id ("vtl0", "/dev/nst0"). */
  drive?: string;
  /** Tape name, when the drive knows it (the virtual library does, st does not). */
  tape?: string;
  fileNumber?: number;
  /** errno code of the underlying system call, e.g. "EIO". */
  errno?: string;
  [key: string]: unknown;
}

export abstract class TapeError extends ArchiveError {
  declare readonly context: TapeErrorContext;
  constructor(message: string, context: TapeErrorContext = {}, options?: { cause?: unknown }) {
    super(message, context);
    if (options?.cause !== undefined) (this as { cause?: unknown }).cause = options.cause;
  }
}

/** The tape is full: the write that crossed end of medium failed. Continue on another tape. */
export class EndOfMediumError extends TapeError {
  override readonly name = 'EndOfMediumError';
  readonly code = 'TAPE_END_OF_MEDIUM';
  readonly status = 507;
}

/** A read or write failed on the medium or in the drive. */
export class TapeIOError extends TapeError {
  override readonly name = 'TapeIOError';
  readonly code = 'TAPE_IO';
  readonly status = 500;
  /** The tape file the error happened in, when known. */
  get fileNumber(): number | undefined {
    return this.context.fileNumber;
  }
}

/**
 * The blocks on tape do not fit the read: a block larger than a variable-block read's buffer
 * (`maxBlockBytes`), or a variable-block tape read in fixed-block mode. Nothing is wrong with
 * the medium: read the file again (seekFile first) with the options the message names.
 */
export class BlockSizeError extends TapeError {
  override readonly name = 'BlockSizeError';
  readonly code = 'TAPE_BLOCK_SIZE';
  readonly status = 409;
}

/** The loaded tape is write protected (tab set, or set in the virtual library). */
export class WriteProtectedError extends TapeError {
  override readonly name = 'WriteProtectedError';
  readonly code = 'TAPE_WRITE_PROTECTED';
  readonly status = 409;
}

/** No tape is loaded in the drive (or the named tape does not exist in the library). */
export class NoTapeError extends TapeError {
  override readonly name = 'NoTapeError';
  readonly code = 'TAPE_NO_TAPE';
  readonly status = 409;
}

/** The requested position does not exist (past end of data) or the position is unsuitable/unknown. */
export class PositionError extends TapeError {
  override readonly name = 'PositionError';
  readonly code = 'TAPE_POSITION';
  readonly status = 409;
}

/** The drive or tape is in use: a writer is open, the device is open elsewhere, the tape is in another drive. */
export class TapeBusyError extends TapeError {
  override readonly name = 'TapeBusyError';
  readonly code = 'TAPE_BUSY';
  readonly status = 409;
}

export function isTapeError(e: unknown): e is TapeError {
  return e instanceof TapeError;
}

export function assertFileNumber(fileNumber: number, drive: string): void {
  if (!Number.isSafeInteger(fileNumber) || fileNumber < 0) {
    throw new PositionError(`invalid tape file number ${fileNumber} on ${drive}: file numbers are integers >= 0.`, {
      drive,
    });
  }
}

export function assertBlockSize(blockSize: number): void {
  if (!Number.isSafeInteger(blockSize) || blockSize < 512 || blockSize % 512 !== 0 || blockSize > 16 * 1024 * 1024) {
    throw new RangeError(`invalid tape block size ${blockSize}: use a multiple of 512 bytes between 512 B and 16 MiB (default 256 KiB).`);
  }
}

/** The read buffer of a variable-block read (DEFAULT_MAX_BLOCK_BYTES unless given); RangeError when out of range. */
export function variableReadBuffer(variable: { maxBlockBytes?: number }): number {
  const n = variable.maxBlockBytes ?? DEFAULT_MAX_BLOCK_BYTES;
  if (!Number.isSafeInteger(n) || n < 1 || n > MAX_VARIABLE_BLOCK_BYTES) {
    throw new RangeError(`invalid maxBlockBytes ${n} for a variable-block read: use a whole number of bytes from 1 to 16 MiB (default 1 MiB).`);
  }
  return n;
}

/** The error of a variable-block read that met a block larger than its buffer. */
export function blockTooLarge(where: string, maxBlockBytes: number, blockBytes: number | undefined, ctx: TapeErrorContext): BlockSizeError {
  const size = blockBytes === undefined ? 'larger than' : `${blockBytes} bytes, larger than`;
  return new BlockSizeError(
    `a block of ${where} is ${size} the read buffer of ${maxBlockBytes} bytes (variable-block read); seekFile(${ctx.fileNumber ?? 'N'}) and read the file again with a larger buffer: readFile({ variable: { maxBlockBytes: ${Math.min(MAX_VARIABLE_BLOCK_BYTES, Math.max(blockBytes ?? 0, maxBlockBytes * 2))} } }).`,
    { ...ctx, maxBlockBytes, ...(blockBytes !== undefined ? { blockBytes } : {}) },
  );
}
