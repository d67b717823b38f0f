/**
 * Idempotency keys for mutating API calls: the first request with a key claims it, runs, and
 * stores its answer; a retry with the same key and the same request gets the stored answer
 * without running again; the same key with a different request is refused. Items live in the
 * catalog table (`IDEMP#<key>`) with a TTL.
 */
import {
  ConditionalCheckFailedException,
  DeleteItemCommand,
  GetItemCommand,
  PutItemCommand,
  UpdateItemCommand,
  type DynamoDBClient,
} from '@aws-sdk/client-dynamodb';
import { marshall, unmarshall } from '@aws-sdk/util-dynamodb';
import { z } from 'zod';

const TTL_SECONDS = 24 * 3600;
const itemSchema = z.object({
  requestHash: z.string(),
  state: z.enum(['pending', 'done']),
  statusCode: z.number().optional(),
  body: z.string().optional(),
});

export type Claim = { kind: 'claimed' } | { kind: 'replay'; statusCode: number; body: string } | { kind: 'mismatch' } | { kind: 'in-progress' };

export class IdempotencyStore {
  constructor(
    readonly db: DynamoDBClient,
    readonly tableName: string,
  ) {}

  private key(k: string) {
    return marshall({ pk: `IDEMP#${k}`, sk: 'IDEMP' });
  }

  async claim(key: string, requestHash: string, now: Date): Promise<Claim> {
    try {
      await this.db.send(
        new PutItemCommand({
          TableName: this.tableName,
          Item: marshall({
            pk: `IDEMP#${key}`,
            sk: 'IDEMP',
            type: 'idempotency',
            requestHash,
            state: 'pending',
            createdAt: now.toISOString(),
            expiresAt: Math.floor(now.getTime() / 1000) + TTL_SECONDS,
          }),
          ConditionExpression: 'attribute_not_exists(pk)',
        }),
      );
      return { kind: 'claimed' };
    } catch (e) {
      if (!(e instanceof ConditionalCheckFailedException)) throw e;
    }
    const out = await this.db.send(new GetItemCommand({ TableName: this.tableName, Key: this.key(key), ConsistentRead: true }));
    if (!out.Item) return this.claim(key, requestHash, now); // expired between the two calls
    const item = itemSchema.parse(unmarshall(out.Item));
    if (item.requestHash !== requestHash) return { kind: 'mismatch' };
    if (item.state === 'pending' || item.statusCode === undefined || item.body === undefined) return { kind: 'in-progress' };
    return { kind: 'replay', statusCode: item.statusCode, body: item.body };
  }

  async complete(key: string, statusCode: number, body: string): Promise<void> {
    await this.db.send(
      new UpdateItemCommand({
        TableName: this.tableName,
        Key: this.key(key),
        UpdateExpression: 'SET #s = :done, statusCode = :c, body = :b',
        ExpressionAttributeNames: { '#s': 'state' },
        ExpressionAttributeValues: marshall({ ':done': 'done', ':c': statusCode, ':b': body }),
      }),
    );
  }

  /** Forgets a claim whose request failed on our side, so the caller may retry with the same key. */
  async release(key: string): Promise<void> {
    await this.db.send(new DeleteItemCommand({ TableName: this.tableName, Key: this.key(key) }));
  }
}
