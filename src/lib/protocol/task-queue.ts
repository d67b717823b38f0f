import { GetQueueUrlCommand, SendMessageCommand, type SQSClient } from '@aws-sdk/client-sqs';
import type { Config } from '../config.ts';
import type { QueueKey } from '../resources/definitions.ts';
import { QUEUE_OF_TASK, type Task } from './tasks.ts';

/** Resolves queue URLs by name once (or takes them from configuration) and sends tasks. */
export class QueueDirectory {
  constructor(
    readonly sqs: SQSClient,
    readonly config: Pick<Config, 'names' | 'queueUrls'>,
    private readonly urls = new Map<QueueKey, Promise<string>>(),
  ) {}

  /** The same directory (and its resolved URLs) sending through another client. */
  withClient(sqs: SQSClient): QueueDirectory {
    return new QueueDirectory(sqs, this.config, this.urls);
  }

  url(key: QueueKey): Promise<string> {
    let p = this.urls.get(key);
    if (!p) {
      const known = this.config.queueUrls[key];
      p = known
        ? Promise.resolve(known)
        : this.sqs.send(new GetQueueUrlCommand({ QueueName: this.config.names.queues[key].name })).then((o) => {
            if (!o.QueueUrl) throw new Error(`queue ${this.config.names.queues[key].name} has no URL`);
            return o.QueueUrl;
          });
      p.catch(() => this.urls.delete(key));
      this.urls.set(key, p);
    }
    return p;
  }

  async sendTask(task: Task): Promise<void> {
    const queueUrl = await this.url(QUEUE_OF_TASK[task.kind]);
    await this.sqs.send(
      new SendMessageCommand({
        QueueUrl: queueUrl,
        MessageBody: JSON.stringify(task),
        MessageAttributes: { kind: { DataType: 'String', StringValue: task.kind } },
      }),
    );
  }

  async sendJson(key: QueueKey, body: unknown): Promise<void> {
    await this.sqs.send(new SendMessageCommand({ QueueUrl: await this.url(key), MessageBody: JSON.stringify(body) }));
  }
}
