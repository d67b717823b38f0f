/**
 * AWS clients that refuse what an access declaration (resources/access.ts) does not name:
 * a DynamoDB call to an undeclared table (or a write to a table declared read-only), an SQS
 * call to an undeclared queue. The error names the call and the declaration to extend, so a
 * missing permission shows up in any test that runs the code path, not only on AWS as
 * AccessDenied. Requests are inspected by command name and input; nothing else changes.
 */
import type { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import type { SQSClient } from '@aws-sdk/client-sqs';
import { ArchiveError } from '../errors.ts';
import type { Access, TableKey } from '../resources/access.ts';
import type { QueueKey, ResourceNames } from '../resources/definitions.ts';
import type { AwsClients } from './clients.ts';

export class UndeclaredAccessError extends ArchiveError {
  override readonly name = 'UndeclaredAccessError';
  readonly code = 'UNDECLARED_ACCESS';
  readonly status = 500;
}

const DYNAMO_READS = new Set(['GetItemCommand', 'QueryCommand', 'ScanCommand', 'BatchGetItemCommand', 'TransactGetItemsCommand']);
const DYNAMO_WRITES = new Set(['PutItemCommand', 'UpdateItemCommand', 'DeleteItemCommand', 'BatchWriteItemCommand', 'TransactWriteItemsCommand']);
const SQS_SENDS = new Set(['SendMessageCommand', 'SendMessageBatchCommand']);
const SQS_RECEIVES = new Set([
  'ReceiveMessageCommand',
  'DeleteMessageCommand',
  'DeleteMessageBatchCommand',
  'ChangeMessageVisibilityCommand',
  'ChangeMessageVisibilityBatchCommand',
  'GetQueueAttributesCommand',
]);

type Command = { constructor: { name: string }; input?: Record<string, unknown> };

/** The operation of a command: its class name, without the suffix a bundler adds to keep names apart ("PutItemCommand4"). */
const opOf = (c: Command) => c.constructor.name.replace(/^_+/, '').replace(/\d+$/, '');

/** Table names a DynamoDB request touches. */
export function tablesOf(input: Record<string, unknown>): string[] {
  const names = new Set<string>();
  if (typeof input.TableName === 'string') names.add(input.TableName);
  for (const k of Object.keys((input.RequestItems as Record<string, unknown> | undefined) ?? {})) names.add(k);
  for (const item of (input.TransactItems as Record<string, { TableName?: string }>[] | undefined) ?? []) {
    for (const op of Object.values(item)) if (typeof op?.TableName === 'string') names.add(op.TableName);
  }
  return [...names];
}

/** The declared queue (or dead-letter queue) a queue URL or name refers to. */
function queueOf(names: ResourceNames, urlOrName: string): { key: QueueKey; dlq: boolean } | undefined {
  const last = urlOrName.slice(urlOrName.lastIndexOf('/') + 1);
  for (const [key, q] of Object.entries(names.queues) as [QueueKey, { name: string; dlqName: string }][]) {
    if (last === q.name) return { key, dlq: false };
    if (last === q.dlqName) return { key, dlq: true };
  }
  return undefined;
}

function guard<T extends { send: (...a: never[]) => unknown }>(client: T, check: (c: Command) => void): T {
  return new Proxy(client, {
    get(target, prop, receiver) {
      if (prop !== 'send') return Reflect.get(target, prop, receiver);
      return (command: Command, ...rest: unknown[]) => {
        check(command);
        return (target.send as (...a: unknown[]) => unknown).call(target, command, ...rest);
      };
    },
  });
}

/** `clients` restricted to `access` (`who` names the declaration in errors). */
export function guardClients(clients: AwsClients, names: ResourceNames, access: Access, who: string): AwsClients {
  const tableKey = (name: string): TableKey | undefined => (name === names.catalogTable ? 'catalog' : name === names.manifestTable ? 'manifests' : undefined);
  const refuse = (what: string): never => {
    throw new UndeclaredAccessError(
      `${who} is not declared to ${what}; add it to its declaration in src/lib/resources/access.ts (and its IAM role) if that is intended.`,
      { who },
    );
  };
  const dynamodb = guard(clients.dynamodb as DynamoDBClient, (c) => {
    const op = opOf(c);
    const isWrite = DYNAMO_WRITES.has(op);
    if (!isWrite && !DYNAMO_READS.has(op)) refuse(`call DynamoDB ${op}`);
    for (const t of tablesOf(c.input ?? {})) {
      const key = tableKey(t);
      if (!key) refuse(`use table ${t}`);
      const ok = isWrite ? access.write?.includes(key!) : access.read?.includes(key!) || access.write?.includes(key!);
      if (!ok) refuse(`${isWrite ? 'write' : 'read'} the ${key} table (${op})`);
    }
  });
  const sqs = guard(clients.sqs as SQSClient, (c) => {
    const op = opOf(c);
    const input = c.input ?? {};
    const ref = typeof input.QueueUrl === 'string' ? input.QueueUrl : typeof input.QueueName === 'string' ? input.QueueName : undefined;
    const q = ref !== undefined ? queueOf(names, ref) : undefined;
    if (!q) return refuse(`call SQS ${op} on ${ref ?? 'no queue'}`);
    const label = q.dlq ? `the ${q.key} dead-letter queue` : `the ${q.key} queue`;
    if (q.dlq) {
      if (!access.deadLetter?.includes(q.key) || !(SQS_SENDS.has(op) || op === 'GetQueueUrlCommand')) refuse(`${op} ${label}`);
      return;
    }
    if (op === 'GetQueueUrlCommand') {
      if (!access.send?.includes(q.key) && !access.receive?.includes(q.key)) refuse(`look up ${label}`);
    } else if (SQS_SENDS.has(op)) {
      if (!access.send?.includes(q.key)) refuse(`send to ${label}`);
    } else if (SQS_RECEIVES.has(op)) {
      // moving a poison message to its dead-letter queue deletes it from the source queue
      if (!access.receive?.includes(q.key)) refuse(`receive from ${label} (${op})`);
    } else {
      refuse(`call SQS ${op} on ${label}`);
    }
  });
  return { dynamodb, sqs };
}
