/**
 * Conformance of the local SQS emulator (local-aws-sqs + patches/local-aws-sqs+2.0.2.patch)
 * with the real SQS behaviour this project relies on, exercised through the real
 * @aws-sdk/client-sqs over HTTP (JSON protocol).
 *
 * Several of these tests fail on the unpatched package: long polls returning early,
 * ChangeMessageVisibility not counting as a receive, ApproximateNumberOfMessages counting only
 * visible messages, MessageSystemAttributeNames, stale receipt handles and UTF-8 byte sizes.
 */
import { createHash, randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import {
  ChangeMessageVisibilityCommand,
  CreateQueueCommand,
  DeleteMessageCommand,
  DeleteQueueCommand,
  GetQueueAttributesCommand,
  GetQueueUrlCommand,
  QueueDoesNotExist,
  ReceiptHandleIsInvalid,
  ReceiveMessageCommand,
  SendMessageBatchCommand,
  SendMessageCommand,
  SQSClient,
  type Message,
  type ReceiveMessageCommandInput,
} from '@aws-sdk/client-sqs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startLocalSqs, type LocalSqs } from '../../src/local/local-sqs.ts';

const KiB = 1024;

function makeClient(endpoint: string): SQSClient {
  return new SQSClient({
    region: 'us-east-1',
    endpoint,
    credentials: { accessKeyId: 'local', secretAccessKey: 'local' },
    // a retried request would hide timing and error behaviour
    maxAttempts: 1,
  });
}

/** Rejection of `p`, or a failure if it resolves. */
async function rejectionOf(p: Promise<unknown>): Promise<Error> {
  try {
    await p;
  } catch (e) {
    return e as Error;
  }
  throw new Error('expected the request to fail, it succeeded');
}

describe('local SQS emulator conformance', () => {
  let server: LocalSqs;
  let client: SQSClient;
  const created: string[] = [];

  beforeAll(async () => {
    server = await startLocalSqs();
    client = makeClient(server.endpoint);
  });

  afterAll(async () => {
    for (const QueueUrl of created) await client?.send(new DeleteQueueCommand({ QueueUrl })).catch(() => undefined);
    client?.destroy();
    await server?.stop();
  });

  async function createQueue(attributes: Record<string, string> = {}, name = `conf-${randomUUID()}`): Promise<string> {
    const out = await client.send(new CreateQueueCommand({ QueueName: name, Attributes: attributes }));
    if (!out.QueueUrl) throw new Error('CreateQueue returned no QueueUrl');
    created.push(out.QueueUrl);
    return out.QueueUrl;
  }

  async function queueArn(QueueUrl: string): Promise<string> {
    const out = await client.send(new GetQueueAttributesCommand({ QueueUrl, AttributeNames: ['QueueArn'] }));
    const arn = out.Attributes?.['QueueArn'];
    if (!arn) throw new Error('no QueueArn');
    return arn;
  }

  async function counts(QueueUrl: string): Promise<{ visible: number; inFlight: number }> {
    const out = await client.send(
      new GetQueueAttributesCommand({
        QueueUrl,
        AttributeNames: ['ApproximateNumberOfMessages', 'ApproximateNumberOfMessagesNotVisible'],
      }),
    );
    return {
      visible: Number(out.Attributes?.['ApproximateNumberOfMessages']),
      inFlight: Number(out.Attributes?.['ApproximateNumberOfMessagesNotVisible']),
    };
  }

  /** ReceiveMessage; short poll unless WaitTimeSeconds is given; asks for the receive count. */
  async function receive(QueueUrl: string, opts: Partial<ReceiveMessageCommandInput> = {}): Promise<Message[]> {
    const out = await client.send(
      new ReceiveMessageCommand({
        QueueUrl,
        WaitTimeSeconds: 0,
        MessageSystemAttributeNames: ['ApproximateReceiveCount'],
        ...opts,
      }),
    );
    return out.Messages ?? [];
  }

  async function receiveOne(QueueUrl: string, opts: Partial<ReceiveMessageCommandInput> = {}): Promise<Message> {
    const msgs = await receive(QueueUrl, { WaitTimeSeconds: 2, ...opts });
    expect(msgs).toHaveLength(1);
    return msgs[0]!;
  }

  const receiveCount = (m: Message) => m.Attributes?.['ApproximateReceiveCount'];

  const changeVisibility = (QueueUrl: string, ReceiptHandle: string, VisibilityTimeout: number) =>
    client.send(new ChangeMessageVisibilityCommand({ QueueUrl, ReceiptHandle, VisibilityTimeout }));

  const deleteMessage = (QueueUrl: string, ReceiptHandle: string) => client.send(new DeleteMessageCommand({ QueueUrl, ReceiptHandle }));

  describe('send / receive / delete', () => {
    it('round-trips body and message attributes byte-exact (unicode), then deletes', async () => {
      const url = await createQueue();
      const body = JSON.stringify({ path: '/tapes/Ünïcødé/日本語/🎞️ film.mkv', note: 'tab\tnl\ncr\r "quotes" <&> \u00a0\u200b' }) + ' 𝄞\ud83d\ude00';
      const binary = new Uint8Array([0, 1, 2, 127, 128, 254, 255]);
      const attributes = {
        kind: { DataType: 'String', StringValue: 'tâche — タスク ✓' },
        attempt: { DataType: 'Number', StringValue: '12.5' },
        blob: { DataType: 'Binary', BinaryValue: binary },
      };

      const sent = await client.send(new SendMessageCommand({ QueueUrl: url, MessageBody: body, MessageAttributes: attributes }));
      expect(sent.MessageId).toBeTruthy();
      expect(sent.MD5OfMessageBody).toBe(createHash('md5').update(body, 'utf8').digest('hex'));

      const m = await receiveOne(url, {
        MessageAttributeNames: ['All'],
        MessageSystemAttributeNames: ['ApproximateReceiveCount', 'SentTimestamp'],
      });
      expect(m.MessageId).toBe(sent.MessageId);
      expect(m.Body).toBe(body);
      expect(Buffer.from(m.Body!, 'utf8').equals(Buffer.from(body, 'utf8'))).toBe(true);
      expect(m.MD5OfBody).toBe(sent.MD5OfMessageBody);
      expect(m.MD5OfMessageAttributes).toBe(sent.MD5OfMessageAttributes);
      expect(m.MessageAttributes?.['kind']).toMatchObject({ DataType: 'String', StringValue: 'tâche — タスク ✓' });
      expect(m.MessageAttributes?.['attempt']).toMatchObject({ DataType: 'Number', StringValue: '12.5' });
      expect(m.MessageAttributes?.['blob']?.DataType).toBe('Binary');
      expect(Buffer.from(m.MessageAttributes!['blob']!.BinaryValue!).equals(Buffer.from(binary))).toBe(true);
      // MessageSystemAttributeNames (the non-deprecated spelling of AttributeNames) is honoured
      expect(receiveCount(m)).toBe('1');
      expect(Math.abs(Number(m.Attributes?.['SentTimestamp']) - Date.now())).toBeLessThan(60_000);

      await deleteMessage(url, m.ReceiptHandle!);
      expect(await counts(url)).toEqual({ visible: 0, inFlight: 0 });
      expect(await receive(url, { WaitTimeSeconds: 1 })).toHaveLength(0);
    });

    it('DeleteMessage of an already deleted message succeeds; a malformed handle is ReceiptHandleIsInvalid', async () => {
      const url = await createQueue();
      await client.send(new SendMessageCommand({ QueueUrl: url, MessageBody: 'once' }));
      const m = await receiveOne(url);
      await deleteMessage(url, m.ReceiptHandle!);
      // real SQS: deleting again with the same handle is accepted and does nothing
      await expect(deleteMessage(url, m.ReceiptHandle!)).resolves.toBeDefined();
      const err = await rejectionOf(deleteMessage(url, 'not-a-receipt-handle'));
      expect(err).toBeInstanceOf(ReceiptHandleIsInvalid);
    });

    it('SendMessageBatch sends every entry', async () => {
      const url = await createQueue();
      const out = await client.send(
        new SendMessageBatchCommand({
          QueueUrl: url,
          Entries: [
            { Id: 'a', MessageBody: 'one' },
            { Id: 'b', MessageBody: 'two', MessageAttributes: { k: { DataType: 'String', StringValue: 'v' } } },
            { Id: 'c', MessageBody: 'three ✓' },
          ],
        }),
      );
      expect(out.Successful?.map((s) => s.Id).sort()).toEqual(['a', 'b', 'c']);
      expect(out.Failed ?? []).toHaveLength(0);
      const bodies = (await receive(url, { MaxNumberOfMessages: 10, WaitTimeSeconds: 1 })).map((m) => m.Body);
      expect(bodies.sort()).toEqual(['one', 'three ✓', 'two']);
    });
  });

  describe('long polling', () => {
    it('returns at once when a message is already there, without waiting to fill MaxNumberOfMessages', async () => {
      const url = await createQueue();
      await client.send(new SendMessageCommand({ QueueUrl: url, MessageBody: 'ready' }));
      const t0 = performance.now();
      const msgs = await receive(url, { MaxNumberOfMessages: 10, WaitTimeSeconds: 10 });
      const elapsed = performance.now() - t0;
      expect(msgs.map((m) => m.Body)).toEqual(['ready']);
      expect(elapsed).toBeLessThan(2_000);
    });

    it('returns as soon as a message is sent while the poll is waiting', async () => {
      const url = await createQueue();
      const t0 = performance.now();
      const poll = receive(url, { MaxNumberOfMessages: 10, WaitTimeSeconds: 10 });
      await sleep(300);
      await client.send(new SendMessageCommand({ QueueUrl: url, MessageBody: 'late' }));
      const msgs = await poll;
      const elapsed = performance.now() - t0;
      expect(msgs.map((m) => m.Body)).toEqual(['late']);
      expect(elapsed).toBeLessThan(2_000);
    });

    it('returns empty after about WaitTimeSeconds when nothing arrives', async () => {
      const url = await createQueue();
      const t0 = performance.now();
      const msgs = await receive(url, { MaxNumberOfMessages: 10, WaitTimeSeconds: 1 });
      const elapsed = performance.now() - t0;
      expect(msgs).toHaveLength(0);
      expect(elapsed).toBeGreaterThanOrEqual(900);
      expect(elapsed).toBeLessThan(2_500);
    });

    it('delivers one message to only one of two concurrent pollers', async () => {
      const url = await createQueue();
      const polls = [receive(url, { WaitTimeSeconds: 2 }), receive(url, { WaitTimeSeconds: 2 })];
      await sleep(200);
      await client.send(new SendMessageCommand({ QueueUrl: url, MessageBody: 'solo' }));
      const results = await Promise.all(polls);
      expect(results.map((r) => r.length).sort()).toEqual([0, 1]);
    });
  });

  describe('visibility', () => {
    it('hides a received message until its visibility timeout, then redelivers it with ApproximateReceiveCount 2', async () => {
      const url = await createQueue({ VisibilityTimeout: '30' });
      await client.send(new SendMessageCommand({ QueueUrl: url, MessageBody: 'lease' }));
      const first = await receiveOne(url, { VisibilityTimeout: 1 });
      expect(receiveCount(first)).toBe('1');
      expect(await receive(url)).toHaveLength(0);
      await sleep(500);
      expect(await receive(url)).toHaveLength(0);

      const again = await receiveOne(url, { WaitTimeSeconds: 3 });
      expect(again.MessageId).toBe(first.MessageId);
      expect(again.ReceiptHandle).not.toBe(first.ReceiptHandle);
      expect(receiveCount(again)).toBe('2');
    });

    it('ChangeMessageVisibility extends the lease without counting as a receive; 0 makes the message visible at once', async () => {
      const url = await createQueue({ VisibilityTimeout: '30' });
      await client.send(new SendMessageCommand({ QueueUrl: url, MessageBody: 'heartbeat' }));
      const m = await receiveOne(url, { VisibilityTimeout: 1 });

      // heartbeats, as a worker does while it works: each pushes the deadline 1 s ahead
      for (let i = 0; i < 4; i++) {
        await changeVisibility(url, m.ReceiptHandle!, 1);
        await sleep(400);
        expect(await receive(url)).toHaveLength(0);
      }
      // 1.6 s after the receive, well past the original 1 s lease: still hidden
      expect(await counts(url)).toEqual({ visible: 0, inFlight: 1 });

      await changeVisibility(url, m.ReceiptHandle!, 0);
      const again = await receive(url);
      expect(again.map((x) => x.MessageId)).toEqual([m.MessageId]);
      // four ChangeMessageVisibility calls did not count: this is only the second receive
      expect(receiveCount(again[0]!)).toBe('2');
    });

    it('visibility heartbeats do not push a message into the dead-letter queue', async () => {
      const dlq = await createQueue();
      const url = await createQueue({
        VisibilityTimeout: '30',
        RedrivePolicy: JSON.stringify({ deadLetterTargetArn: await queueArn(dlq), maxReceiveCount: 2 }),
      });
      await client.send(new SendMessageCommand({ QueueUrl: url, MessageBody: 'long task' }));
      const m = await receiveOne(url, { VisibilityTimeout: 1 });
      for (let i = 0; i < 3; i++) {
        await changeVisibility(url, m.ReceiptHandle!, 1);
        await sleep(300);
      }
      // the worker gives the task back (or its lease runs out): it is redelivered from the source queue
      await changeVisibility(url, m.ReceiptHandle!, 0);
      const again = await receiveOne(url);
      expect(again.MessageId).toBe(m.MessageId);
      expect(receiveCount(again)).toBe('2');
      expect(await receive(dlq)).toHaveLength(0);
    });

    it('ChangeMessageVisibility with a stale receipt handle does not hide or release the message', async () => {
      const url = await createQueue({ VisibilityTimeout: '30' });
      await client.send(new SendMessageCommand({ QueueUrl: url, MessageBody: 'stale' }));
      const first = await receiveOne(url, { VisibilityTimeout: 1 });
      await sleep(1_300);

      // lease expired, message visible again: a late heartbeat must not hide it for 30 s
      // (real SQS answers OK without effect or MessageNotInflight; either way it stays visible)
      await changeVisibility(url, first.ReceiptHandle!, 30).catch(() => undefined);
      const second = await receiveOne(url, { WaitTimeSeconds: 0 });
      expect(second.MessageId).toBe(first.MessageId);

      // another consumer now holds it: the old handle must not make it visible again
      await changeVisibility(url, first.ReceiptHandle!, 0).catch(() => undefined);
      expect(await receive(url)).toHaveLength(0);
      await deleteMessage(url, second.ReceiptHandle!);
    });
  });

  describe('dead-letter queue', () => {
    it('moves a message received maxReceiveCount times without delete to the DLQ', async () => {
      const dlq = await createQueue();
      const url = await createQueue({
        VisibilityTimeout: '1',
        RedrivePolicy: JSON.stringify({ deadLetterTargetArn: await queueArn(dlq), maxReceiveCount: 2 }),
      });
      await client.send(
        new SendMessageCommand({
          QueueUrl: url,
          MessageBody: 'poison ☠',
          MessageAttributes: { job: { DataType: 'String', StringValue: 'j-1' } },
        }),
      );
      const r1 = await receiveOne(url);
      expect(receiveCount(r1)).toBe('1');
      const r2 = await receiveOne(url, { WaitTimeSeconds: 3 });
      expect(receiveCount(r2)).toBe('2');

      // after the second lease runs out, the message is not delivered from the source again
      await sleep(1_200);
      expect(await receive(url, { WaitTimeSeconds: 1 })).toHaveLength(0);
      expect(await counts(url)).toEqual({ visible: 0, inFlight: 0 });

      const dead = await receiveOne(dlq, { MessageAttributeNames: ['All'] });
      expect(dead.Body).toBe('poison ☠');
      expect(dead.MessageAttributes?.['job']?.StringValue).toBe('j-1');
    });
  });

  describe('queue attributes and URLs', () => {
    it('ApproximateNumberOfMessages counts visible messages, ApproximateNumberOfMessagesNotVisible in-flight ones', async () => {
      const url = await createQueue({ VisibilityTimeout: '30' });
      for (const b of ['1', '2', '3']) await client.send(new SendMessageCommand({ QueueUrl: url, MessageBody: b }));
      // "Approximate", as on SQS: counts settle within moments of a send, receive or delete.
      await expect.poll(() => counts(url), { timeout: 3_000, interval: 50 }).toEqual({ visible: 3, inFlight: 0 });

      const m = await receiveOne(url, { MaxNumberOfMessages: 1 });
      await expect.poll(() => counts(url), { timeout: 3_000, interval: 50 }).toEqual({ visible: 2, inFlight: 1 });

      await changeVisibility(url, m.ReceiptHandle!, 0);
      // "Approximate", as on SQS: a message made visible again is counted so within moments
      // (the emulator moves it back on its next tick; it once took longer than one call).
      await expect.poll(() => counts(url), { timeout: 3_000, interval: 50 }).toEqual({ visible: 3, inFlight: 0 });

      const again = await receiveOne(url, { MaxNumberOfMessages: 1 });
      await deleteMessage(url, again.ReceiptHandle!);
      await expect.poll(() => counts(url), { timeout: 3_000, interval: 50 }).toEqual({ visible: 2, inFlight: 0 });
    });

    it('GetQueueUrl finds an existing queue and fails with QueueDoesNotExist for a missing one', async () => {
      const name = `conf-${randomUUID()}`;
      const url = await createQueue({}, name);
      const got = await client.send(new GetQueueUrlCommand({ QueueName: name }));
      expect(got.QueueUrl).toBe(url);
      expect(url.startsWith(server.endpoint)).toBe(true);

      const err = await rejectionOf(client.send(new GetQueueUrlCommand({ QueueName: `missing-${randomUUID()}` })));
      expect(err).toBeInstanceOf(QueueDoesNotExist);
      expect(err.name).toBe('QueueDoesNotExist');

      const sendErr = await rejectionOf(
        client.send(new SendMessageCommand({ QueueUrl: `${server.endpoint}/123456789012/missing-${randomUUID()}`, MessageBody: 'x' })),
      );
      expect(sendErr).toBeInstanceOf(QueueDoesNotExist);
    });

    it('a deleted queue name can be created again at once (emulateQueueCreationLifecycle off)', async () => {
      const name = `conf-${randomUUID()}`;
      const url = await createQueue({}, name);
      await client.send(new DeleteQueueCommand({ QueueUrl: url }));
      await expect(createQueue({}, name)).resolves.toBe(url);
    });
  });

  describe('message size', () => {
    const tooLarge = /InvalidParameterValue/;

    it('defaults MaximumMessageSize to 1 MiB, as AWS does for queues created since August 2025', async () => {
      const url = await createQueue();
      const out = await client.send(new GetQueueAttributesCommand({ QueueUrl: url, AttributeNames: ['MaximumMessageSize'] }));
      expect(out.Attributes?.['MaximumMessageSize']).toBe(String(1024 * KiB));
      await client.send(new SendMessageCommand({ QueueUrl: url, MessageBody: 'x'.repeat(256 * KiB + 1) }));
      const err = await rejectionOf(client.send(new SendMessageCommand({ QueueUrl: url, MessageBody: 'x'.repeat(1024 * KiB + 1) })));
      expect(err.name).toMatch(tooLarge);
    });

    it('rejects messages over a 256 KiB MaximumMessageSize, counting UTF-8 bytes of body and attributes', async () => {
      const url = await createQueue({ MaximumMessageSize: String(256 * KiB) });
      await client.send(new SendMessageCommand({ QueueUrl: url, MessageBody: 'x'.repeat(256 * KiB) }));

      const over = await rejectionOf(client.send(new SendMessageCommand({ QueueUrl: url, MessageBody: 'x'.repeat(256 * KiB + 1) })));
      expect(over.name).toMatch(tooLarge);

      // 87,382 characters but 262,146 UTF-8 bytes ('€' is 3 bytes)
      const euros = '€'.repeat(87_382);
      expect(Buffer.byteLength(euros)).toBeGreaterThan(256 * KiB);
      const wide = await rejectionOf(client.send(new SendMessageCommand({ QueueUrl: url, MessageBody: euros })));
      expect(wide.name).toMatch(tooLarge);

      // attribute name + type + value count too
      const withAttr = await rejectionOf(
        client.send(
          new SendMessageCommand({
            QueueUrl: url,
            MessageBody: 'x'.repeat(256 * KiB - 5),
            MessageAttributes: { k: { DataType: 'String', StringValue: 'v' } },
          }),
        ),
      );
      expect(withAttr.name).toMatch(tooLarge);

      const batch = await client.send(
        new SendMessageBatchCommand({
          QueueUrl: url,
          Entries: [
            { Id: 'ok', MessageBody: 'small' },
            { Id: 'big', MessageBody: euros },
          ],
        }),
      );
      expect(batch.Successful?.map((s) => s.Id)).toEqual(['ok']);
      expect(batch.Failed?.map((f) => [f.Id, f.Code])).toEqual([['big', 'InvalidParameterValue']]);
    });
  });
});

describe('startLocalSqs().stop()', () => {
  it('returns promptly while a 20 s long poll is in flight', async () => {
    const server = await startLocalSqs();
    const client = makeClient(server.endpoint);
    try {
      const out = await client.send(new CreateQueueCommand({ QueueName: `conf-${randomUUID()}` }));
      const poll = client.send(new ReceiveMessageCommand({ QueueUrl: out.QueueUrl, WaitTimeSeconds: 20 })).then(
        () => 'resolved',
        () => 'rejected',
      );
      await sleep(200);
      const t0 = performance.now();
      await server.stop();
      expect(performance.now() - t0).toBeLessThan(1_000);
      // the client sees the connection go away rather than waiting out the 20 s
      expect(await poll).toBe('rejected');
      expect(performance.now() - t0).toBeLessThan(2_000);
      await server.stop(); // idempotent
    } finally {
      client.destroy();
      await server.stop();
    }
  });

  it('starts on a given port and host', async () => {
    const first = await startLocalSqs();
    const port = first.port;
    await first.stop();
    const server = await startLocalSqs({ port, host: '127.0.0.1' });
    const client = makeClient(server.endpoint);
    try {
      expect(server.endpoint).toBe(`http://127.0.0.1:${port}`);
      const out = await client.send(new CreateQueueCommand({ QueueName: `conf-${randomUUID()}` }));
      expect(out.QueueUrl).toMatch(new RegExp(`^http://127\\.0\\.0\\.1:${port}/`));
    } finally {
      client.destroy();
      await server.stop();
    }
  });
});
