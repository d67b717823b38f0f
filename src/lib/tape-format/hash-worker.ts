/**
 * SHA-256 of file data on a second thread, for the verify of a tape file (reader.ts). On two
 * cores the hashing alone takes about as long as `openssl sha256` of the whole tape file, so a
 * verify on one thread cannot keep up with it; the worker takes part of the hashing.
 *
 * Nothing is copied: the virtual drive reads tape blocks into shared memory
 * (read-chunks.ts), and the session posts, in batches, which pieces of which blocks belong
 * to which file; the worker hashes them in place, in order, and answers each batch with the
 * digests of the files that ended. A block goes back to its source (recycle) only once the
 * worker is past it, and the reader waits while more than `maxHeldBytes` are held that way.
 * A file is taken only while the worker is less than `maxBacklogBytes` behind: otherwise the
 * reader hashes it itself, so both threads stay busy on any mix of file sizes. The worker
 * starts only once a tape file has more than `startAfterBytes` of file data; a piece of a
 * block not in shared memory (another source) is copied into shared memory first.
 *
 * The worker is plain CommonJS run with `eval: true` (as fs-worker.ts), one per process,
 * referenced only while a reply is outstanding. If it fails, the sessions using it reject
 * (`room`, `settle`): the verify then fails as a tape I/O error would; nothing is reported good.
 */
import { Worker } from 'node:worker_threads';

const WORKER_SOURCE = `
const { parentPort } = require('node:worker_threads');
const { createHash, hash } = require('node:crypto');
const sessions = new Map(); // session -> Map<file, Hash> of files begun and not ended
parentPort.on('message', (m) => {
  if (m.close) { sessions.delete(m.s); return; }
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
  parentPort.postMessage({ s: m.s, batch: m.batch, done });
});
`;

interface Reply {
  s: number;
  batch: number;
  done: (number | string)[];
}

/** The process's hash worker; sessions register to get their replies. */
class HashThread {
  private static current: HashThread | null = null;
  private readonly worker = new Worker(WORKER_SOURCE, { eval: true });
  private readonly sessions = new Map<number, HashSession>();
  private outstanding = 0;
  private nextSession = 1;

  static get(): HashThread {
    HashThread.current ??= new HashThread();
    return HashThread.current;
  }

  static async stop(): Promise<void> {
    const t = HashThread.current;
    HashThread.current = null;
    await t?.worker.terminate();
  }

  private constructor() {
    this.worker.unref();
    this.worker.on('message', (m: Reply) => {
      if (--this.outstanding === 0) this.worker.unref();
      this.sessions.get(m.s)?.answer(m.batch, m.done);
    });
    const fail = (e: unknown) => {
      if (HashThread.current === this) HashThread.current = null;
      for (const s of this.sessions.values()) s.fail(e);
      this.sessions.clear();
    };
    this.worker.on('error', fail);
    this.worker.on('exit', (code) => fail(new Error(`the hash worker thread exited (code ${code}); read the tape file again`)));
  }

  open(session: HashSession): number {
    const id = this.nextSession++;
    this.sessions.set(id, session);
    return id;
  }

  post(msg: { s: number; batch: number; bufs: SharedArrayBuffer[]; ops: number[] }): void {
    this.outstanding++;
    this.worker.ref();
    this.worker.postMessage(msg);
  }

  close(s: number): void {
    if (this.sessions.delete(s)) this.worker.postMessage({ s, close: true });
  }
}

