/** The writer of one virtual tape file: staged blocks, capacity and fault checks, fsync + rename as the filemark. */
import { rename } from 'node:fs/promises';
import { formatBytes } from '../domain/units.ts';
import { EndOfMediumError, TapeIOError } from './drive.ts';
import type { VirtualTapeDrive } from './virtual-drive.ts';
import { fdClose, fdSync, fdWrite, fsyncDir, type StoredFault } from './vtl-state.ts';
import { TapeFileWriterBase } from './file-writer.ts';

// ---------------------------------------------------------------------------------------------
// The writer

/**
 * Writes are staged in a buffer of several blocks (STAGE_BYTES) so that small chunks cost a
 * memcpy rather than a syscall each; chunks of at least a stage go straight from the caller's
 * buffer to the file. Capacity and faults are still checked on every write() at block
 * granularity, so errors surface from the write() that crosses the limit, exactly as if every
 * block went to tape at once.
 */
export const STAGE_BYTES = 4 * 1024 * 1024;

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

export class VirtualTapeFileWriter extends TapeFileWriterBase {
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

  constructor(private readonly w: WriterInit) {
    super(w.blockSize, w.fileNumber, w.drive.id);
    const bs = w.blockSize;
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

  /** The data, then (slow fault) the wait that keeps the rate at the fault's bytes per second. */
  protected async doWrite(chunk: Buffer): Promise<void> {
    await this.writeData(chunk);
    const bps = this.w.slowBytesPerSecond;
    if (!bps) return;
    if (!this.slowStart) this.slowStart = Date.now();
    this.slowBytes += chunk.length;
    const due = this.slowStart + (this.slowBytes / bps) * 1000 - Date.now();
    if (due > 0) await new Promise((r) => setTimeout(r, due));
  }

  private async writeData(chunk: Buffer): Promise<void> {
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

  protected async doClose(): Promise<{ bytes: number; tapeBytes: number }> {
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

  protected async doAbort(): Promise<void> {
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
