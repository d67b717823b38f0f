/**
 * TapeDrive on the Linux SCSI tape driver (st), through the non-rewinding device (/dev/nst0).
 *
 * - Positioning and status use the mt-st `mt` command: `mt -f DEV status|rewind|asf N|eod|
 *   weof 1|setblk N`. The file number st reports is kept by the driver, so it is only right
 *   when every movement of the tape goes through st (which is the case here). After `eod`
 *   the file number is the number of files on tape (st's `fast-eod` option must be off,
 *   which is the default; with it st reports file number -1 and seekEndOfData fails).
 * - Data goes through the device file in fixed-block mode (`mt setblk blockSize` when the
 *   drive reports another block size): every write(2) is exactly one block (the last one
 *   zero-padded), reads use a blockSize buffer and a 0-byte read is the filemark.
 * - Variable-block reads (`readFile({ variable })`, for tapetown tapes): `mt setblk 0` before
 *   the device is opened (st allows one open at a time, mt included), one read(2) of a
 *   maxBlockBytes buffer per block (st returns exactly one block), and `mt setblk blockSize`
 *   after the device is closed, also after an error or an abort, so that writes and
 *   fixed-block reads find the drive as they expect. A block larger than the buffer fails
 *   with ENOMEM in st (and that block is skipped): it becomes a BlockSizeError.
 * - The filemark: st writes one filemark when a device fd that was written to is closed,
 *   and that filemark is written without the immediate bit, i.e. it flushes the drive
 *   buffer and close(2) returns only when the data is on tape (Documentation/scsi/st.rst:
 *   "Writing filemark at close() is always flushing the drive buffers"). We rely on that and
 *   then confirm with `mt status` that the drive is at file N+1, block 0. (A file with no
 *   blocks gets its filemark from `mt weof 1`, since st writes none when nothing was written.)
 *   Do not also run `mt weof` after a written file: that would add an empty file.
 * - abort(): st cannot close a written fd without a filemark, so the aborted data ends with
 *   one; we then reposition to the start of that file (`mt asf N`) so the next write
 *   replaces it. Until then it counts as a file for seekEndOfData.
 *
 * Everything goes through the `StDeviceIo` seam so tests can record and fake it.
 */
import {
  BlockSizeError,
  DEFAULT_BLOCK_SIZE,
  NoTapeError,
  PositionError,
  TapeBusyError,
  TapeIOError,
  WriteProtectedError,
  assertBlockSize,
  assertFileNumber,
  blockTooLarge,
  variableReadBuffer,
  type DriveStatus,
  type ReadFileOptions,
  type TapeDrive,
  type TapeErrorContext,
  type TapeFileWriter,
} from './drive.ts';
import {
  O_RDONLY,
  O_WRONLY,
  createNodeStDeviceIo,
  errnoOf,
  mapDeviceError,
  mapMtFailure,
  parseMtStatus,
  type MtStatus,
  type StDeviceIo,
  type StRunResult,
} from './st-device.ts';
import { StTapeFileWriter } from './st-writer.ts';
import { errorMessage } from '../errors.ts';

// ---------------------------------------------------------------------------------------------
// The drive

export interface StTapeDriveOptions {
  /** Fixed block size (default 256 KiB). The tape must be read with the size it was written with. */
  blockSize?: number;
  io?: StDeviceIo;
  /** The mt-st binary (default "mt"; Debian also installs it as "mt-st"). */
  mtCommand?: string;
  /**
   * Put st in fixed-block mode with `mt setblk` when status shows another block size, and in
   * variable-block mode (`mt setblk 0`) for a variable-block read (default true). With false
   * the operator sets the mode, and a variable-block read needs st in variable-block mode.
   */
  setBlockSize?: boolean;
}

export class StTapeDrive implements TapeDrive {
  readonly blockSize: number;
  private readonly io: StDeviceIo;
  private readonly mtCommand: string;
  private readonly setBlockSize: boolean;
  private busy: { op: 'writing' | 'reading'; fileNumber: number } | null = null;

  /** `id` is the device path, normally the non-rewinding /dev/nstN. */
  constructor(
    readonly id: string,
    opts: StTapeDriveOptions = {},
  ) {
    this.blockSize = opts.blockSize ?? DEFAULT_BLOCK_SIZE;
    assertBlockSize(this.blockSize);
    this.io = opts.io ?? createNodeStDeviceIo();
    this.mtCommand = opts.mtCommand ?? 'mt';
    this.setBlockSize = opts.setBlockSize ?? true;
  }

  /** Run `mt -f DEV ...args`; throws a mapped tape error on failure. */
  async mt(args: string[], ctx: TapeErrorContext = {}): Promise<string> {
    const res = await this.runMt(args);
    if (res.code !== 0) throw mapMtFailure(this.id, args, res, ctx);
    return res.stdout;
  }

