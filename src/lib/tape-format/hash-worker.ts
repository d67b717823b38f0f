/**
 * SHA-256 of file data on a second thread, for the verify of a tape file (reader.ts). On two
 * cores the hashing alone takes about as long as `openssl sha256` of the whole tape file, so a
 * verify on one thread cannot keep up with it; the worker takes part of the hashing.
 *
 * Nothing is copied: the drives read tape blocks into shared memory (read-chunks.ts,
 * st-drive.ts), and the session posts, in batches, which pieces of which blocks belong
 * to which file; the worker hashes them in place, in order, and answers each batch with the
 * digests of the files that ended. A block the worker was given a view of goes back to its
 * source (recycle) only once the worker is past it, and the reader waits while more than
 * `maxHeldBytes` are held that way. A file is taken only while the worker is less than
 * `maxBacklogBytes` behind: otherwise the reader hashes it itself, so on a mix of file sizes
 * both threads hash (a file larger than the backlog limit is hashed by the worker while the
 * reader mostly waits). The worker starts only once a tape file has more than
 * `startAfterBytes` of file data; pieces of blocks not in shared memory (another source) are
 * copied into a staging buffer of shared memory, one a batch.
 *
 * The worker is plain CommonJS answering requests in order (worker-requests.ts), one per
 * process, shared by the sessions. If it fails, the sessions using it reject
 * (`room`, `settle`) with a HashWorkerError: the verify task reports the file as not read (the
 * copy unchanged, confirm again); nothing is reported good or bad.
 */
import { ArchiveError, errorMessage } from '../errors.ts';
import { RequestWorker } from '../worker-requests.ts';

const WORKER_SOURCE = `
const { parentPort } = require('node:worker_threads');
const { createHash, hash } = require('node:crypto');
const sessions = new Map(); // session -> Map<file, Hash> of files begun and not ended
parentPort.on('message', (m) => {
  if (m.close) { sessions.delete(m.s); parentPort.postMessage({ batch: -1, done: [] }); return; }
  let open = sessions.get(m.s);
  if (!open) sessions.set(m.s, (open = new Map()));
  const bufs = m.bufs.map((b) => Buffer.from(b)), ops = m.ops, done = [];
  // ops: [kind, file, buffer, offset, length]*; kind 0: data, 1: data (maybe none), then the end
  for (let i = 0; i < ops.length; i += 5) {
    const kind = ops[i], file = ops[i + 1], piece = bufs[ops[i + 2]].subarray(ops[i + 3], ops[i + 3] + ops[i + 4]);
    let h = open.get(file);
    if (kind === 1 && !h) { done.push(file, hash('sha256', piece, 'hex')); continue; }
    if (!h) open.set(file, (h = createHash('sha256')));
    if (piece.length) h.update(piece);
    if (kind === 1) { open.delete(file); done.push(file, h.digest('hex')); }
  }
  parentPort.postMessage({ batch: m.batch, done });
});
`;

interface Batch {
  s: number;
  batch: number;
  bufs: SharedArrayBuffer[];
  ops: number[];
}
/** A batch's answer (in order): the digests of the files that ended, as file, SHA-256, ... */
interface Reply {
  batch: number;
  done: (number | string)[];
}

/** The process's hash worker, shared by the sessions: started on first use, and again after a failure. */
let thread: RequestWorker<Batch | { s: number; close: true }, Reply> | null = null;
let nextSession = 1;
const hashThread = () => {
  if (!thread || thread.failed) thread = new RequestWorker(WORKER_SOURCE, {}, "the verify's hash worker");
  return thread;
};

/** Ends the process's hash worker (the sessions using it fail); the next session starts another. */
export async function stopHashWorker(): Promise<void> {
  const t = thread;
  thread = null;
  await t?.close();
}

/** The hash worker thread failed: nothing is known about the copy being verified (read it again). */
export class HashWorkerError extends ArchiveError {
  override readonly name = 'HashWorkerError';
  readonly code = 'HASH_WORKER';
  readonly status = 500;
  override readonly retryable = true;
}

