import { randomUUID } from 'node:crypto';
import { Catalog } from '../catalog/catalog.ts';
import type { AwsClients } from '../aws/clients.ts';
import type { Config } from '../config.ts';
import { QueueDirectory } from '../protocol/task-queue.ts';

/** What every job needs, injected so handlers, CLI and tests wire it the same way. */
export interface JobContext {
  config: Config;
  catalog: Catalog;
  queues: QueueDirectory;
  now: () => Date;
  newId: () => string;
}

export function createJobContext(config: Config, clients: AwsClients, overrides: Partial<JobContext> = {}): JobContext {
  return {
    config,
    catalog: new Catalog(clients.dynamodb, config.names.catalogTable),
    queues: new QueueDirectory(clients.sqs, config),
    now: () => new Date(),
    newId: randomUUID,
    ...overrides,
  };
}
