/**
 * The read buffers of the virtual drive's fixed-block reads: blocks are views of chunks read
 * several blocks at a time, and a chunk is read into again once the reader gave all its
 * blocks back (recycle), so a long read costs no fresh memory per chunk.
 */

/** Blocks of a tape file read, and how to give one back once done with it. */
export interface RecyclingBlocks extends AsyncIterable<Buffer> {
  /** `block` (as yielded) is no longer used: its memory may be read into again. */
  recycle(block: Buffer): void;
}

/** Read buffers of one readFile: a buffer goes back to the pool once all its blocks are recycled. */
export class ChunkPool {
  // Enough for the blocks a verify holds for its hash worker (32 MiB, hash-worker.ts) and the read-ahead.
  private static readonly MAX_FREE = 12;
  private readonly free: Buffer[] = [];
  /** Buffers whose blocks are out: how many are not recycled yet. */
  private readonly out = new Map<ArrayBufferLike, { buf: Buffer; left: number }>();

  take(size: number): Buffer {
    const buf = this.free.pop();
    // Shared memory: a verify hashes views of blocks in place on a worker thread (hash-worker.ts).
    return buf && buf.length === size ? buf : Buffer.from(new SharedArrayBuffer(size));
  }

  /** `buf` was read into and `blocks` views of it are about to be yielded. */
  give(buf: Buffer, blocks: number): void {
    if (blocks === 0) this.release(buf);
    else this.out.set(buf.buffer, { buf, left: blocks });
  }

  recycle(block: Buffer): void {
    const o = this.out.get(block.buffer);
    if (!o || --o.left > 0) return;
    this.out.delete(block.buffer);
    this.release(o.buf);
  }

  private release(buf: Buffer): void {
    if (this.free.length < ChunkPool.MAX_FREE) this.free.push(buf);
  }
}
