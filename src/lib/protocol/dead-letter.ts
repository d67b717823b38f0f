import { DeleteMessageCommand, GetQueueUrlCommand, SendMessageCommand, type Message } from '@aws-sdk/client-sqs';
import type { QueueDirectory } from './task-queue.ts';
import type { QueueKey } from '../resources/definitions.ts';

/**
 * Moves a message that can never be processed (bad JSON, unknown kind or version) to its
 * queue's dead-letter queue at once, with the reason as an attribute, instead of letting it
 * be received again until maxReceiveCount.
 */
export async function moveToDeadLetter(queues: QueueDirectory, queue: QueueKey, message: Message, reason: string): Promise<void> {
  const dlq = await queues.sqs.send(new GetQueueUrlCommand({ QueueName: queues.config.names.queues[queue].dlqName }));
  await queues.sqs.send(
    new SendMessageCommand({
      QueueUrl: dlq.QueueUrl,
      MessageBody: message.Body || '(empty)',
      MessageAttributes: {
        error: { DataType: 'String', StringValue: reason.slice(0, 1000) || 'unknown' },
        sourceQueue: { DataType: 'String', StringValue: queue },
      },
    }),
  );
  await queues.sqs.send(new DeleteMessageCommand({ QueueUrl: await queues.url(queue), ReceiptHandle: message.ReceiptHandle }));
}
