/**
 * Conformance: pins the DynamoDB behaviours this project relies on, against DynamoDB Local
 * started by src/local/dynamodb-local.ts, through the real AWS SDK over HTTP. If a
 * DynamoDB Local upgrade changes one of these, this file says which.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import {
  BatchGetItemCommand,
  BatchWriteItemCommand,
  ConditionalCheckFailedException,
  CreateTableCommand,
  DescribeTableCommand,
  DescribeTimeToLiveCommand,
  DynamoDBClient,
  GetItemCommand,
  ListTablesCommand,
  PutItemCommand,
  QueryCommand,
  TransactionCanceledException,
  TransactWriteItemsCommand,
  UpdateItemCommand,
  UpdateTimeToLiveCommand,
  type AttributeValue,
  type TransactWriteItem,
} from '@aws-sdk/client-dynamodb';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startDynamoDbLocal, type DynamoDbLocal } from '../../src/local/dynamodb-local.ts';

type Item = Record<string, AttributeValue>;

function clientFor(endpoint: string): DynamoDBClient {
  return new DynamoDBClient({
    endpoint,
    region: 'us-east-1',
    credentials: { accessKeyId: 'local', secretAccessKey: 'local' },
    maxAttempts: 1,
  });
}

function tableName(label: string): string {
  return `conf-${label}-${randomUUID().slice(0, 8)}`;
}

/** pk/sk strings, GSI gsi1 on gsi1pk/gsi1sk projecting ALL, on-demand. */
async function createTable(db: DynamoDBClient, name: string): Promise<void> {
  await db.send(
    new CreateTableCommand({
      TableName: name,
      BillingMode: 'PAY_PER_REQUEST',
      AttributeDefinitions: [
        { AttributeName: 'pk', AttributeType: 'S' },
        { AttributeName: 'sk', AttributeType: 'S' },
        { AttributeName: 'gsi1pk', AttributeType: 'S' },
        { AttributeName: 'gsi1sk', AttributeType: 'S' },
      ],
      KeySchema: [
        { AttributeName: 'pk', KeyType: 'HASH' },
        { AttributeName: 'sk', KeyType: 'RANGE' },
      ],
      GlobalSecondaryIndexes: [
        {
          IndexName: 'gsi1',
          KeySchema: [
            { AttributeName: 'gsi1pk', KeyType: 'HASH' },
            { AttributeName: 'gsi1sk', KeyType: 'RANGE' },
          ],
          Projection: { ProjectionType: 'ALL' },
        },
      ],
    }),
  );
  for (let i = 0; i < 100; i++) {
    const d = await db.send(new DescribeTableCommand({ TableName: name }));
    if (d.Table?.TableStatus === 'ACTIVE') return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`table ${name} never became ACTIVE`);
}

function key(pk: string, sk: string): Item {
  return { pk: { S: pk }, sk: { S: sk } };
}

/** Capture the rejection of `p` (fails the test if it resolves). */
async function rejectionOf(p: Promise<unknown>): Promise<any> {
  try {
    await p;
  } catch (err) {
    return err;
  }
  throw new Error('expected the call to fail, but it succeeded');
}

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

