/**
 * Per-test-file catalog and queues on the shared emulators: a unique prefix means unique
 * tables and queues, so files run in parallel without seeing each other's data.
 */
import { randomUUID } from 'node:crypto';
import { DeleteTableCommand } from '@aws-sdk/client-dynamodb';
import { DeleteQueueCommand, ReceiveMessageCommand, DeleteMessageCommand } from '@aws-sdk/client-sqs';
import { inject } from 'vitest';
import { createClients, destroyClients, type AwsClients } from '../../src/lib/aws/clients.ts';
import { loadConfig, type Config } from '../../src/lib/config.ts';
import { createJobContext, type JobContext } from '../../src/lib/jobs/context.ts';
import { bootstrap, type BootstrapResult } from '../../src/lib/resources/bootstrap.ts';
import type { QueueKey } from '../../src/lib/resources/definitions.ts';

export interface TestStack {
  config: Config;
  clients: AwsClients;
  ctx: JobContext;
  resources: BootstrapResult;
  /** Environment that points run-job / the agent at this stack. */
  env: NodeJS.ProcessEnv;
  /** Receives (and deletes) every message currently on a queue. */
  drain(queue: QueueKey): Promise<unknown[]>;
  close(): Promise<void>;
}

export async function createTestStack(opts: { prefix?: string } = {}): Promise<TestStack> {
  const endpoints = inject('endpoints');
  const prefix = opts.prefix ?? `t${randomUUID().replace(/-/g, '').slice(0, 20)}`;
  const env: NodeJS.ProcessEnv = {
    AWS_ENDPOINT_URL_DYNAMODB: endpoints.dynamodb,
    AWS_ENDPOINT_URL_SQS: endpoints.sqs,
    AWS_REGION: 'us-east-1',
    TAPE_ARCHIVE_PREFIX: prefix,
    TAPE_ARCHIVE_CONFIG: '',
  };
  const config = loadConfig(env);
  const clients = createClients(config);
  const resources = await bootstrap(config, clients);
  const ctx = createJobContext(config, clients);
  return {
    config,
    clients,
    ctx,
    resources,
    env,
    async drain(queue) {
      const bodies: unknown[] = [];
      for (;;) {
        const out = await clients.sqs.send(new ReceiveMessageCommand({ QueueUrl: resources.queueUrls[queue], MaxNumberOfMessages: 10, WaitTimeSeconds: 0 }));
        if (!out.Messages?.length) return bodies;
        for (const msg of out.Messages) {
          bodies.push(JSON.parse(msg.Body ?? 'null'));
          await clients.sqs.send(new DeleteMessageCommand({ QueueUrl: resources.queueUrls[queue], ReceiptHandle: msg.ReceiptHandle }));
        }
      }
    },
    async close() {
      await Promise.allSettled([
        ...resources.tables.map((t) => clients.dynamodb.send(new DeleteTableCommand({ TableName: t }))),
        ...Object.values(resources.queueUrls).map((u) => clients.sqs.send(new DeleteQueueCommand({ QueueUrl: u }))),
      ]);
      destroyClients(clients);
    },
  };
}
