/**
 * Creates every table and queue of `definitions.ts` on an endpoint, idempotently: what exists
 * is left alone. Used by the embedded stack, the tests, and `run-job bootstrap` against
 * LocalStack or an AWS account (where CloudFormation via serverless.yml is the usual way).
 */
import {
  CreateTableCommand,
  DescribeTableCommand,
  ResourceInUseException,
  UpdateTimeToLiveCommand,
  waitUntilTableExists,
  type DynamoDBClient,
} from '@aws-sdk/client-dynamodb';
import { CreateQueueCommand, GetQueueAttributesCommand, type SQSClient } from '@aws-sdk/client-sqs';
import type { Config } from '../config.ts';
import { createQueueAttributes, createTableInput, QUEUES, TABLES, type QueueKey } from './definitions.ts';

export interface BootstrapResult {
  tables: string[];
  queueUrls: Record<QueueKey, string>;
  created: string[];
}

async function ensureTable(db: DynamoDBClient, def: (typeof TABLES)[keyof typeof TABLES], name: string): Promise<boolean> {
  try {
    await db.send(new DescribeTableCommand({ TableName: name }));
    return false;
  } catch (e) {
    if ((e as Error).name !== 'ResourceNotFoundException') throw e;
  }
  try {
    await db.send(new CreateTableCommand(createTableInput(def, name)));
  } catch (e) {
    if (!(e instanceof ResourceInUseException)) throw e;
    return false;
  }
  await waitUntilTableExists({ client: db, maxWaitTime: 60 }, { TableName: name });
  if (def.ttlAttribute) {
    await db
      .send(new UpdateTimeToLiveCommand({ TableName: name, TimeToLiveSpecification: { AttributeName: def.ttlAttribute, Enabled: true } }))
      .catch(() => undefined); // DynamoDB Local accepts but ignores TTL; absence is harmless
  }
  return true;
}

async function ensureQueue(sqs: SQSClient, name: string, attributes: Record<string, string>): Promise<string> {
  const out = await sqs.send(new CreateQueueCommand({ QueueName: name, Attributes: attributes }));
  if (!out.QueueUrl) throw new Error(`CreateQueue ${name} returned no URL`);
  return out.QueueUrl;
}

export async function bootstrap(config: Config, clients: { dynamodb: DynamoDBClient; sqs: SQSClient }): Promise<BootstrapResult> {
  const created: string[] = [];
  for (const [key, def] of Object.entries(TABLES) as [keyof typeof TABLES, (typeof TABLES)[keyof typeof TABLES]][]) {
    const name = config.names[key];
    if (await ensureTable(clients.dynamodb, def, name)) created.push(name);
  }
  const queueUrls = {} as Record<QueueKey, string>;
  for (const [key, def] of Object.entries(QUEUES) as [QueueKey, (typeof QUEUES)[QueueKey]][]) {
    const names = config.names.queues[key];
    const dlqUrl = await ensureQueue(clients.sqs, names.dlqName, { MessageRetentionPeriod: String(14 * 24 * 3600) });
    const dlqAttrs = await clients.sqs.send(new GetQueueAttributesCommand({ QueueUrl: dlqUrl, AttributeNames: ['QueueArn'] }));
    const dlqArn = dlqAttrs.Attributes?.QueueArn;
    if (!dlqArn) throw new Error(`queue ${names.dlqName} has no ARN`);
    queueUrls[key] = await ensureQueue(clients.sqs, names.name, createQueueAttributes(def, dlqArn));
  }
  return { tables: [config.names.catalogTable, config.names.manifestTable], queueUrls, created };
}
