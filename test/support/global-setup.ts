/**
 * Starts one DynamoDB Local (in memory) and one local SQS for the whole run. Test files
 * share the processes but never the data: each uses its own resource prefix (tables and
 * queues). A missing Java or a failed start fails the run: nothing is skipped.
 */
import type { TestProject } from 'vitest/node';
import { startDynamoDbLocal } from '../../src/local/dynamodb-local.ts';
import { startLocalSqs } from '../../src/local/local-sqs.ts';

declare module 'vitest' {
  export interface ProvidedContext {
    endpoints: { dynamodb: string; sqs: string };
  }
}

export default async function setup(project: TestProject) {
  const [dynamo, sqs] = await Promise.all([startDynamoDbLocal(), startLocalSqs()]);
  project.provide('endpoints', { dynamodb: dynamo.endpoint, sqs: sqs.endpoint });
  return async () => {
    await Promise.allSettled([dynamo.stop(), sqs.stop()]);
  };
}
