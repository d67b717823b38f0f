/**
 * IAM permissions derived from an access declaration (access.ts), as a map from resource
 * (CloudFormation logical id, `/index/*` for a table's indexes) to the actions allowed on it.
 * Pure: the template test compares serverless.yml's per-function roles with these, and
 * docs/operations.md's agent policy follows AGENT_ACCESS.
 */
import type { Access, TableKey } from './access.ts';
import { CATALOG_TABLE, MANIFEST_TABLE, QUEUES, type QueueKey } from './definitions.ts';

export const TABLE_LOGICAL_ID: Record<TableKey, string> = { catalog: CATALOG_TABLE.logicalId, manifests: MANIFEST_TABLE.logicalId };

export const READ_ACTIONS = ['dynamodb:GetItem', 'dynamodb:Query', 'dynamodb:Scan'] as const;
export const WRITE_ACTIONS = [...READ_ACTIONS, 'dynamodb:PutItem', 'dynamodb:UpdateItem', 'dynamodb:DeleteItem', 'dynamodb:ConditionCheckItem'] as const;
/** Manifest pages are written in batches. */
const BATCH_WRITE = 'dynamodb:BatchWriteItem';
export const SEND_ACTIONS = ['sqs:SendMessage', 'sqs:GetQueueUrl'] as const;
export const RECEIVE_ACTIONS = ['sqs:ReceiveMessage', 'sqs:DeleteMessage', 'sqs:GetQueueAttributes', 'sqs:ChangeMessageVisibility'] as const;

/** resource -> sorted actions. Tables with indexes get the same actions on `<id>/index/*`. */
export type Permissions = Record<string, string[]>;

export function permissionsFor(access: Access): Permissions {
  const out = new Map<string, Set<string>>();
  const allow = (resource: string, actions: readonly string[]) => {
    const s = out.get(resource) ?? new Set<string>();
    for (const a of actions) s.add(a);
    out.set(resource, s);
  };
  const table = (t: TableKey, actions: readonly string[]) => {
    allow(TABLE_LOGICAL_ID[t], actions);
    if (t === 'catalog' && CATALOG_TABLE.globalIndexes.length) allow(`${TABLE_LOGICAL_ID[t]}/index/*`, actions);
  };
  for (const t of access.read ?? []) table(t, READ_ACTIONS);
  for (const t of access.write ?? []) table(t, t === 'manifests' ? [...WRITE_ACTIONS, BATCH_WRITE] : WRITE_ACTIONS);
  const queue = (q: QueueKey) => QUEUES[q].logicalId;
  for (const q of access.send ?? []) allow(queue(q), SEND_ACTIONS);
  for (const q of access.receive ?? []) allow(queue(q), RECEIVE_ACTIONS);
  for (const q of access.deadLetter ?? []) allow(`${queue(q)}Dlq`, SEND_ACTIONS);
  return Object.fromEntries([...out].sort(([a], [b]) => (a < b ? -1 : 1)).map(([r, s]) => [r, [...s].sort()]));
}
