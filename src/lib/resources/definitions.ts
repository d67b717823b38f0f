/**
 * The single definition of every table and queue. serverless.yml renders it to
 * CloudFormation (through cloudformation.cjs) and `bootstrap.ts` creates the same resources
 * on any endpoint (embedded emulators, LocalStack, an AWS account). There is no other copy.
 */

export interface KeyAttribute {
  name: string;
  type: 'S' | 'N' | 'B';
}

export interface TableDefinition {
  /** Logical id used in CloudFormation and as the key of `ResourceNames`. */
  logicalId: string;
  partitionKey: KeyAttribute;
  sortKey: KeyAttribute;
  globalIndexes: { name: string; partitionKey: KeyAttribute; sortKey: KeyAttribute }[];
  ttlAttribute?: string;
}

export interface QueueDefinition {
  logicalId: string;
  /** Seconds a received message stays invisible; the agent extends it while it works. */
  visibilityTimeout: number;
  messageRetentionPeriod: number;
  /** Receives before a message is moved to the queue's dead-letter queue. */
  maxReceiveCount: number;
}

export type QueueKey = 'tasks' | 'scans' | 'results';

export interface ResourceNames {
  catalogTable: string;
  manifestTable: string;
  queues: Record<QueueKey, { name: string; dlqName: string }>;
}

export const CATALOG_TABLE: TableDefinition = {
  logicalId: 'CatalogTable',
  partitionKey: { name: 'pk', type: 'S' },
  sortKey: { name: 'sk', type: 'S' },
  globalIndexes: [
    // Targets by placement: "PLACE#assigned#tape1" -> importedAt#id, so archive finds the
    // next assigned target of a tape with one Query.
    { name: 'byPlacement', partitionKey: { name: 'gsi1pk', type: 'S' }, sortKey: { name: 'gsi1sk', type: 'S' } },
  ],
  ttlAttribute: 'expiresAt',
};

export const MANIFEST_TABLE: TableDefinition = {
  logicalId: 'ManifestTable',
  // pk = target id, sk = scan id + page number: a manifest is a set of pages so that a
  // target of a million files never crosses the 400 KB item limit.
  partitionKey: { name: 'pk', type: 'S' },
  sortKey: { name: 'sk', type: 'S' },
  globalIndexes: [],
};

export const TABLES = { catalogTable: CATALOG_TABLE, manifestTable: MANIFEST_TABLE } as const;

const DAYS = 24 * 3600;
export const QUEUES: Record<QueueKey, QueueDefinition> = {
  // Tape tasks (write, verify): one at a time per drive; the agent heartbeats visibility.
  tasks: { logicalId: 'TaskQueue', visibilityTimeout: 300, messageRetentionPeriod: 14 * DAYS, maxReceiveCount: 5 },
  // Scans need no drive, so they have their own queue and run beside tape work.
  scans: { logicalId: 'ScanQueue', visibilityTimeout: 300, messageRetentionPeriod: 14 * DAYS, maxReceiveCount: 5 },
  // Agent reports, applied to the catalog by the results handler.
  results: { logicalId: 'ResultQueue', visibilityTimeout: 60, messageRetentionPeriod: 14 * DAYS, maxReceiveCount: 5 },
};

export function resourceNames(prefix: string): ResourceNames {
  const q = (k: string) => ({ name: `${prefix}-${k}`, dlqName: `${prefix}-${k}-dlq` });
  return {
    catalogTable: `${prefix}-catalog`,
    manifestTable: `${prefix}-manifests`,
    queues: { tasks: q('tasks'), scans: q('scans'), results: q('results') },
  };
}

function attributeDefinitions(t: TableDefinition): KeyAttribute[] {
  const all = [t.partitionKey, t.sortKey, ...t.globalIndexes.flatMap((g) => [g.partitionKey, g.sortKey])];
  return [...new Map(all.map((a) => [a.name, a])).values()];
}

/** Input for DynamoDB CreateTable (PAY_PER_REQUEST). */
export function createTableInput(t: TableDefinition, tableName: string) {
  return {
    TableName: tableName,
    BillingMode: 'PAY_PER_REQUEST' as const,
    AttributeDefinitions: attributeDefinitions(t).map((a) => ({ AttributeName: a.name, AttributeType: a.type })),
    KeySchema: [
      { AttributeName: t.partitionKey.name, KeyType: 'HASH' as const },
      { AttributeName: t.sortKey.name, KeyType: 'RANGE' as const },
    ],
    ...(t.globalIndexes.length
      ? {
          GlobalSecondaryIndexes: t.globalIndexes.map((g) => ({
            IndexName: g.name,
            KeySchema: [
              { AttributeName: g.partitionKey.name, KeyType: 'HASH' as const },
              { AttributeName: g.sortKey.name, KeyType: 'RANGE' as const },
            ],
            Projection: { ProjectionType: 'ALL' as const },
          })),
        }
      : {}),
  };
}

/** Attributes for SQS CreateQueue (all values are strings in the SQS API). */
export function createQueueAttributes(q: QueueDefinition, dlqArn?: string): Record<string, string> {
  return {
    VisibilityTimeout: String(q.visibilityTimeout),
    MessageRetentionPeriod: String(q.messageRetentionPeriod),
    ...(dlqArn ? { RedrivePolicy: JSON.stringify({ deadLetterTargetArn: dlqArn, maxReceiveCount: q.maxReceiveCount }) } : {}),
  };
}

/** CloudFormation `Resources` for every table and queue, named from `prefix`. */
export function cloudFormationResources(prefix: string): Record<string, unknown> {
  const names = resourceNames(prefix);
  const resources: Record<string, unknown> = {};
  for (const [key, t] of Object.entries(TABLES) as [keyof typeof TABLES, TableDefinition][]) {
    resources[t.logicalId] = {
      Type: 'AWS::DynamoDB::Table',
      // The catalog outlives the stack: `osls remove`, a rename or a replacing change leaves
      // the table (and its point-in-time backups) in place; docs/operations.md, "Backups".
      DeletionPolicy: 'Retain',
      UpdateReplacePolicy: 'Retain',
      Properties: {
        ...createTableInput(t, names[key]),
        PointInTimeRecoverySpecification: { PointInTimeRecoveryEnabled: true },
        ...(t.ttlAttribute ? { TimeToLiveSpecification: { AttributeName: t.ttlAttribute, Enabled: true } } : {}),
      },
    };
  }
  for (const [key, q] of Object.entries(QUEUES) as [QueueKey, QueueDefinition][]) {
    const dlqId = `${q.logicalId}Dlq`;
    resources[dlqId] = {
      Type: 'AWS::SQS::Queue',
      Properties: { QueueName: names.queues[key].dlqName, MessageRetentionPeriod: 14 * DAYS },
    };
    resources[q.logicalId] = {
      Type: 'AWS::SQS::Queue',
      Properties: {
        QueueName: names.queues[key].name,
        VisibilityTimeout: q.visibilityTimeout,
        MessageRetentionPeriod: q.messageRetentionPeriod,
        RedrivePolicy: { deadLetterTargetArn: { 'Fn::GetAtt': [dlqId, 'Arn'] }, maxReceiveCount: q.maxReceiveCount },
      },
    };
  }
  return resources;
}