/** Ends the process's hash worker (the sessions using it fail); the next session starts another. */
export function stopHashWorker(): Promise<void> {
  return HashThread.stop();
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

/** The files of one tape file read that are hashed on the worker thread. */
export class HashSession {
  private readonly o: Required<HashSessionOptions>;
  private thread: HashThread | null = null;
  private id = 0;
  private offered = 0;
  private nextFile = 1;
  /** Bytes posted (or about to be) and bytes hashed, by batch: the worker's backlog. */
  private added = 0;
  private hashed = 0;
  private readonly batchEnds: number[] = []; // `added` at the end of each posted batch, from batch `answered`
  private answered = 0;
  private batch = 0;
  private ops: number[] = [];
  private bufs: SharedArrayBuffer[] = [];
  private opBytes = 0;
  private readonly ending = new Map<number, (sha256: string) => void>();
  /** Blocks the worker may still read: given back once their batch is answered. */
  private readonly held: { batch: number; bytes: number; give: () => void }[] = [];
  private heldBytes = 0;
  private waiter: { ready: () => boolean; resolve: () => void; reject: (e: unknown) => void } | null = null;
  private failure: unknown = null;
  /** What the worker took: files and their bytes. */
  readonly taken = { files: 0, bytes: 0 };

  constructor(options: HashSessionOptions = {}) {
    this.o = { ...DEFAULTS, ...options };
  }

  /** A file of `size` bytes to hash: its number when the worker takes it, 0 to hash it here. */
  take(size: number): number {
    this.offered += size;
    if (this.failure || this.offered < this.o.startAfterBytes || this.added - this.hashed >= this.o.maxBacklogBytes) return 0;
    if (!this.thread) {
      this.thread = HashThread.get();
      this.id = this.thread.open(this);
    }
    this.taken.files++;
    this.taken.bytes += size;
    return this.nextFile++;
  }

  /** More data of file `file` (a view the worker reads in place until the block is given back). */
  add(file: number, chunk: Buffer): void {
    let piece = chunk;
    if (!(chunk.buffer instanceof SharedArrayBuffer)) {
      piece = Buffer.from(new SharedArrayBuffer(chunk.length));
      chunk.copy(piece);
    }
    const sab = piece.buffer as SharedArrayBuffer;
    let b = this.bufs.lastIndexOf(sab);
    if (b < 0) b = this.bufs.push(sab) - 1;
    this.ops.push(0, file, b, piece.byteOffset, piece.length);
    this.added += piece.length;
    this.opBytes += piece.length;
    if (this.opBytes >= this.o.batchBytes) this.flush();
  }

  /** The end of file `file`: `done` gets its SHA-256 once the worker has it. */
  end(file: number, done: (sha256: string) => void): void {
    const n = this.ops.length;
    if (n && this.ops[n - 5] === 0 && this.ops[n - 4] === file) this.ops[n - 5] = 1;
    else this.ops.push(1, file, 0, 0, 0);
    if (!this.bufs.length) this.bufs.push(new SharedArrayBuffer(0));
    this.ending.set(file, done);
  }

  /** The reader is done with a block: `give` (its recycle) runs once the worker is past it too. */
  release(bytes: number, give: () => void): void {
    if (!this.ops.length && this.answered === this.batch) give();
    else {
      this.held.push({ batch: this.ops.length ? this.batch : this.batch - 1, bytes, give });
      this.heldBytes += bytes;
    }
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
    this.thread?.close(this.id);
    this.thread = null;
  }

  answer(batch: number, done: (number | string)[]): void {
    this.answered = batch + 1;
    this.hashed = this.batchEnds.shift() ?? this.hashed;
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
    const w = this.waiter;
    if (w?.ready()) {
      this.waiter = null;
      w.resolve();
    }
  }

  fail(e: unknown): void {
    this.failure ??= e;
    this.thread = null;
    this.waiter?.reject(e);
    this.waiter = null;
  }

  private wait(ready: () => boolean): Promise<void> {
    this.flush();
    return new Promise((resolve, reject) => {
      this.waiter = { ready, resolve, reject };
    });
  }

  private flush(): void {
    if (!this.ops.length || !this.thread || this.failure) return;
    this.thread.post({ s: this.id, batch: this.batch++, bufs: this.bufs, ops: this.ops });
    this.batchEnds.push(this.added);
    this.ops = [];
    this.bufs = [];
    this.opBytes = 0;
  }
}