  private async runMt(args: string[]): Promise<StRunResult> {
    try {
      return await this.io.run(this.mtCommand, ['-f', this.id, ...args]);
    } catch (e) {
      const hint = errnoOf(e) === 'ENOENT' ? ` (${this.mtCommand} not found: install mt-st, e.g. apt-get install mt-st)` : '';
      throw new TapeIOError(`cannot run \`${this.mtCommand} -f ${this.id} ${args.join(' ')}\`${hint}: ${errorMessage(e)}`, { drive: this.id }, { cause: e });
    }
  }

  /** `mt status`, parsed. */
  async mtStatus(): Promise<MtStatus> {
    const out = await this.mt(['status']);
    try {
      return parseMtStatus(out);
    } catch (e) {
      throw new TapeIOError(`cannot read the status of ${this.id}: ${errorMessage(e)}`, { drive: this.id }, { cause: e });
    }
  }

  async status(): Promise<DriveStatus> {
    const s = await this.mtStatus();
    return { loaded: s.loaded, writeProtected: s.writeProtected, fileNumber: s.loaded ? s.fileNumber : null, blockSize: this.blockSize };
  }

  async rewind(): Promise<void> {
    this.assertIdle('rewind');
    await this.mt(['rewind']);
  }

  async seekFile(fileNumber: number): Promise<void> {
    this.assertIdle('seek');
    assertFileNumber(fileNumber, this.id);
    const args = ['asf', String(fileNumber)];
    const res = await this.runMt(args);
    if (res.code === 0) return;
    const mapped = mapMtFailure(this.id, args, res, { fileNumber });
    if (!(mapped instanceof TapeIOError)) throw mapped;
    // Spacing over filemarks past end of data ends in BLANK CHECK -> EIO.
    throw new PositionError(
      `cannot position ${this.id} at file ${fileNumber}: ${mapped.message}. File ${fileNumber} is most likely past end of data (seekEndOfData() tells how many files there are).`,
      { drive: this.id, fileNumber },
      { cause: mapped },
    );
  }

  async seekEndOfData(): Promise<number> {
    this.assertIdle('seek to end of data');
    await this.mt(['eod']);
    const s = await this.mtStatus();
    if (s.fileNumber === null) {
      throw new PositionError(
        `${this.id} reports an unknown file number after eod; turn st's fast-eod option off (mt -f ${this.id} stclearoptions fast-eod) and retry.`,
        { drive: this.id },
      );
    }
    return s.fileNumber;
  }

  readFile(opts: ReadFileOptions = {}): AsyncIterable<Buffer> {
    return this.readGen(opts.signal, opts.variable);
  }

  private async *readGen(signal: AbortSignal | undefined, variable: ReadFileOptions['variable']): AsyncGenerator<Buffer> {
    this.assertIdle('read');
    signal?.throwIfAborted();
    const maxBlockBytes = variable ? variableReadBuffer(variable) : undefined;
    const s = await this.positionedStatus('read');
    const n = s.fileNumber!;
    if (s.eod) throw this.atEndOfData(n);
    if (maxBlockBytes === undefined) await this.ensureBlockSize(s);
    else this.assertVariableAllowed(s, n);
    this.busy = { op: 'reading', fileNumber: n };
    let fd: number | undefined;
    /** `mt setblk 0` was issued: the fixed block size is set again at the end. */
    let switched = false;
    // st opens once at a time: `mt status` (is this end of data?) only once the fd is closed.
    const closeFd = async (): Promise<void> => {
      const f = fd;
      fd = undefined;
      if (f !== undefined) await this.io.close(f).catch(() => undefined);
    };
    const atEod = async (): Promise<boolean> => {
      await closeFd();
      return this.atEodNow();
    };
    try {
      if (maxBlockBytes !== undefined && this.setBlockSize && s.blockSize !== 0) {
        switched = true;
        await this.mt(['setblk', '0'], { fileNumber: n });
      }
      try {
        fd = await this.io.open(this.id, O_RDONLY);
      } catch (e) {
        throw mapDeviceError(e, this.id, 'open-read', { fileNumber: n });
      }
      // Fixed blocks: a fresh blockSize buffer per block, in shared memory (a verify hashes it
      // in place on a worker thread: hash-worker.ts). Variable blocks: one read buffer of
      // maxBlockBytes, each block copied out at its own size (the consumer may keep it).
      const readBuf = maxBlockBytes === undefined ? undefined : Buffer.allocUnsafe(maxBlockBytes);
      let blocks = 0;
      for (;;) {
        signal?.throwIfAborted();
        const buf = readBuf ?? Buffer.from(new SharedArrayBuffer(this.blockSize));
        let got: number;
        try {
          got = await this.io.read(fd, buf);
        } catch (e) {
          if (blocks === 0 && errnoOf(e) === 'EIO' && (await atEod())) throw this.atEndOfData(n);
          throw this.readError(e, n, blocks, maxBlockBytes);
        }
        if (got === 0) break; // filemark (or end of data: see below)
        blocks++;
        if (readBuf) yield Buffer.from(readBuf.subarray(0, got));
        else yield got === buf.length ? buf : buf.subarray(0, got);
      }
      // An empty file and end of data both read as 0 bytes at once; st knows which.
      if (blocks === 0 && (await atEod())) throw this.atEndOfData(n);
    } finally {
      await closeFd();
      // Not thrown (a finished read stays finished): ensureBlockSize() sets the size again
      // before the next write or fixed-block read and reports a failure there.
      if (switched) await this.mt(['setblk', String(this.blockSize)], { fileNumber: n }).catch(() => undefined);
      this.busy = null;
    }
  }

