/**
 * Puts items into one table 25 at a time (BatchWriteItem), with up to `concurrency` batches in
 * flight. Unprocessed items (throttling) are sent again with backoff, up to 10 calls; then the
 * write fails, and so does `done()`. Used for manifest pages and the name index.
 */
import { BatchWriteItemCommand, type AttributeValue, type DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { marshall } from '@aws-sdk/util-dynamodb';
import { retry, Semaphore } from '../concurrency.ts';

class Throttled extends Error {}

export class BatchWriter {
  private readonly pending: Record<string, unknown>[] = [];
  private readonly slots: Semaphore;
  private readonly inFlight = new Set<Promise<void>>();
  private failure: unknown;

  constructor(
    readonly db: DynamoDBClient,
    readonly tableName: string,
    /** `marshalled`: the items are already DynamoDB attribute maps (a snapshot's). */
    readonly opts: { concurrency?: number; what?: string; marshalled?: boolean } = {},
  ) {
    this.slots = new Semaphore(opts.concurrency ?? 1);
  }

  /** Queues items; resolves once every full batch is sent or in flight (at most `concurrency`). */
  async put(items: readonly Record<string, unknown>[]): Promise<void> {
    this.pending.push(...items);
    while (this.pending.length >= 25) await this.send(this.pending.splice(0, 25));
  }

  /** Sends what is left and waits for every batch. */
  async done(): Promise<void> {
    while (this.pending.length) await this.send(this.pending.splice(0, 25));
    await Promise.all(this.inFlight);
    if (this.failure) throw this.failure;
  }

  private async send(batch: Record<string, unknown>[]): Promise<void> {
    if (this.failure) throw this.failure;
    await this.slots.acquire();
    const p = this.write(batch)
      .catch((e: unknown) => {
        this.failure ??= e;
      })
      .finally(() => {
        this.slots.release();
        this.inFlight.delete(p);
      });
    this.inFlight.add(p);
  }

  private async write(batch: Record<string, unknown>[]): Promise<void> {
    const toItem = (i: Record<string, unknown>) => (this.opts.marshalled ? (i as Record<string, AttributeValue>) : marshall(i));
    let request = { [this.tableName]: batch.map((i) => ({ PutRequest: { Item: toItem(i) } })) };
    await retry(
      async () => {
        const out = await this.db.send(new BatchWriteItemCommand({ RequestItems: request }));
        const left = out.UnprocessedItems ?? {};
        if (!Object.keys(left).length || !left[this.tableName]?.length) return;
        request = left as typeof request;
        throw new Throttled();
      },
      { attempts: 10, initialDelayMs: 50, maxDelayMs: 5_000, retryable: (e) => e instanceof Throttled },
    ).catch((e: unknown) => {
      throw e instanceof Throttled ? new Error(`DynamoDB kept throttling ${this.opts.what ?? 'writes'} to ${this.tableName}; try again later`) : e;
    });
  }
}
