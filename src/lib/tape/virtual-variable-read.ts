/**
 * Variable-block reads of the virtual tape library (readFile({ variable })): the blocks of a
 * tape file as they are on tape. On a variable-block tape (adopted from tapetown) the sizes
 * come from meta.json's `blockSizes`; on a fixed-block tape they are the drive's block size
 * (the last block whatever remains, should a file not be whole blocks). A block larger than
 * the read buffer fails the read there, with the blocks before it yielded, as the st driver
 * does (ENOMEM). The injected read faults (read-error, flip-byte, slow) apply as in fixed
 * reads. Simple on purpose: no read-ahead, no recycling; blocks are views of fresh chunks.
 */
import { stat } from 'node:fs/promises';
import { TapeIOError, blockTooLarge } from './drive.ts';
import { recordRuns } from './tapetown-import.ts';
import type { VirtualTapeLibrary } from './virtual-library.ts';
import { fdClose, fdOpen, fdRead, isVariableBlock, minBy, type BlockRun, type StoredFault, type TapeMeta } from './vtl-state.ts';

/** Bytes read per read(2) (blocks are cut out of such chunks). */
const CHUNK_BYTES = 4 * 1024 * 1024;

export interface VariableReadInit {
  library: VirtualTapeLibrary;
  driveId: string;
  tape: string;
  meta: TapeMeta;
  fileNumber: number;
  /** The drive's block size: the blocks of a fixed-block tape. */
  blockSize: number;
  maxBlockBytes: number;
  faults: StoredFault[];
  signal: AbortSignal | undefined;
  /** Called once the file is open (the drive is then inside the file). */
  started: () => Promise<void>;
}

/** The blocks of tape file N as runs, checked against the file's size on disk. */
export function blockRunsOf(init: Pick<VariableReadInit, 'meta' | 'tape' | 'fileNumber' | 'blockSize' | 'driveId'>, fileBytes: number): BlockRun[] {
  const { meta, tape, fileNumber: n } = init;
  if (!isVariableBlock(meta)) return recordRuns(fileBytes, init.blockSize);
  const runs = meta.blockSizes[n];
  const listed = runs?.reduce((sum, [size, count]) => sum + size * count, 0);
  if (runs === undefined || listed !== fileBytes) {
    throw new TapeIOError(
      `tape ${tape}, file ${n}: meta.json lists ${listed ?? 'no'} bytes of blocks but the file holds ${fileBytes} bytes; the tape directory was changed after the import. Import the tape again from its source.`,
      { drive: init.driveId, tape, fileNumber: n },
    );
  }
  return runs;
}

export async function* readVariableBlocks(init: VariableReadInit): AsyncGenerator<Buffer> {
  const { library, tape, fileNumber: n, signal } = init;
  const ctx = { drive: init.driveId, tape, fileNumber: n };
  const mine = init.faults.filter((f) => 'fileNumber' in f && f.fileNumber === n);
  const readFault = minBy(
    mine.filter((f): f is StoredFault & { kind: 'read-error' } => f.kind === 'read-error'),
    (f) => f.afterBytes,
  );
  const flips = mine.filter((f): f is StoredFault & { kind: 'flip-byte' } => f.kind === 'flip-byte');
  const slow = init.faults.find((f): f is StoredFault & { kind: 'slow' } => f.kind === 'slow');
  const slowStart = Date.now();

  const fd = await fdOpen(library.tapeFilePath(tape, n), 'r');
  try {
    await init.started();
    const { size } = await stat(library.tapeFilePath(tape, n));
    const runs = blockRunsOf(init, size);
    let chunk = Buffer.alloc(0);
    let chunkAt = 0;
    let at = 0;
    let index = 0;
    for (const [len, count] of runs) {
      for (let i = 0; i < count; i++, index++, at += len) {
        signal?.throwIfAborted();
        if (len > init.maxBlockBytes) throw blockTooLarge(`file ${n} of tape ${tape} in ${init.driveId} (block ${index})`, init.maxBlockBytes, len, ctx);
        if (at + len > chunkAt + chunk.length) {
          chunk = Buffer.allocUnsafe(Math.min(Math.max(CHUNK_BYTES, len), size - at));
          chunkAt = at;
          let got = 0;
          while (got < chunk.length) {
            const r = await fdRead(fd, chunk, got, chunk.length - got, at + got);
            if (r === 0) throw new TapeIOError(`tape ${tape}, file ${n} ended early at byte ${at + got} of ${size} (changed while read?); read it again.`, ctx);
            got += r;
          }
        }
        if (readFault && at + len > readFault.afterBytes) {
          if (readFault.once) await library.removeFault(tape, readFault.id);
          throw new TapeIOError(
            `read error on tape ${tape} in ${init.driveId}, file ${n} at byte ${Math.max(at, readFault.afterBytes)} (injected read-error fault). Retry the read (seekFile(${n})) or read another copy.`,
            ctx,
          );
        }
        const off = at - chunkAt;
        for (const f of flips) {
          if (f.offset >= at && f.offset < at + len) {
            chunk[off + f.offset - at]! ^= 0xff;
            if (f.once) await library.removeFault(tape, f.id);
          }
        }
        yield chunk.subarray(off, off + len);
        if (slow) {
          const due = slowStart + ((at + len) / slow.bytesPerSecond) * 1000 - Date.now();
          if (due > 0) await new Promise((r) => setTimeout(r, due));
        }
      }
    }
  } finally {
    await fdClose(fd).catch(() => undefined);
  }
}
