/**
 * A worker thread answering requests in order: `request` posts a message and resolves with
 * its reply. The worker's code is plain CommonJS run with `eval: true`, so it works the same
 * under tsx, vitest and a bundle (no loader needed for a worker file). The worker keeps the
 * process alive only while a reply is outstanding: an idle worker must not hold the process
 * open, a pending reply must. If the worker fails or exits, every pending and later request
 * rejects with that error (`failed` tells).
 */
import { Worker } from 'node:worker_threads';

export class RequestWorker<Req, Res> {
  private readonly worker: Worker;
  private readonly waiting: { resolve: (r: Res) => void; reject: (e: unknown) => void }[] = [];
  private failure: unknown = null;
  private readonly name: string;

  /** `name` says which worker in the error when it exits ("the file system worker"). */
  constructor(source: string, workerData: Record<string, unknown>, name: string) {
    this.name = name;
    this.worker = new Worker(source, { eval: true, workerData });
    this.worker.unref();
    this.worker.on('message', (m: Res) => {
      this.waiting.shift()?.resolve(m);
      if (!this.waiting.length) this.worker.unref();
    });
    const fail = (e: unknown) => {
      this.failure ??= e;
      for (const w of this.waiting.splice(0)) w.reject(e);
    };
    this.worker.on('error', fail);
    this.worker.on('exit', (code) => fail(new Error(`${name} thread exited (code ${code})`)));
  }

  get failed(): boolean {
    return this.failure !== null;
  }

  request(msg: Req, transfer: ArrayBuffer[] = []): Promise<Res> {
    if (this.failure) return Promise.reject(this.failure);
    return new Promise<Res>((resolve, reject) => {
      this.waiting.push({ resolve, reject });
      this.worker.ref();
      this.worker.postMessage(msg, transfer);
    });
  }

  async close(): Promise<void> {
    this.failure ??= new Error(`${this.name} thread exited (closed)`);
    await this.worker.terminate();
  }
}
