/**
 * The embedded AWS-compatible stack: DynamoDB Local (data kept in a directory so it survives
 * a restart, or in memory for tests) and a local SQS in this process, with every table and
 * queue created. The same code points at AWS or LocalStack by configuration alone.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import { createClients, destroyClients } from '../lib/aws/clients.ts';
import { loadConfig, type Config } from '../lib/config.ts';
import { bootstrap, type BootstrapResult } from '../lib/resources/bootstrap.ts';
import { startDynamoDbLocal, type DynamoDbLocal } from './dynamodb-local.ts';
import { startLocalSqs, type LocalSqs } from './local-sqs.ts';

export interface EmbeddedStackOptions {
  /** DynamoDB Local's data directory; omitted = in memory. */
  dataDir?: string;
  dynamodbPort?: number;
  sqsPort?: number;
  prefix?: string;
  /** Where to write the config file that run-job and the agent read. */
  configPath?: string;
  log?: (line: string) => void;
}

export interface EmbeddedStack {
  config: Config;
  endpoints: { dynamodb: string; sqs: string };
  resources: BootstrapResult;
  stop(): Promise<void>;
}

export async function startEmbeddedStack(opts: EmbeddedStackOptions = {}): Promise<EmbeddedStack> {
  let dynamo: DynamoDbLocal | undefined;
  let sqs: LocalSqs | undefined;
  const stop = async () => {
    await Promise.allSettled([sqs?.stop(), dynamo?.stop()]);
  };
  try {
    [dynamo, sqs] = await Promise.all([
      startDynamoDbLocal({
        ...(opts.dataDir ? { dataDir: opts.dataDir } : {}),
        ...(opts.dynamodbPort ? { port: opts.dynamodbPort } : {}),
        ...(opts.log ? { log: opts.log } : {}),
      }),
      startLocalSqs(opts.sqsPort ? { port: opts.sqsPort } : {}),
    ]);
    const endpoints = { dynamodb: dynamo.endpoint, sqs: sqs.endpoint };
    const config = loadConfig({}, { endpoints, ...(opts.prefix ? { prefix: opts.prefix } : {}) });
    const clients = createClients(config);
    let resources: BootstrapResult;
    try {
      resources = await bootstrap(config, clients);
    } finally {
      destroyClients(clients);
    }
    if (opts.configPath) {
      await mkdir(dirname(opts.configPath), { recursive: true });
      await writeFile(opts.configPath, JSON.stringify({ region: config.region, prefix: config.prefix, endpoints }, null, 2) + '\n');
    }
    return { config, endpoints, resources, stop };
  } catch (e) {
    await stop();
    throw e;
  }
}
