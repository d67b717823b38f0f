import { DeleteMessageCommand, GetQueueUrlCommand, SendMessageCommand, type Message } from '@aws-sdk/client-sqs';
import type { QueueKey } from '../resources/definitions.ts';
import type { QueueDirectory } from './task-queue.ts';

/**
 * The one poison-message policy, for every consumer (the agent's task queues, the results
 * Lambda and the local results pump): a message that can never be processed (not JSON, too
 * large, unknown kind or version, a schema violation) goes to its queue's dead-letter queue
 * at once, with the reason as an attribute, instead of being received again until
 * maxReceiveCount. A message that failed for a passing reason (the catalog was unreachable)
 * is retried by SQS and reaches the dead-letter queue only after maxReceiveCount.
 */
export async function sendToDeadLetter(queues: QueueDirectory, queue: QueueKey, body: string | undefined, reason: string): Promise<void> {
  const dlq = await queues.sqs.send(new GetQueueUrlCommand({ QueueName: queues.config.names.queues[queue].dlqName }));
  await queues.sqs.send(
    new SendMessageCommand({
      QueueUrl: dlq.QueueUrl,
      MessageBody: body || '(empty)',
      MessageAttributes: {
        error: { DataType: 'String', StringValue: reason.slice(0, 1000) || 'unknown' },
        sourceQueue: { DataType: 'String', StringValue: queue },
      },
    }),
  );
}

/** sendToDeadLetter, then deletes the message from its queue (consumers that receive themselves). */
export async function moveToDeadLetter(queues: QueueDirectory, queue: QueueKey, message: Message, reason: string): Promise<void> {
  await sendToDeadLetter(queues, queue, message.Body, reason);
  await queues.sqs.send(new DeleteMessageCommand({ QueueUrl: await queues.url(queue), ReceiptHandle: message.ReceiptHandle }));
}
