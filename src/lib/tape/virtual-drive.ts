/**
 * A drive of the virtual tape library: load/unload (the changer), positioning, reading tape
 * files as fixed-size blocks with injected read faults, and opening writers. Every operation
 * re-reads the drive state and the tape's meta and faults from disk (several processes).
 * Variable-block reads (adopted tapetown tapes) are in virtual-variable-read.ts.
 */
import { rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import {
  BlockSizeError,
  NoTapeError,
  PositionError,
  TapeBusyError,
  TapeIOError,
  WriteProtectedError,
  assertBlockSize,
  assertFileNumber,
  variableReadBuffer,
  type DriveStatus,
  type ReadFileOptions,
  type TapeChanger,
  type TapeDrive,
  type TapeFileWriter,
} from './drive.ts';
import type { VirtualTapeLibrary } from './virtual-library.ts';
import { ChunkPool, type RecyclingBlocks } from './read-chunks.ts';
import { readVariableBlocks } from './virtual-variable-read.ts';
import { STAGE_BYTES, VirtualTapeFileWriter } from './virtual-writer.ts';
import { assertName, countComplete, fdClose, fdOpen, fdRead, isVariableBlock, minBy, type DriveState, type StoredFault, type TapeMeta } from './vtl-state.ts';

export type { RecyclingBlocks } from './read-chunks.ts';

/** Chunks read ahead of the one whose blocks are being yielded. */
const READ_AHEAD = 2;

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
        `cannot load tape ${tapeName} into ${this.id}: no such tape in the virtual library at ${this.library.rootDir}; create it ("tape-agent vtl create ${this.library.rootDir} ${tapeName}") or list the tapes ("tape-agent vtl list ${this.library.rootDir}").`,
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

  async inventory(): Promise<string[]> {
    return (await this.library.listTapes()).map((t) => t.name).sort();
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

  /**
   * The blocks of the tape file at the position, each a view of a buffer no other read uses.
   * A consumer done with a block (it keeps no view of it) may give it back with `recycle`:
   * once every block of a read buffer is back, the buffer is read into again (no fresh
   * memory, page faults and garbage per chunk).
   *
   * With `variable`: the blocks as they are on tape (see virtual-variable-read.ts); recycle
   * does nothing there.
   */
  readFile(opts: ReadFileOptions = {}): RecyclingBlocks {
    if (opts.variable) {
      const gen = this.readVariableGen(opts.signal, opts.variable);
      return { [Symbol.asyncIterator]: () => gen, recycle: () => undefined };
    }
    const chunks = new ChunkPool();
    const gen = this.readGen(opts.signal, chunks);
    return { [Symbol.asyncIterator]: () => gen, recycle: (block) => chunks.recycle(block) };
  }

  /** The drive must be at the start of a file that exists: the file to read. */
  private async readStart(): Promise<{ tape: string; meta: TapeMeta; n: number }> {
    const { tape, state, meta } = await this.loaded();
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
    return { tape, meta, n };
  }

  private async *readVariableGen(signal: AbortSignal | undefined, variable: { maxBlockBytes?: number }): AsyncGenerator<Buffer> {
    this.assertIdle('read');
    signal?.throwIfAborted();
    const maxBlockBytes = variableReadBuffer(variable);
    const { tape, meta, n } = await this.readStart();
    const faults = await this.library.listFaults(tape);
    this.busy = { op: 'reading', fileNumber: n };
    try {
      yield* readVariableBlocks({
        library: this.library,
        driveId: this.id,
        tape,
        meta,
        fileNumber: n,
        blockSize: this.blockSize,
        maxBlockBytes,
        faults,
        signal,
        started: () => this.library.writeDriveState(this.id, { tape, fileNumber: n, midFile: true }),
      });
      await this.library.writeDriveState(this.id, { tape, fileNumber: n + 1, midFile: false });
    } finally {
      this.busy = null;
    }
  }

  private async *readGen(signal: AbortSignal | undefined, chunks: ChunkPool): AsyncGenerator<Buffer> {
    this.assertIdle('read');
    signal?.throwIfAborted();
    const { tape, meta, n } = await this.readStart();
    if (isVariableBlock(meta)) {
      throw new BlockSizeError(
        `cannot read file ${n} of tape ${tape} in ${this.id} with fixed ${this.blockSize}-byte blocks: this tape was written in variable-block mode (adopted from tapetown); read it with variable blocks: readFile({ variable: {} }) (maxBlockBytes, default 1 MiB, is the largest block).`,
        { drive: this.id, tape, fileNumber: n },
      );
    }
    const faults = (await this.library.listFaults(tape)).filter((f) => 'fileNumber' in f && f.fileNumber === n);
    const readFault = minBy(
      faults.filter((f): f is StoredFault & { kind: 'read-error' } => f.kind === 'read-error'),
      (f) => f.afterBytes,
    );
    const flips = faults.filter((f): f is StoredFault & { kind: 'flip-byte' } => f.kind === 'flip-byte');
    const slow = (await this.library.listFaults(tape)).find((f): f is StoredFault & { kind: 'slow' } => f.kind === 'slow');
    const slowStart = Date.now();
    const readLimit = readFault ? readFault.afterBytes : Infinity;

    this.busy = { op: 'reading', fileNumber: n };
    let fd: number | undefined;
    /** Reads issued ahead, in file order. */
    const ahead: Promise<{ buf: Buffer; got: number }>[] = [];
    try {
      fd = await fdOpen(this.library.tapeFilePath(tape, n), 'r');
      await this.library.writeDriveState(this.id, { tape, fileNumber: n, midFile: true });
      const bs = this.blockSize;
      // Read several blocks per syscall; yield them as block-sized views of a buffer (fresh,
      // or one whose blocks were all recycled). The next chunks are read (in the thread pool)
      // while this one's blocks are consumed.
      const readSize = Math.max(bs, Math.floor(STAGE_BYTES / bs) * bs);
      const fdr = fd;
      const readChunk = async (at: number): Promise<{ buf: Buffer; got: number }> => {
        const buf = chunks.take(readSize);
        let got = 0;
        while (got < buf.length) {
          const r = await fdRead(fdr, buf, got, buf.length - got, at + got);
          if (r === 0) break;
          got += r;
        }
        return { buf, got };
      };
      let pos = 0;
      let nextRead = 0;
      for (;;) {
        signal?.throwIfAborted();
        const { buf, got } = await (ahead.shift() ?? readChunk(pos));
        if (got === 0) {
          chunks.give(buf, 0);
          break; // the filemark
        }
        chunks.give(buf, Math.ceil(got / bs));
        // More to read (not the file's last chunk): keep READ_AHEAD chunks being read.
        if (got === buf.length) {
          if (nextRead <= pos) nextRead = pos + got;
          while (ahead.length < READ_AHEAD) {
            const r = readChunk(nextRead);
            r.catch(() => undefined); // observed when its turn comes
            ahead.push(r);
            nextRead += readSize;
          }
        }
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
          if (slow) {
            const due = slowStart + ((at + len) / slow.bytesPerSecond) * 1000 - Date.now();
            if (due > 0) await new Promise((r) => setTimeout(r, due));
          }
        }
        pos += got;
        if (got < buf.length) break; // end of the file
      }
      await this.library.writeDriveState(this.id, { tape, fileNumber: n + 1, midFile: false });
    } finally {
      this.busy = null;
      // Reads still in flight finish before the descriptor is closed.
      for (const r of ahead.splice(0)) await r.catch(() => undefined);
      if (fd !== undefined) await fdClose(fd).catch(() => undefined);
    }
  }

  async openWriter(): Promise<TapeFileWriter> {
    this.assertIdle('open a writer');
    const { tape, state, meta } = await this.loaded();
    const n = state.fileNumber;
    if (isVariableBlock(meta)) {
      throw new WriteProtectedError(
        `tape ${tape} in drive ${this.id} is an adopted variable-block tape (tapetown) and is never written to: nothing may be appended to it or written over it. Load another tape to write.`,
        { drive: this.id, tape, fileNumber: n },
      );
    }
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
      throw new NoTapeError(`tape ${state.tape} loaded in drive ${this.id} no longer exists in the library; unload it and load another tape.`, {
        drive: this.id,
        tape: state.tape,
      });
    }
    return { tape: state.tape, state, meta };
  }
}
