/**
 * On one machine, the results queue is drained by this pump instead of an SQS-triggered
 * Lambda; both call the same applyResult.
 */
import type { Message } from '@aws-sdk/client-sqs';
import { Consumer } from 'sqs-consumer';
import { restrict, type JobContext } from '../jobs/context.ts';
import { RESULTS_ACCESS } from '../resources/access.ts';
import { moveToDeadLetter } from '../protocol/dead-letter.ts';
import { resultSchema } from '../protocol/results.ts';
import { parseMessage } from '../protocol/tasks.ts';
import { applyResult } from './apply-result.ts';

export interface ResultsPump {
  stop(): Promise<void>;
}

export async function startResultsPump(
  full: JobContext,
  opts: { waitTimeSeconds?: number; log?: (msg: string, fields?: Record<string, unknown>) => void } = {},
): Promise<ResultsPump> {
  const log = opts.log ?? (() => undefined);
  // The same declaration as the results Lambda (plus moving poison to the dead-letter queue).
  const ctx = restrict(full, { ...RESULTS_ACCESS, deadLetter: ['results'] }, 'the results pump');
  const consumer = Consumer.create({
    queueUrl: await ctx.queues.url('results'),
    sqs: ctx.queues.sqs,
    batchSize: 10,
    waitTimeSeconds: opts.waitTimeSeconds ?? 20,
    pollingCompleteWaitTimeMs: 30_000,
    handleMessage: async (message: Message) => {
      const parsed = parseMessage(resultSchema, message.Body);
      if (!parsed.ok) {
        await moveToDeadLetter(ctx.queues, 'results', message, parsed.error);
        log('poison result moved to the dead-letter queue', { error: parsed.error });
        return undefined;
      }
      const outcome = await applyResult(ctx, parsed.value);
      if (parsed.value.kind !== 'progress') log(outcome.note, { taskId: parsed.value.taskId, kind: parsed.value.kind, applied: outcome.applied });
      return message;
    },
  });
  consumer.on('error', (e) => log('results queue error', { error: String(e) }));
  consumer.on('processing_error', (e) => log('applying a result failed; it will be retried', { error: String(e) }));
  consumer.start();
  return {
    stop: () =>
      new Promise<void>((resolve) => {
        consumer.once('stopped', () => resolve());
        consumer.stop({ abort: true });
      }),
  };
}
