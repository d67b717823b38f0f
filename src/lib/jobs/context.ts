import { randomUUID } from 'node:crypto';
import { Catalog } from '../catalog/catalog.ts';
import { ManifestStore } from '../catalog/manifests.ts';
import { NameIndex } from '../catalog/name-index.ts';
import { TaskStatusStore } from '../catalog/task-status.ts';
import { guardClients } from '../aws/access-guard.ts';
import type { AwsClients } from '../aws/clients.ts';
import type { Config } from '../config.ts';
import { QueueDirectory } from '../protocol/task-queue.ts';
import type { Access } from '../resources/access.ts';

/** What every job needs, injected so handlers, CLI and tests wire it the same way. */
export interface JobContext {
  config: Config;
  /** The clients the stores below use (guarded when the context is restricted). */
  clients: AwsClients;
  catalog: Catalog;
  manifests: ManifestStore;
  /** Where each base name is (in the manifest table): `where_is`. */
  names: NameIndex;
  tasks: TaskStatusStore;
  queues: QueueDirectory;
  now: () => Date;
  newId: () => string;
}

export function createJobContext(config: Config, clients: AwsClients, overrides: Partial<JobContext> = {}): JobContext {
  return {
    config,
    clients,
    catalog: new Catalog(clients.dynamodb, config.names.catalogTable),
    manifests: new ManifestStore(clients.dynamodb, config.names.manifestTable),
    names: new NameIndex(clients.dynamodb, config.names.manifestTable),
    tasks: new TaskStatusStore(clients.dynamodb, config.names.catalogTable),
    queues: new QueueDirectory(clients.sqs, config),
    now: () => new Date(),
    newId: randomUUID,
    ...overrides,
  };
}

/**
 * The same context, able to touch only what `access` declares (resources/access.ts): any
 * other table or queue throws UndeclaredAccessError. Clock, ids and resolved queue URLs are
 * kept.
 */
export function restrict(ctx: JobContext, access: Access, who: string): JobContext {
  const clients = guardClients(ctx.clients, ctx.config.names, access, who);
  return createJobContext(ctx.config, clients, { now: ctx.now, newId: ctx.newId, queues: ctx.queues.withClient(clients.sqs) });
}
