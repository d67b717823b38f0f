import { randomUUID } from 'node:crypto';
import { Catalog } from '../catalog/catalog.ts';
import { ManifestStore } from '../catalog/manifests.ts';
import { TaskStatusStore } from '../catalog/task-status.ts';
import type { AwsClients } from '../aws/clients.ts';
import type { Config } from '../config.ts';
import { QueueDirectory } from '../protocol/task-queue.ts';

/** What every job needs, injected so handlers, CLI and tests wire it the same way. */
export interface JobContext {
  config: Config;
  catalog: Catalog;
  manifests: ManifestStore;
  tasks: TaskStatusStore;
  queues: QueueDirectory;
  now: () => Date;
  newId: () => string;
}

export function createJobContext(config: Config, clients: AwsClients, overrides: Partial<JobContext> = {}): JobContext {
  return {
    config,
    catalog: new Catalog(clients.dynamodb, config.names.catalogTable),
    manifests: new ManifestStore(clients.dynamodb, config.names.manifestTable),
    tasks: new TaskStatusStore(clients.dynamodb, config.names.catalogTable),
    queues: new QueueDirectory(clients.sqs, config),
    now: () => new Date(),
    newId: randomUUID,
    ...overrides,
  };
}
