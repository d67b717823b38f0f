/**
 * On one machine, the results queue is drained by this pump instead of an SQS-triggered
 * Lambda; both use the same core (consume-result.ts): the same poison policy, the same apply,
 * and the same order: a batch is applied one report after the other, as received. A report
 * whose application failed is left on the queue and retried after its visibility timeout.
 */
import type { Message } from '@aws-sdk/client-sqs';
import { Consumer } from 'sqs-consumer';
import { restrict, type JobContext } from '../jobs/context.ts';
import { RESULTS_ACCESS } from '../resources/access.ts';
import { consumeResult } from './consume-result.ts';
import type { Logger } from '../log.ts';

export interface ResultsPump {
  stop(): Promise<void>;
}

export async function startResultsPump(
  full: JobContext,
  opts: { waitTimeSeconds?: number /** The structured logger (src/lib/log.ts); silent by default. */; log?: Logger } = {},
): Promise<ResultsPump> {
  const log = opts.log ?? (() => undefined);
  // The same declaration as the results Lambda.
  const ctx = restrict(full, RESULTS_ACCESS, 'the results pump');
  const consumer = Consumer.create({
    queueUrl: await ctx.queues.url('results'),
    sqs: ctx.queues.sqs,
    batchSize: 10,
    waitTimeSeconds: opts.waitTimeSeconds ?? 20,
    pollingCompleteWaitTimeMs: 30_000,
    handleMessageBatch: async (messages: Message[]) => {
      const handled: Message[] = [];
      for (const message of messages) {
        try {
          const c = await consumeResult(ctx, message.Body);
          if (c.kind === 'dead-lettered') log('error', 'poison result moved to the dead-letter queue', { error: c.reason });
          else if (c.report.kind !== 'progress') log('info', c.note, { taskId: c.report.taskId, kind: c.report.kind, applied: c.kind === 'applied' });
          handled.push(message); // applied, ignored or dead-lettered: deleted from the queue
        } catch (e) {
          log('warn', 'applying a result failed; it will be retried', { error: String(e) });
        }
      }
      return handled;
    },
  });
  consumer.on('error', (e) => log('error', 'results queue error', { error: String(e) }));
  consumer.start();
  return {
    stop: () =>
      new Promise<void>((resolve) => {
        consumer.once('stopped', () => resolve());
        consumer.stop({ abort: true });
      }),
  };
}
