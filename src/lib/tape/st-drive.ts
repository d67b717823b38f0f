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
  DEFAULT_BLOCK_SIZE,
  EndOfMediumError,
  NoTapeError,
  PositionError,
  TapeBusyError,
  TapeIOError,
  WriteProtectedError,
  assertBlockSize,
  assertFileNumber,
  type DriveStatus,
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
import { TapeFileWriterBase } from './file-writer.ts';
import { errorMessage } from '../errors.ts';

// ---------------------------------------------------------------------------------------------
// The drive

export interface StTapeDriveOptions {
  /** Fixed block size (default 256 KiB). The tape must be read with the size it was written with. */
  blockSize?: number;
  io?: StDeviceIo;
  /** The mt-st binary (default "mt"; Debian also installs it as "mt-st"). */
  mtCommand?: string;
  /** Put st in fixed-block mode with `mt setblk` when status shows another block size (default true). */
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

  readFile(opts: { signal?: AbortSignal } = {}): AsyncIterable<Buffer> {
    return this.readGen(opts.signal);
  }

  private async *readGen(signal: AbortSignal | undefined): AsyncGenerator<Buffer> {
    this.assertIdle('read');
    signal?.throwIfAborted();
    const s = await this.positionedStatus('read');
    const n = s.fileNumber!;
    if (s.eod) throw this.atEndOfData(n);
    await this.ensureBlockSize(s);
    this.busy = { op: 'reading', fileNumber: n };
    let fd: number | undefined;
    try {
      try {
        fd = await this.io.open(this.id, O_RDONLY);
      } catch (e) {
        throw mapDeviceError(e, this.id, 'open-read', { fileNumber: n });
      }
      let blocks = 0;
      for (;;) {
        signal?.throwIfAborted();
        const buf = Buffer.allocUnsafe(this.blockSize);
        let got: number;
        try {
          got = await this.io.read(fd, buf);
        } catch (e) {
          if (blocks === 0 && errnoOf(e) === 'EIO' && (await this.atEodNow())) throw this.atEndOfData(n);
          throw mapDeviceError(e, this.id, 'read', { fileNumber: n });
        }
        if (got === 0) break; // filemark (or end of data: see below)
        blocks++;
        yield got === buf.length ? buf : buf.subarray(0, got);
      }
      // An empty file and end of data both read as 0 bytes at once; st knows which.
      if (blocks === 0 && (await this.atEodNow())) throw this.atEndOfData(n);
    } finally {
      this.busy = null;
      if (fd !== undefined) await this.io.close(fd).catch(() => undefined);
    }
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

/** One tape file on the st device: exactly one write(2) per block, the filemark at close(2). */
class StTapeFileWriter extends TapeFileWriterBase {
  private readonly pending: Buffer;
  private pendingLen = 0;
  private blocks = 0;
  private payload = 0;
  private fd: number | undefined;

  constructor(
    private readonly drive: StTapeDrive,
    private readonly io: StDeviceIo,
    fd: number,
    fileNumber: number,
  ) {
    super(drive.blockSize, fileNumber, drive.id);
    this.fd = fd;
    this.pending = Buffer.alloc(this.blockSize);
  }

  protected async doWrite(chunk: Buffer): Promise<void> {
    this.assertOpen('write');
    const bs = this.blockSize;
    let off = 0;
    try {
      if (this.pendingLen > 0) {
        const n = Math.min(bs - this.pendingLen, chunk.length);
        chunk.copy(this.pending, this.pendingLen, 0, n);
        this.pendingLen += n;
        off = n;
        if (this.pendingLen === bs) {
          await this.writeBlock(this.pending);
          this.pendingLen = 0;
        }
      }
      while (chunk.length - off >= bs) {
        await this.writeBlock(chunk.subarray(off, off + bs)); // no copy
        off += bs;
      }
      if (off < chunk.length) {
        chunk.copy(this.pending, 0, off);
        this.pendingLen = chunk.length - off;
      }
      this.payload += chunk.length;
    } catch (e) {
      this.fail(e);
    }
  }

  /** Exactly one write(2) of exactly one block. */
  private async writeBlock(block: Buffer): Promise<void> {
    const ctx = { fileNumber: this.fileNumber };
    let n: number;
    try {
      n = await this.io.write(this.fd!, block);
    } catch (e) {
      throw mapDeviceError(e, this.drive.id, 'write', ctx);
    }
    if (n !== block.length) {
      throw new EndOfMediumError(
        `end of medium on ${this.drive.id}, file ${this.fileNumber}: short write (${n} of ${block.length} bytes); abort this file and continue on another tape.`,
        { ...ctx, drive: this.drive.id },
      );
    }
    this.blocks++;
  }

  protected async doClose(): Promise<{ bytes: number; tapeBytes: number }> {
    this.assertOpen('close');
    const dev = this.drive.id;
    try {
      if (this.pendingLen > 0) {
        this.pending.fill(0, this.pendingLen);
        await this.writeBlock(this.pending);
        this.pendingLen = 0;
      }
      const fd = this.fd!;
      this.fd = undefined;
      try {
        await this.io.close(fd); // st writes the filemark here, flushing the drive buffer
      } catch (e) {
        throw mapDeviceError(e, dev, 'close', { fileNumber: this.fileNumber });
      }
      if (this.blocks === 0) await this.drive.mt(['weof', '1'], { fileNumber: this.fileNumber });
      const s = await this.drive.mtStatus();
      if (s.fileNumber !== this.fileNumber + 1 || s.blockNumber !== 0) {
        throw new TapeIOError(
          `after closing file ${this.fileNumber} on ${dev} the drive reports file ${s.fileNumber ?? 'unknown'} block ${s.blockNumber ?? 'unknown'}, expected file ${this.fileNumber + 1} block 0: the filemark is not confirmed; treat the file as not written.`,
          { drive: dev, fileNumber: this.fileNumber },
        );
      }
    } catch (e) {
      this.fail(e);
    }
    this.state = 'closed';
    this.drive.writerFinished();
    return { bytes: this.payload, tapeBytes: this.blocks * this.blockSize };
  }

  protected async doAbort(): Promise<void> {
    if (this.state === 'closed' || this.state === 'aborted') return;
    this.state = 'aborted';
    const fd = this.fd;
    this.fd = undefined;
    try {
      if (fd !== undefined) await this.io.close(fd).catch(() => undefined);
      // st wrote a filemark on close if any block was written: go back to the start of the
      // aborted file so the next write replaces it.
      if (this.blocks > 0) await this.drive.mt(['asf', String(this.fileNumber)], { fileNumber: this.fileNumber });
    } finally {
      this.drive.writerFinished();
    }
  }
}