describe('DynamoDB Local conformance (in memory)', () => {
  let ddb: DynamoDbLocal;
  let db: DynamoDBClient;
  let table: string;

  beforeAll(async () => {
    ddb = await startDynamoDbLocal();
    db = clientFor(ddb.endpoint);
    table = tableName('main');
    await createTable(db, table);
  });

  afterAll(async () => {
    db?.destroy();
    await ddb?.stop();
  });

  it('starts on 127.0.0.1 with a live pid', () => {
    expect(ddb.endpoint).toBe(`http://127.0.0.1:${ddb.port}`);
    expect(pidAlive(ddb.pid)).toBe(true);
  });

  it('CreateTable PAY_PER_REQUEST with a GSI (projection ALL) is described back as created', async () => {
    const d = await db.send(new DescribeTableCommand({ TableName: table }));
    expect(d.Table?.TableStatus).toBe('ACTIVE');
    expect(d.Table?.BillingModeSummary?.BillingMode).toBe('PAY_PER_REQUEST');
    expect(d.Table?.KeySchema).toEqual([
      { AttributeName: 'pk', KeyType: 'HASH' },
      { AttributeName: 'sk', KeyType: 'RANGE' },
    ]);
    const gsi = d.Table?.GlobalSecondaryIndexes?.[0];
    expect(gsi?.IndexName).toBe('gsi1');
    expect(gsi?.IndexStatus).toBe('ACTIVE');
    expect(gsi?.Projection?.ProjectionType).toBe('ALL');
    const tables = await db.send(new ListTablesCommand({}));
    expect(tables.TableNames).toContain(table);
  });

  it('Put/Get, and Query on the GSI (sorted, begins_with, sparse, projection ALL)', async () => {
    const pk = `gsi-${randomUUID()}`;
    const placement = `placement-${randomUUID()}`;
    for (const [sk, gsk] of [
      ['b', 'tape#0002'],
      ['a', 'tape#0001'],
      ['c', 'disk#0001'],
    ] as const) {
      await db.send(
        new PutItemCommand({
          TableName: table,
          Item: { ...key(pk, sk), gsi1pk: { S: placement }, gsi1sk: { S: gsk }, payload: { N: '42' } },
        }),
      );
    }
    // no gsi1pk: must not appear in the index
    await db.send(new PutItemCommand({ TableName: table, Item: { ...key(pk, 'd'), payload: { N: '1' } } }));

    const got = await db.send(new GetItemCommand({ TableName: table, Key: key(pk, 'a'), ConsistentRead: true }));
    expect(got.Item).toEqual({ ...key(pk, 'a'), gsi1pk: { S: placement }, gsi1sk: { S: 'tape#0001' }, payload: { N: '42' } });
    const missing = await db.send(new GetItemCommand({ TableName: table, Key: key(pk, 'zzz') }));
    expect(missing.Item).toBeUndefined();

    const all = await db.send(
      new QueryCommand({
        TableName: table,
        IndexName: 'gsi1',
        KeyConditionExpression: 'gsi1pk = :p',
        ExpressionAttributeValues: { ':p': { S: placement } },
      }),
    );
    expect(all.Items?.map((i) => i['gsi1sk']?.S)).toEqual(['disk#0001', 'tape#0001', 'tape#0002']);
    expect(all.Items?.[0]?.['payload']).toEqual({ N: '42' }); // projection ALL carries non-key attributes

    const tapes = await db.send(
      new QueryCommand({
        TableName: table,
        IndexName: 'gsi1',
        KeyConditionExpression: 'gsi1pk = :p AND begins_with(gsi1sk, :t)',
        ExpressionAttributeValues: { ':p': { S: placement }, ':t': { S: 'tape#' } },
        ScanIndexForward: false,
      }),
    );
    expect(tapes.Items?.map((i) => i['sk']?.S)).toEqual(['b', 'a']);
  });

  it('Query on the table pages with Limit/LastEvaluatedKey, ConsistentRead allowed on the table', async () => {
    const pk = `page-${randomUUID()}`;
    for (let i = 0; i < 7; i++) {
      await db.send(new PutItemCommand({ TableName: table, Item: { ...key(pk, `f#${String(i).padStart(3, '0')}`) } }));
    }
    await db.send(new PutItemCommand({ TableName: table, Item: key(pk, 'other') }));
    const seen: string[] = [];
    let start: Item | undefined;
    let pages = 0;
    do {
      const out = await db.send(
        new QueryCommand({
          TableName: table,
          KeyConditionExpression: 'pk = :pk AND begins_with(sk, :f)',
          ExpressionAttributeValues: { ':pk': { S: pk }, ':f': { S: 'f#' } },
          ConsistentRead: true,
          Limit: 3,
          ExclusiveStartKey: start,
        }),
      );
      seen.push(...(out.Items ?? []).map((i) => i['sk']?.S ?? '?'));
      start = out.LastEvaluatedKey;
      pages++;
    } while (start);
    expect(seen).toEqual(['f#000', 'f#001', 'f#002', 'f#003', 'f#004', 'f#005', 'f#006']);
    expect(pages).toBeGreaterThanOrEqual(3);
  });

  it('ConsistentRead on a GSI query is rejected (ValidationException), as in AWS', async () => {
    const err = await rejectionOf(
      db.send(
        new QueryCommand({
          TableName: table,
          IndexName: 'gsi1',
          KeyConditionExpression: 'gsi1pk = :p',
          ExpressionAttributeValues: { ':p': { S: 'x' } },
          ConsistentRead: true,
        }),
      ),
    );
    expect(err.name).toBe('ValidationException');
  });

  it('conditional Put attribute_not_exists(pk) fails with ConditionalCheckFailedException; ALL_OLD returns the existing item', async () => {
    const k = key(`cond-${randomUUID()}`, 'x');
    const original: Item = { ...k, owner: { S: 'first' }, n: { N: '1' } };
    await db.send(new PutItemCommand({ TableName: table, Item: original, ConditionExpression: 'attribute_not_exists(pk)' }));

    const plain = await rejectionOf(
      db.send(
        new PutItemCommand({
          TableName: table,
          Item: { ...k, owner: { S: 'second' } },
          ConditionExpression: 'attribute_not_exists(pk)',
        }),
      ),
    );
    expect(plain).toBeInstanceOf(ConditionalCheckFailedException);
    expect(plain.name).toBe('ConditionalCheckFailedException');
    expect(plain.$metadata.httpStatusCode).toBe(400);
    expect(plain.Item).toBeUndefined();

    const withOld = await rejectionOf(
      db.send(
        new PutItemCommand({
          TableName: table,
          Item: { ...k, owner: { S: 'second' } },
          ConditionExpression: 'attribute_not_exists(pk)',
          ReturnValuesOnConditionCheckFailure: 'ALL_OLD',
        }),
      ),
    );
    expect(withOld).toBeInstanceOf(ConditionalCheckFailedException);
    expect(withOld.Item).toEqual(original);

    const stored = await db.send(new GetItemCommand({ TableName: table, Key: k, ConsistentRead: true }));
    expect(stored.Item).toEqual(original);
  });

  it('TransactWriteItems applies all items together', async () => {
    const pk = `tx-ok-${randomUUID()}`;
    await db.send(
      new TransactWriteItemsCommand({
        TransactItems: [
          { Put: { TableName: table, Item: { ...key(pk, '1'), v: { S: 'one' } }, ConditionExpression: 'attribute_not_exists(pk)' } },
          { Put: { TableName: table, Item: { ...key(pk, '2'), v: { S: 'two' } }, ConditionExpression: 'attribute_not_exists(pk)' } },
          {
            Update: {
              TableName: table,
              Key: key(pk, 'counter'),
              UpdateExpression: 'ADD n :one',
              ExpressionAttributeValues: { ':one': { N: '1' } },
            },
          },
        ],
      }),
    );
    const q = await db.send(
      new QueryCommand({
        TableName: table,
        KeyConditionExpression: 'pk = :pk',
        ExpressionAttributeValues: { ':pk': { S: pk } },
        ConsistentRead: true,
      }),
    );
    expect(q.Items?.map((i) => i['sk']?.S)).toEqual(['1', '2', 'counter']);
  });

  it('TransactWriteItems is all-or-nothing: a failed condition cancels it with per-item reasons', async () => {
    const pk = `tx-fail-${randomUUID()}`;
    const existing: Item = { ...key(pk, 'taken'), owner: { S: 'someone' } };
    await db.send(new PutItemCommand({ TableName: table, Item: existing }));
    await db.send(new PutItemCommand({ TableName: table, Item: { ...key(pk, 'counter'), n: { N: '10' } } }));

    const items: TransactWriteItem[] = [
      { Put: { TableName: table, Item: { ...key(pk, 'new'), v: { S: 'x' } }, ConditionExpression: 'attribute_not_exists(pk)' } },
      {
        Put: {
          TableName: table,
          Item: { ...key(pk, 'taken'), owner: { S: 'me' } },
          ConditionExpression: 'attribute_not_exists(pk)',
          ReturnValuesOnConditionCheckFailure: 'ALL_OLD',
        },
      },
      {
        Update: {
          TableName: table,
          Key: key(pk, 'counter'),
          UpdateExpression: 'ADD n :one',
          ExpressionAttributeValues: { ':one': { N: '1' } },
        },
      },
      { Delete: { TableName: table, Key: key(pk, 'counter-does-not-matter') } },
    ];
    const err = await rejectionOf(db.send(new TransactWriteItemsCommand({ TransactItems: items })));
    expect(err).toBeInstanceOf(TransactionCanceledException);
    expect(err.name).toBe('TransactionCanceledException');
    expect(err.message).toMatch(/Transaction cancelled/);
    const reasons = (err as TransactionCanceledException).CancellationReasons ?? [];
    expect(reasons.map((r) => r.Code)).toEqual(['None', 'ConditionalCheckFailed', 'None', 'None']);
    // ReturnValuesOnConditionCheckFailure inside a transaction: the failing item carries the old image
    expect(reasons[1]?.Item).toEqual(existing);

    // nothing from the transaction was applied
    const q = await db.send(
      new QueryCommand({
        TableName: table,
        KeyConditionExpression: 'pk = :pk',
        ExpressionAttributeValues: { ':pk': { S: pk } },
        ConsistentRead: true,
      }),
    );
    expect(q.Items).toEqual([{ ...key(pk, 'counter'), n: { N: '10' } }, existing]);
  });

  it('TransactWriteItems rejects two operations on the same item (ValidationException)', async () => {
    const k = key(`tx-dup-${randomUUID()}`, 'x');
    const err = await rejectionOf(
      db.send(
        new TransactWriteItemsCommand({
          TransactItems: [{ Put: { TableName: table, Item: k } }, { Delete: { TableName: table, Key: k } }],
        }),
      ),
    );
    expect(err.name).toBe('ValidationException');
  });

  it('TransactWriteItems accepts 100 items (the AWS limit) and rejects 101', async () => {
    const pk = `tx-100-${randomUUID()}`;
    const put = (i: number): TransactWriteItem => ({ Put: { TableName: table, Item: key(pk, String(i).padStart(3, '0')) } });
    await db.send(new TransactWriteItemsCommand({ TransactItems: Array.from({ length: 100 }, (_, i) => put(i)) }));
    const q = await db.send(
      new QueryCommand({
        TableName: table,
        KeyConditionExpression: 'pk = :pk',
        ExpressionAttributeValues: { ':pk': { S: pk } },
        Select: 'COUNT',
      }),
    );
    expect(q.Count).toBe(100);
    const err = await rejectionOf(db.send(new TransactWriteItemsCommand({ TransactItems: Array.from({ length: 101 }, (_, i) => put(100 + i)) })));
    expect(err.name).toBe('ValidationException');
  });

  it('UpdateItem: ADD counter creates and increments, conditions guard it, ReturnValues ALL_NEW / UPDATED_NEW', async () => {
    const k = key(`upd-${randomUUID()}`, 'counter');

    const first = await db.send(
      new UpdateItemCommand({
        TableName: table,
        Key: k,
        UpdateExpression: 'ADD n :inc SET label = if_not_exists(label, :l)',
        ExpressionAttributeValues: { ':inc': { N: '1' }, ':l': { S: 'first' } },
        ReturnValues: 'ALL_NEW',
      }),
    );
    expect(first.Attributes).toEqual({ ...k, n: { N: '1' }, label: { S: 'first' } });

    const second = await db.send(
      new UpdateItemCommand({
        TableName: table,
        Key: k,
        UpdateExpression: 'ADD n :inc SET label = if_not_exists(label, :l)',
        ConditionExpression: 'attribute_exists(pk) AND n < :max',
        ExpressionAttributeValues: { ':inc': { N: '5' }, ':l': { S: 'second' }, ':max': { N: '10' } },
        ReturnValues: 'ALL_NEW',
      }),
    );
    expect(second.Attributes).toEqual({ ...k, n: { N: '6' }, label: { S: 'first' } });

    const updatedNew = await db.send(
      new UpdateItemCommand({
        TableName: table,
        Key: k,
        UpdateExpression: 'ADD n :inc',
        ExpressionAttributeValues: { ':inc': { N: '-2' } },
        ReturnValues: 'UPDATED_NEW',
      }),
    );
    expect(updatedNew.Attributes).toEqual({ n: { N: '4' } });

    const blocked = await rejectionOf(
      db.send(
        new UpdateItemCommand({
          TableName: table,
          Key: k,
          UpdateExpression: 'ADD n :inc',
          ConditionExpression: 'n < :max',
          ExpressionAttributeValues: { ':inc': { N: '1' }, ':max': { N: '3' } },
          ReturnValuesOnConditionCheckFailure: 'ALL_OLD',
        }),
      ),
    );
    expect(blocked).toBeInstanceOf(ConditionalCheckFailedException);
    expect(blocked.Item).toEqual({ ...k, n: { N: '4' }, label: { S: 'first' } });

    // a condition on a missing item fails (no upsert)
    const absent = await rejectionOf(
      db.send(
        new UpdateItemCommand({
          TableName: table,
          Key: key(`upd-${randomUUID()}`, 'none'),
          UpdateExpression: 'ADD n :inc',
          ConditionExpression: 'attribute_exists(pk)',
          ExpressionAttributeValues: { ':inc': { N: '1' } },
        }),
      ),
    );
    expect(absent).toBeInstanceOf(ConditionalCheckFailedException);

    const final = await db.send(new GetItemCommand({ TableName: table, Key: k, ConsistentRead: true }));
    expect(final.Item?.['n']).toEqual({ N: '4' });
  });

  it('BatchWriteItem takes 25 items (no UnprocessedItems) and rejects 26', async () => {
    const pk = `batch-${randomUUID()}`;
    const puts = (from: number, n: number) =>
      Array.from({ length: n }, (_, i) => ({
        PutRequest: { Item: { ...key(pk, String(from + i).padStart(3, '0')), i: { N: String(from + i) } } },
      }));
    const out = await db.send(new BatchWriteItemCommand({ RequestItems: { [table]: puts(0, 25) } }));
    expect(out.UnprocessedItems ?? {}).toEqual({});

    const back = await db.send(
      new BatchGetItemCommand({
        RequestItems: {
          [table]: { Keys: Array.from({ length: 25 }, (_, i) => key(pk, String(i).padStart(3, '0'))), ConsistentRead: true },
        },
      }),
    );
    expect(back.Responses?.[table]).toHaveLength(25);

    const err = await rejectionOf(db.send(new BatchWriteItemCommand({ RequestItems: { [table]: puts(100, 26) } })));
    expect(err.name).toBe('ValidationException');
  });

  it('binary attributes (Uint8Array) round-trip byte-exact, including through a GSI query', async () => {
    const k = key(`bin-${randomUUID()}`, 'b');
    const every = Uint8Array.from({ length: 256 }, (_, i) => i);
    const random = new Uint8Array(randomBytes(64 * 1024));
    const placement = `bin-placement-${randomUUID()}`;
    await db.send(
      new PutItemCommand({
        TableName: table,
        Item: {
          ...k,
          gsi1pk: { S: placement },
          gsi1sk: { S: 'x' },
          every: { B: every },
          random: { B: random },
          zeros: { B: new Uint8Array(17) },
          set: { BS: [Uint8Array.of(1, 2), Uint8Array.of(0, 255)] },
        },
      }),
    );
    const got = await db.send(new GetItemCommand({ TableName: table, Key: k, ConsistentRead: true }));
    const b = (name: string) => got.Item?.[name]?.B;
    expect(b('every')).toBeInstanceOf(Uint8Array);
    expect(Buffer.from(b('every')!).equals(Buffer.from(every))).toBe(true);
    expect(Buffer.from(b('random')!).equals(Buffer.from(random))).toBe(true);
    expect(Array.from(b('zeros')!)).toEqual(new Array(17).fill(0));
    const set = (got.Item?.['set']?.BS ?? []).map((x) => Buffer.from(x).toString('hex')).sort();
    expect(set).toEqual(['00ff', '0102']);

    const viaIndex = await db.send(
      new QueryCommand({
        TableName: table,
        IndexName: 'gsi1',
        KeyConditionExpression: 'gsi1pk = :p',
        ExpressionAttributeValues: { ':p': { S: placement } },
      }),
    );
    expect(Buffer.from(viaIndex.Items?.[0]?.['random']?.B ?? []).equals(Buffer.from(random))).toBe(true);
  });

  it('empty binary values are accepted for non-key attributes', async () => {
    const k = key(`bin-empty-${randomUUID()}`, 'b');
    await db.send(new PutItemCommand({ TableName: table, Item: { ...k, data: { B: new Uint8Array(0) } } }));
    const got = await db.send(new GetItemCommand({ TableName: table, Key: k, ConsistentRead: true }));
    expect(got.Item?.['data']?.B?.length).toBe(0);
  });

  it('an item near 380 KB is accepted; one over 400 KB is rejected (ValidationException)', async () => {
    const k = key(`size-${randomUUID()}`, 'big');
    const big = new Uint8Array(randomBytes(380 * 1024));
    await db.send(new PutItemCommand({ TableName: table, Item: { ...k, data: { B: big } } }));
    const got = await db.send(new GetItemCommand({ TableName: table, Key: k, ConsistentRead: true }));
    expect(Buffer.from(got.Item?.['data']?.B ?? []).equals(Buffer.from(big))).toBe(true);

    const tooBig = await rejectionOf(
      db.send(
        new PutItemCommand({
          TableName: table,
          Item: { ...key(`size-${randomUUID()}`, 'huge'), data: { B: new Uint8Array(401 * 1024) } },
        }),
      ),
    );
    expect(tooBig.name).toBe('ValidationException');
    expect(tooBig.message).toMatch(/Item size has exceeded the maximum allowed size/);

    // the limit applies to UpdateItem results too
    const grow = await rejectionOf(
      db.send(
        new UpdateItemCommand({
          TableName: table,
          Key: k,
          UpdateExpression: 'SET more = :m',
          ExpressionAttributeValues: { ':m': { B: new Uint8Array(30 * 1024) } },
        }),
      ),
    );
    expect(grow.name).toBe('ValidationException');
    expect(grow.message).toMatch(/Item size/);
  });

  it('UpdateTimeToLive is accepted and described back', async () => {
    const name = tableName('ttl');
    await createTable(db, name);
    const out = await db.send(new UpdateTimeToLiveCommand({ TableName: name, TimeToLiveSpecification: { AttributeName: 'expiresAt', Enabled: true } }));
    expect(out.TimeToLiveSpecification).toEqual({ AttributeName: 'expiresAt', Enabled: true });
    const d = await db.send(new DescribeTimeToLiveCommand({ TableName: name }));
    expect(d.TimeToLiveDescription?.AttributeName).toBe('expiresAt');
    expect(d.TimeToLiveDescription?.TimeToLiveStatus).toBe('ENABLED');
  });

  it('refuses to start a second instance on a port that is in use', async () => {
    const err = await rejectionOf(startDynamoDbLocal({ port: ddb.port }));
    expect(err.message).toMatch(new RegExp(`port ${ddb.port} is already in use`));
    // the running instance is unaffected
    await expect(db.send(new ListTablesCommand({}))).resolves.toBeDefined();
  });
});