/** When the worker starts, how far behind it may be, how much a batch and the held blocks hold. */
export interface HashSessionOptions {
  startAfterBytes?: number;
  maxBacklogBytes?: number;
  maxHeldBytes?: number;
  batchBytes?: number;
}

const DEFAULTS: Required<HashSessionOptions> = {
  startAfterBytes: 8 * 1024 * 1024,
  maxBacklogBytes: 16 * 1024 * 1024,
  maxHeldBytes: 32 * 1024 * 1024,
  batchBytes: 1024 * 1024,
};

/** Op kinds (each op: kind, file, buffer index, offset, length). */
const DATA = 0;
const LAST = 1;

/** The files of one tape file read that are hashed on the worker thread; one session per read. */
export class HashSession {
  private readonly o: Required<HashSessionOptions>;
  private thread: ReturnType<typeof hashThread> | null = null;
  private id = 0;
  private begun = false;
  private offered = 0;
  private nextFile = 1;
  /** Bytes added and bytes hashed (`batchEnds`: `added` at the end of each batch not answered yet): the worker's backlog. */
  private added = 0;
  private hashed = 0;
  private readonly batchEnds: number[] = [];
  /** The batch being filled (posted batches are 0 .. batch - 1) and how many were answered. */
  private batch = 0;
  private answered = 0;
  private ops: number[] = [];
  private bufs: SharedArrayBuffer[] = [];
  private opBytes = 0;
  /** Whether the block being parsed gave the worker a view (else it goes back at once). */
  private touched = false;
  /** Copies of pieces not in shared memory, for the batch being filled. */
  private stage: { buf: Buffer; used: number } | null = null;
  private readonly ending = new Map<number, (sha256: string) => void>();
  /** Blocks (and copies) the worker may still read: given back once their batch is answered. */
  private readonly held: { batch: number; bytes: number; give: () => void }[] = [];
  private heldBytes = 0;
  private waiter: { ready: () => boolean; resolve: () => void; reject: (e: unknown) => void } | null = null;
  private failure: unknown = null;
  /** What the worker took: files and their bytes. */
  readonly taken = { files: 0, bytes: 0 };

  constructor(options: HashSessionOptions = {}) {
    this.o = { ...DEFAULTS, ...options };
  }

  /** Called once by the read the session serves. */
  begin(): void {
    if (this.begun) throw new Error('a HashSession serves one readTargetFile: make a new one for each read');
    this.begun = true;
  }

  /** A file of `size` bytes to hash: its number when the worker takes it, 0 to hash it here. */
  take(size: number): number {
    this.offered += size;
    if (this.failure || this.offered < this.o.startAfterBytes || this.added - this.hashed >= this.o.maxBacklogBytes) return 0;
    if (!this.thread) {
      this.thread = hashThread();
      this.id = nextSession++;
    }
    this.taken.files++;
    this.taken.bytes += size;
    return this.nextFile++;
  }

  /** More data of file `file`: a view the worker reads in place until its block is given back. */
  add(file: number, chunk: Buffer): void {
    let piece = chunk;
    if (chunk.buffer instanceof SharedArrayBuffer) this.touched = true;
    else piece = this.copy(chunk);
    const sab = piece.buffer as SharedArrayBuffer;
    let b = this.bufs.lastIndexOf(sab);
    if (b < 0) b = this.bufs.push(sab) - 1;
    this.ops.push(DATA, file, b, piece.byteOffset, piece.length);
    this.added += piece.length;
    this.opBytes += piece.length;
    if (this.opBytes >= this.o.batchBytes || this.idle()) this.flush();
  }

  /** The end of file `file`: `done` gets its SHA-256 once the worker has it. */
  end(file: number, done: (sha256: string) => void): void {
    const n = this.ops.length;
    if (n && this.ops[n - 5] === DATA && this.ops[n - 4] === file) this.ops[n - 5] = LAST;
    else {
      if (!this.bufs.length) this.bufs.push(new SharedArrayBuffer(0));
      this.ops.push(LAST, file, 0, 0, 0);
    }
    this.ending.set(file, done);
    if (this.idle()) this.flush();
  }

