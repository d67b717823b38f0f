/**
 * The results handler: SQS-triggered, applies each agent report to the catalog and returns
 * partial batch failures so only the failed records are retried (and reach the DLQ after
 * maxReceiveCount).
 * https://docs.aws.amazon.com/lambda/latest/dg/services-sqs-errorhandling.html
 */
import middy from '@middy/core';
import { resultSchema } from '../lib/protocol/results.ts';
import { parseMessage } from '../lib/protocol/tasks.ts';
import { applyResult } from '../lib/results/apply-result.ts';
import { jobContext } from './runtime.ts';

export interface SqsRecord {
  messageId: string;
  body: string;
}

export interface SqsBatchResponse {
  batchItemFailures: { itemIdentifier: string }[];
}

export const handler = middy<{ Records: SqsRecord[] }, SqsBatchResponse>(async (event: { Records: SqsRecord[] }) => {
  const ctx = jobContext('results');
  const batchItemFailures: { itemIdentifier: string }[] = [];
  for (const record of event.Records) {
    const parsed = parseMessage(resultSchema, record.body);
    if (!parsed.ok) {
      console.error(JSON.stringify({ level: 'error', msg: 'invalid result message', messageId: record.messageId, error: parsed.error }));
      batchItemFailures.push({ itemIdentifier: record.messageId });
      continue;
    }
    try {
      const outcome = await applyResult(ctx, parsed.value);
      console.log(JSON.stringify({ level: 'info', msg: outcome.note, taskId: parsed.value.taskId, applied: outcome.applied }));
    } catch (e) {
      console.error(JSON.stringify({ level: 'error', msg: 'applying result failed', messageId: record.messageId, error: String(e) }));
      batchItemFailures.push({ itemIdentifier: record.messageId });
    }
  }
  return { batchItemFailures };
});