  /** A failed read(2), with what to do when the blocks on tape do not fit the read. */
  private readError(e: unknown, n: number, blocks: number, maxBlockBytes: number | undefined): Error {
    const ctx = { drive: this.id, fileNumber: n, errno: errnoOf(e) };
    if (maxBlockBytes !== undefined && errnoOf(e) === 'ENOMEM') {
      return blockTooLarge(`file ${n} on ${this.id} (block ${blocks}, ENOMEM on read)`, maxBlockBytes, undefined, ctx);
    }
    if (maxBlockBytes !== undefined && errnoOf(e) === 'EOVERFLOW') {
      return new BlockSizeError(
        `st on ${this.id} cannot take a read buffer of ${maxBlockBytes} bytes (EOVERFLOW on read, file ${n}); read with a smaller one, e.g. readFile({ variable: { maxBlockBytes: 524288 } }) (tapetown's blocks are at most 512 KiB), or raise st's buffer limits (max_sg_segs).`,
        { ...ctx, maxBlockBytes },
        { cause: e },
      );
    }
    const mapped = mapDeviceError(e, this.id, 'read', { fileNumber: n });
    if (maxBlockBytes === undefined && blocks === 0 && errnoOf(e) === 'EIO' && mapped instanceof TapeIOError) {
      // st in fixed-block mode answers a block of another size with EIO ("Incorrect block size").
      return new TapeIOError(
        `${mapped.message} If the tape was written in variable-block mode (e.g. a tapetown tape), read it with variable blocks: readFile({ variable: {} }).`,
        mapped.context,
        { cause: e },
      );
    }
    return mapped;
  }

  /** With setBlockSize off, a variable-block read needs st already in variable-block mode. */
  private assertVariableAllowed(s: MtStatus, n: number): void {
    if (this.setBlockSize || s.blockSize === 0) return;
    throw new BlockSizeError(
      `${this.id} is in fixed-block mode (${s.blockSize ?? 'unknown'}-byte blocks) and this drive may not change it (setBlockSize: false); run \`${this.mtCommand} -f ${this.id} setblk 0\` and read again, or let the drive set the block mode.`,
      { drive: this.id, fileNumber: n },
    );
  }

  async openWriter(): Promise<TapeFileWriter> {
    this.assertIdle('open a writer');
    const s = await this.positionedStatus('write');
    const n = s.fileNumber!;
    if (s.writeProtected) {
      throw new WriteProtectedError(`the tape in ${this.id} is write protected (WR_PROT in mt status); slide the write-protect tab or use another tape.`, {
        drive: this.id,
        fileNumber: n,
      });
    }
    await this.ensureBlockSize(s);
    let fd: number;
    try {
      fd = await this.io.open(this.id, O_WRONLY);
    } catch (e) {
      throw mapDeviceError(e, this.id, 'open-write', { fileNumber: n });
    }
    this.busy = { op: 'writing', fileNumber: n };
    return new StTapeFileWriter(this, this.io, fd, n);
  }

  /** @internal called by the writer when done. */
  writerFinished(): void {
    this.busy = null;
  }

  /** Status that must show a loaded tape at the start of a file with a known number. */
  private async positionedStatus(what: 'read' | 'write'): Promise<MtStatus> {
    const s = await this.mtStatus();
    if (!s.loaded) {
      throw new NoTapeError(`no tape in ${this.id} (mt status: ${s.flags.join(' ') || 'no status bits'}); load a tape (e.g. with mtx) and retry.`, {
        drive: this.id,
      });
    }
    if (s.fileNumber === null) {
      throw new PositionError(
        `the position of ${this.id} is unknown (file number -1); rewind it or move to a file (mt rewind, mt fsf N, mt eod) before you ${what}.`,
        {
          drive: this.id,
        },
      );
    }
    // At end of data the block number does not matter (st may report -1 after `eod`).
    if (s.blockNumber !== 0 && !s.eod) {
      throw new PositionError(
        `${this.id} is inside file ${s.fileNumber} (block ${s.blockNumber ?? 'unknown'}), not at the start of a file; seekFile() or seekEndOfData() before you ${what}.`,
        { drive: this.id, fileNumber: s.fileNumber },
      );
    }
    return s;
  }

  private async ensureBlockSize(s: MtStatus): Promise<void> {
    if (this.setBlockSize && s.blockSize !== this.blockSize) await this.mt(['setblk', String(this.blockSize)]);
  }

  private async atEodNow(): Promise<boolean> {
    try {
      return (await this.mtStatus()).eod;
    } catch {
      return false;
    }
  }

  private atEndOfData(n: number): PositionError {
    return new PositionError(`${this.id} is at end of data (file ${n}); there is no file to read. seekFile() to an earlier file.`, {
      drive: this.id,
      fileNumber: n,
    });
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
}