  /** The reader is done with a block: `give` (its recycle) runs once the worker is past it. */
  release(bytes: number, give: () => void): void {
    const touched = this.touched;
    this.touched = false;
    if (!touched || (!this.ops.length && this.idle())) {
      give();
      return;
    }
    // The batch that carries (being filled) or last carried a view of this block.
    this.held.push({ batch: this.ops.length ? this.batch : this.batch - 1, bytes, give });
    this.heldBytes += bytes;
  }

  /** Undefined when the reader may go on; else resolves once fewer than `maxHeldBytes` are held. */
  room(): Promise<void> | undefined {
    if (this.failure) return Promise.reject(this.failure);
    const ready = () => this.heldBytes < this.o.maxHeldBytes;
    return ready() ? undefined : this.wait(ready);
  }

  /** Resolves once every ended file's digest was delivered. */
  settle(): Promise<void> {
    if (this.failure) return Promise.reject(this.failure);
    return this.ending.size ? this.wait(() => !this.ending.size) : Promise.resolve();
  }

  /** The session is over (also after an error): the worker forgets it; held blocks are dropped. */
  close(): void {
    this.thread?.request({ s: this.id, close: true }).catch(() => undefined);
    this.thread = null;
    this.failure ??= new Error('the hash session is closed');
  }

  private answer(batch: number, done: (number | string)[]): void {
    this.answered = batch + 1;
    this.hashed = this.batchEnds.shift() ?? this.hashed;
    try {
      for (let i = 0; i < done.length; i += 2) {
        const file = done[i] as number;
        this.ending.get(file)?.(done[i + 1] as string);
        this.ending.delete(file);
      }
      while (this.held.length && this.held[0]!.batch <= batch) {
        const h = this.held.shift()!;
        this.heldBytes -= h.bytes;
        h.give();
      }
    } catch (e) {
      this.fail(e);
      return;
    }
    if (this.idle()) this.flush(); // the worker caught up: give it what is waiting
    const w = this.waiter;
    if (w?.ready()) {
      this.waiter = null;
      w.resolve();
    }
  }

  private fail(e: unknown): void {
    this.failure ??= e;
    this.thread = null;
    this.waiter?.reject(e);
    this.waiter = null;
  }

  /** Every posted batch answered: the worker has nothing to do. */
  private idle(): boolean {
    return this.answered === this.batch;
  }

  /** `chunk` copied into shared memory (one staging buffer a batch). */
  private copy(chunk: Buffer): Buffer {
    if (this.stage && this.stage.used + chunk.length > this.stage.buf.length) this.flush();
    this.stage ??= { buf: Buffer.from(new SharedArrayBuffer(Math.max(this.o.batchBytes, chunk.length))), used: 0 };
    const piece = this.stage.buf.subarray(this.stage.used, this.stage.used + chunk.length);
    chunk.copy(piece);
    this.stage.used += chunk.length;
    return piece;
  }

  private wait(ready: () => boolean): Promise<void> {
    this.flush();
    return new Promise((resolve, reject) => {
      this.waiter = { ready, resolve, reject };
    });
  }

  private flush(): void {
    if (!this.ops.length || !this.thread || this.failure) return;
    if (this.stage) {
      // The copies are held like blocks (memory), then dropped.
      this.held.push({ batch: this.batch, bytes: this.stage.buf.length, give: () => undefined });
      this.heldBytes += this.stage.buf.length;
      this.stage = null;
    }
    this.thread.request({ s: this.id, batch: this.batch++, bufs: this.bufs, ops: this.ops }).then(
      (r) => this.answer(r.batch, r.done),
      (e: unknown) =>
        this.fail(
          new HashWorkerError(
            `${errorMessage(e)} before the file was read to its end: nothing is known about this copy; read it again (confirm or scrub).`,
            {},
            { cause: e },
          ),
        ),
    );
    this.batchEnds.push(this.added);
    this.ops = [];
    this.bufs = [];
    this.opBytes = 0;
  }
}
