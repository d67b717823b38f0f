/**
 * The writer of the st drive (st-drive.ts): one tape file on the st device, exactly one
 * write(2) per block, the filemark at close(2), confirmed by `mt status`.
 */
import { EndOfMediumError, TapeIOError } from './drive.ts';
import { mapDeviceError, type StDeviceIo } from './st-device.ts';
import type { StTapeDrive } from './st-drive.ts';
import { TapeFileWriterBase } from './file-writer.ts';

/** One tape file on the st device: exactly one write(2) per block, the filemark at close(2). */
export class StTapeFileWriter extends TapeFileWriterBase {
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