describe('DynamoDB Local lifecycle', () => {
  const dirs: string[] = [];
  const mkTmp = (label: string) => {
    const d = mkdtempSync(path.join(tmpdir(), `ddb-${label}-`));
    dirs.push(d);
    return d;
  };
  afterAll(() => {
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  });

  it('with dataDir, data survives stop() and a restart on the same directory', async () => {
    const dataDir = path.join(mkTmp('data'), 'nested', 'db'); // created on demand
    const name = tableName('persist');
    const k = key('persist', '1');
    const payload = new Uint8Array(randomBytes(1024));

    const first = await startDynamoDbLocal({ dataDir });
    let db = clientFor(first.endpoint);
    try {
      await createTable(db, name);
      await db.send(new PutItemCommand({ TableName: name, Item: { ...k, data: { B: payload }, gsi1pk: { S: 'g' }, gsi1sk: { S: 's' } } }));
    } finally {
      db.destroy();
      await first.stop();
    }
    expect(pidAlive(first.pid)).toBe(false);

    const second = await startDynamoDbLocal({ dataDir });
    db = clientFor(second.endpoint);
    try {
      expect((await db.send(new ListTablesCommand({}))).TableNames).toContain(name);
      const got = await db.send(new GetItemCommand({ TableName: name, Key: k, ConsistentRead: true }));
      expect(Buffer.from(got.Item?.['data']?.B ?? []).equals(Buffer.from(payload))).toBe(true);
      const viaIndex = await db.send(
        new QueryCommand({
          TableName: name,
          IndexName: 'gsi1',
          KeyConditionExpression: 'gsi1pk = :g',
          ExpressionAttributeValues: { ':g': { S: 'g' } },
        }),
      );
      expect(viaIndex.Items).toHaveLength(1);
    } finally {
      db.destroy();
      await second.stop();
    }
  });

  it('without dataDir (in memory), a restart starts empty', async () => {
    const first = await startDynamoDbLocal();
    let db = clientFor(first.endpoint);
    const name = tableName('mem');
    try {
      await createTable(db, name);
    } finally {
      db.destroy();
      await first.stop();
    }
    const second = await startDynamoDbLocal({ port: first.port });
    db = clientFor(second.endpoint);
    try {
      expect(second.port).toBe(first.port);
      expect((await db.send(new ListTablesCommand({}))).TableNames).not.toContain(name);
    } finally {
      db.destroy();
      await second.stop();
    }
  });

  it('stop() is idempotent, kills the JVM, and removes its process exit handler', async () => {
    const before = process.listenerCount('exit');
    const lines: string[] = [];
    const inst = await startDynamoDbLocal({ log: (l) => lines.push(l) });
    expect(process.listenerCount('exit')).toBe(before + 1);
    expect(lines.join('\n')).toMatch(new RegExp(`Port:\\s*${inst.port}`));
    await Promise.all([inst.stop(), inst.stop()]);
    await inst.stop();
    expect(pidAlive(inst.pid)).toBe(false);
    expect(process.listenerCount('exit')).toBe(before);
    const db = clientFor(inst.endpoint);
    try {
      await expect(db.send(new ListTablesCommand({}))).rejects.toThrow();
    } finally {
      db.destroy();
    }
  });

  it('a missing java (explicit javaPath) fails with an install hint', async () => {
    const err = await rejectionOf(startDynamoDbLocal({ javaPath: '/nonexistent/bin/java' }));
    expect(err.message).toMatch(/Java 17\+/);
    expect(err.message).toMatch(/apt-get install -y openjdk-17-jre-headless/);
    expect(err.message).toMatch(/\/nonexistent\/bin\/java/);
  });

  it('no java on JAVA_HOME or PATH fails with an install hint', async () => {
    const saved = { PATH: process.env['PATH'], JAVA_HOME: process.env['JAVA_HOME'] };
    const empty = mkTmp('nojava');
    process.env['PATH'] = empty;
    process.env['JAVA_HOME'] = empty;
    let err: any;
    try {
      err = await rejectionOf(startDynamoDbLocal());
    } finally {
      for (const [k, v] of Object.entries(saved)) {
        if (v === undefined) delete process.env[k];
        else process.env[k] = v;
      }
    }
    expect(err.message).toMatch(/java not found/);
    expect(err.message).toMatch(/Java 17\+/);
    expect(err.message).toMatch(/apt-get install -y openjdk-17-jre-headless/);
  });

  it('a JVM that exits early is reported with its exit code and stderr tail', async () => {
    const fake = path.join(mkTmp('fakejava'), 'java');
    writeFileSync(fake, '#!/bin/sh\necho "starting" \necho "Error: could not reserve the heap (fake)" >&2\nexit 3\n');
    chmodSync(fake, 0o755);
    const before = process.listenerCount('exit');
    const err = await rejectionOf(startDynamoDbLocal({ javaPath: fake }));
    expect(err.message).toMatch(/exited early \(code 3\)/);
    expect(err.message).toMatch(/could not reserve the heap \(fake\)/);
    expect(process.listenerCount('exit')).toBe(before);
  });
});
