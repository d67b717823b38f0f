/**
 * What every tape file writer shares (the virtual library's and the st driver's): calls run
 * one after another even when the caller does not await each one, and a writer is open,
 * failed (every later call rejects with the first error: call abort()), closed or aborted.
 * Subclasses implement the block I/O in doWrite / doClose / doAbort.
 */
import { SerialQueue } from '../concurrency.ts';
import type { TapeFileWriter } from './drive.ts';

export type WriterState = 'open' | 'failed' | 'closed' | 'aborted';

export abstract class TapeFileWriterBase implements TapeFileWriter {
  protected state: WriterState = 'open';
  private failure: Error | undefined;
  private readonly queue = new SerialQueue();

  constructor(
    readonly blockSize: number,
    readonly fileNumber: number,
    /** The drive, for messages. */
    protected readonly driveId: string,
  ) {}

  write(chunk: Buffer): Promise<void> {
    return this.queue.run(() => this.doWrite(chunk));
  }

  close(): Promise<{ bytes: number; tapeBytes: number }> {
    return this.queue.run(() => this.doClose());
  }

  abort(): Promise<void> {
    return this.queue.run(() => this.doAbort());
  }

  protected abstract doWrite(chunk: Buffer): Promise<void>;
  protected abstract doClose(): Promise<{ bytes: number; tapeBytes: number }>;
  protected abstract doAbort(): Promise<void>;

  /** Throws the writer's failure, or that it is no longer open. */
  protected assertOpen(op: string): void {
    if (this.state === 'failed') throw this.failure!;
    if (this.state !== 'open') {
      throw new Error(`cannot ${op} tape file ${this.fileNumber} on ${this.driveId}: the writer is already ${this.state}.`);
    }
  }

  /** Marks the writer failed with `e` and throws it. */
  protected fail(e: unknown): never {
    this.state = 'failed';
    this.failure = e as Error;
    throw e;
  }
}
