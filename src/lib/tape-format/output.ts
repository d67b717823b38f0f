/**
 * Output side of the tar stream: copies everything put into large pooled buffers (1 MiB)
 * and queues those for the writer, a bounded amount at a time; write() calls are issued one
 * at a time, in order. Copying (memcpy, ~0.1 s per GiB) lets every producer reuse its read
 * buffers at once; on VMs, fresh buffers per chunk (page faults, GC of external memory) cost
 * far more than the copy.
 */

export interface ChunkWriter {
  write(chunk: Buffer): Promise<void>;
}

export interface OutputOptions {
  /** Size of the aggregation buffers (default 1 MiB). */
  chunkSize?: number;
  /** Bytes queued for the writer before put() makes the caller wait (default 8 MiB). */
  maxQueued?: number;
  onProgress?: (bytesDone: number) => void;
}

export class TarOutput {
  /** Bytes put so far (queued or written). */
  bytes = 0;
  /** Bytes the writer has accepted. */
  written = 0;
  private readonly chunkSize: number;
  private readonly maxQueued: number;
  private readonly maxPooled: number;
  private agg: Buffer;
  private aggLen = 0;
  private readonly free: Buffer[] = [];
  private queued = 0;
  private chain: Promise<void> = Promise.resolve();
  private error: unknown = undefined;
  private failed = false;
  /** When set, data is counted but no longer written (the file is going to be discarded). */
  private discarding = false;
  private waiters: { bytes: number; resolve: () => void }[] = [];

  constructor(
    private readonly writer: ChunkWriter,
    private readonly opts: OutputOptions = {},
  ) {
    this.chunkSize = opts.chunkSize ?? 1024 * 1024;
    this.maxQueued = opts.maxQueued ?? 8 * 1024 * 1024;
    this.agg = Buffer.allocUnsafe(this.chunkSize);
    this.maxPooled = Math.ceil(this.maxQueued / this.chunkSize) + 2;
  }

  /** Stop writing: everything from now on is dropped (the caller will discard the tape file). */
  discard(): void {
    this.discarding = true;
    this.aggLen = 0;
  }

  get discarded(): boolean {
    return this.discarding;
  }

  /** The writer's error once a write has failed (every later put/flush rejects with it). */
  get failure(): unknown {
    return this.failed ? this.error : undefined;
  }

  /**
   * Queue a copy of `chunk` (the caller may reuse it as soon as put() returns). Returns a
   * promise only when the caller must wait (too much queued); otherwise undefined, so the hot
   * path needs no await.
   */
  put(chunk: Buffer): Promise<void> | undefined {
    if (this.failed) throw this.error;
    const n = chunk.length;
    this.bytes += n;
    if (this.discarding || n === 0) return undefined;
    let off = 0;
    while (off < n) {
      const k = Math.min(n - off, this.chunkSize - this.aggLen);
      chunk.copy(this.agg, this.aggLen, off, off + k);
      this.aggLen += k;
      off += k;
      if (this.aggLen === this.chunkSize) this.issueAgg();
    }
    return this.queued > this.maxQueued ? this.waitBelow(this.maxQueued / 2) : undefined;
  }

  /** Queue `n` zero bytes. */
  zeros(n: number): Promise<void> | undefined {
    if (n <= 0) return undefined;
    return this.put(n <= ZEROS.length ? ZEROS.subarray(0, n) : Buffer.alloc(n));
  }

  /** Write out everything queued; rejects with the writer's error if a write failed. */
  async flush(): Promise<void> {
    if (this.failed) throw this.error;
    if (this.aggLen && !this.discarding) this.issueAgg();
    await this.chain;
    if (this.failed) throw this.error;
  }

  /** Wait for queued writes to finish, ignoring their outcome (before the caller aborts the writer). */
  async settle(): Promise<void> {
    this.discarding = true;
    await this.chain.catch(() => undefined);
  }

  private issueAgg(): void {
    const buf = this.agg;
    const len = this.aggLen;
    this.agg = this.free.pop() ?? Buffer.allocUnsafe(this.chunkSize);
    this.aggLen = 0;
    this.issue(len === buf.length ? buf : buf.subarray(0, len), buf);
  }

  private issue(chunk: Buffer, recycle: Buffer): void {
    const n = chunk.length;
    this.queued += n;
    this.chain = this.chain.then(async () => {
      if (this.failed) return;
      try {
        await this.writer.write(chunk);
        this.written += n;
        this.opts.onProgress?.(this.written);
      } catch (e) {
        this.failed = true;
        this.error = e;
      } finally {
        this.queued -= n;
        if (this.free.length < this.maxPooled) this.free.push(recycle);
        this.wake();
      }
    });
  }

  private waitBelow(bytes: number): Promise<void> {
    return new Promise<void>((resolve) => {
      this.waiters.push({ bytes, resolve });
    }).then(() => {
      if (this.failed) throw this.error;
    });
  }

  private wake(): void {
    if (!this.waiters.length) return;
    const keep: typeof this.waiters = [];
    for (const w of this.waiters) {
      if (this.failed || this.queued <= w.bytes) w.resolve();
      else keep.push(w);
    }
    this.waiters = keep;
  }
}

const ZEROS = Buffer.alloc(64 * 1024);
