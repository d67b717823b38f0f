/**
 * The results handler: SQS-triggered, applies each agent report to the catalog
 * (results/consume-result.ts, shared with the local pump). A poison record is dead-lettered
 * at once and counts as handled; a record whose application failed is returned as a partial
 * batch failure, so only it is retried (and reaches the DLQ after maxReceiveCount).
 * https://docs.aws.amazon.com/lambda/latest/dg/services-sqs-errorhandling.html
 */
import middy from '@middy/core';
import { consumeResult } from '../lib/results/consume-result.ts';
import { handlerLog, jobContext } from './runtime.ts';

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
    try {
      const c = await consumeResult(ctx, record.body);
      if (c.kind === 'dead-lettered') handlerLog('error', 'poison result moved to the dead-letter queue', { messageId: record.messageId, error: c.reason });
      else handlerLog('info', c.note, { taskId: c.report.taskId, applied: c.kind === 'applied' });
    } catch (e) {
      handlerLog('error', 'applying result failed', { messageId: record.messageId, error: String(e) });
      batchItemFailures.push({ itemIdentifier: record.messageId });
    }
  }
  return { batchItemFailures };
});
