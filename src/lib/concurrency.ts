/**
 * Concurrency helpers in one place: read-ahead of an async iterable, bounded parallel map, a serial queue, a counting
 * semaphore with abortable waits, and retry with exponential backoff (used by the SSH
 * connection, manifest batch writes and the API client). Sleeping is the abortable
 * `setTimeout` of node:timers/promises.
 */
import { setTimeout as sleep } from 'node:timers/promises';

export { sleep };

/**
 * Yields what `src` yields, asking for up to `depth` items ahead, so that the producer (a tape
 * read) works while the consumer handles the last item. Items must not share memory the
 * producer reuses (tape blocks are fresh buffers).
 */
export async function* readAhead<T>(src: AsyncIterable<T>, depth: number): AsyncGenerator<T> {
  const it = src[Symbol.asyncIterator]();
  const queue: Promise<IteratorResult<T>>[] = [];
  const ask = () => {
    const p = it.next();
    p.catch(() => undefined); // observed when its turn comes
    queue.push(p);
  };
  try {
    for (;;) {
      while (queue.length < depth) ask();
      const r = await queue.shift()!;
      if (r.done) return;
      yield r.value;
    }
  } finally {
    await it.return?.();
  }
}

/** Maps `items` through `fn` with at most `limit` calls running at once; results keep input order. */
export async function mapLimit<T, R>(items: readonly T[], limit: number, fn: (item: T, index: number) => Promise<R>): Promise<R[]> {
  const results = new Array<R>(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const i = next++;
      results[i] = await fn(items[i]!, i);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return results;
}

/** Runs async calls one at a time, in the order given (a failed call does not stop the queue). */
export class SerialQueue {
  private tail: Promise<unknown> = Promise.resolve();

  run<T>(fn: () => Promise<T>): Promise<T> {
    const p = this.tail.then(fn);
    this.tail = p.catch(() => undefined);
    return p;
  }
}

/** At most `max` holders at once; waiters are served in order and may give up with a signal. */
export class Semaphore {
  private active = 0;
  private readonly waiters: (() => void)[] = [];
  constructor(private readonly max: number) {}
  async acquire(signal?: AbortSignal): Promise<void> {
    signal?.throwIfAborted();
    if (this.active < this.max) {
      this.active++;
      return;
    }
    await new Promise<void>((resolve, reject) => {
      const go = () => {
        signal?.removeEventListener('abort', abort);
        resolve();
      };
      const abort = () => {
        const i = this.waiters.indexOf(go);
        if (i >= 0) this.waiters.splice(i, 1);
        reject(signal!.reason);
      };
      this.waiters.push(go);
      signal?.addEventListener('abort', abort, { once: true });
    });
  }
  release(): void {
    const next = this.waiters.shift();
    if (next)
      next(); // the slot passes to the waiter
    else this.active--;
  }
}

export interface RetryOptions {
  /** Calls in all, the first included (default 5). */
  attempts?: number;
  /** Delay before the second call (default 500 ms); multiplied by `factor` each time. */
  initialDelayMs?: number;
  maxDelayMs?: number;
  factor?: number;
  /** +/- this share of each delay, at random (default 0.2), so retries of many callers spread. */
  jitter?: number;
  /** Whether an error is worth another call (default: every error). */
  retryable?: (e: unknown) => boolean;
  signal?: AbortSignal;
}

/** The delay before call `attempt` (1-based; the first call has none), without jitter. */
export function backoffDelay(attempt: number, o: Pick<RetryOptions, 'initialDelayMs' | 'maxDelayMs' | 'factor'> = {}): number {
  if (attempt <= 1) return 0;
  return Math.min(o.maxDelayMs ?? 30_000, (o.initialDelayMs ?? 500) * (o.factor ?? 2) ** (attempt - 2));
}

/**
 * Calls `fn` until it resolves, an error is not retryable, or `attempts` calls were made;
 * throws the last error. `fn` gets the attempt number (1-based).
 */
export async function retry<T>(fn: (attempt: number) => Promise<T>, o: RetryOptions = {}): Promise<T> {
  const attempts = Math.max(1, o.attempts ?? 5);
  const jitter = o.jitter ?? 0.2;
  for (let attempt = 1; ; attempt++) {
    const delay = backoffDelay(attempt, o);
    if (delay > 0) await sleep(delay * (1 - jitter + Math.random() * 2 * jitter), undefined, o.signal ? { signal: o.signal } : {});
    try {
      return await fn(attempt);
    } catch (e) {
      if (attempt >= attempts || (o.retryable && !o.retryable(e)) || o.signal?.aborted) throw e;
    }
  }
}
