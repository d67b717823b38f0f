/**
 * The tape agent: long-polls the task queues, runs one tape task at a time per drive (and a
 * few scans beside them), reports each outcome on the results queue and deletes the message
 * only after the report is sent. Visibility is extended while a task runs (hours on real
 * tape). Shutdown in two stages: the first stop() finishes the current tasks without taking
 * new ones; stop({ force: true }) aborts them (a partial tape file is overwritten on retry).
 */
import type { Message } from '@aws-sdk/client-sqs';
import { moveToDeadLetter } from '../lib/protocol/dead-letter.ts';
import { Consumer } from 'sqs-consumer';
import { parseMessage, taskSchema, type Task } from '../lib/protocol/tasks.ts';
import type { QueueKey } from '../lib/resources/definitions.ts';
import type { TapeDrive } from '../lib/tape/drive.ts';
import { runDiscover } from './tasks/discover.ts';
import { runScan } from './tasks/scan.ts';
import { runCheckTape } from './tasks/check-tape.ts';
import { runVerify } from './tasks/verify.ts';
import { runWrite } from './tasks/write.ts';
import { runRestore } from './tasks/restore.ts';
import { runRebuild } from './tasks/rebuild.ts';
import { runReadSnapshot, runSnapshot } from './tasks/snapshot.ts';
import type { AgentDeps, TaskOutcome, TaskReport } from './types.ts';

const SEEN_MAX = 10_000;

export interface AgentOptions {
  drives: TapeDrive[];
  scanConcurrency: number;
  /** Seconds a received task stays invisible between heartbeats. */
  visibilityTimeout: number;
  heartbeatInterval: number;
  waitTimeSeconds: number;
  /** How long a graceful stop waits for running tasks. */
  drainTimeoutSeconds: number;
}

export class TapeAgent {
  private consumers: Consumer[] = [];
  private readonly abort = new AbortController();
  private active = 0;

  constructor(
    private readonly deps: AgentDeps,
    private readonly opts: AgentOptions,
  ) {}

  get runningTasks(): number {
    return this.active;
  }

  async start(): Promise<void> {
    const { ctx } = this.deps;
    const tasksUrl = await ctx.queues.url('tasks');
    const scansUrl = await ctx.queues.url('scans');
    for (const drive of this.opts.drives) {
      this.consumers.push(this.consumer('tasks', tasksUrl, 1, (task, signal) => this.runTapeTask(drive, task, signal)));
    }
    for (let i = 0; i < this.opts.scanConcurrency; i++) {
      this.consumers.push(this.consumer('scans', scansUrl, 1, (task, signal) => this.runHostTask(task, signal)));
    }
    for (const c of this.consumers) c.start();
    this.deps.log('info', 'agent started', {
      drives: this.opts.drives.map((d) => d.id),
      scanConcurrency: this.opts.scanConcurrency,
      queues: { tasks: tasksUrl, scans: scansUrl },
    });
  }

  private runTapeTask(drive: TapeDrive, task: Task, signal: AbortSignal): Promise<TaskOutcome> {
    const deps = { ...this.deps, drive };
    switch (task.kind) {
      case 'write':
        return runWrite(deps, task, signal);
      case 'verify':
        return runVerify(deps, task, signal);
      case 'check-tape':
        return runCheckTape(deps, task, signal);
      case 'restore':
        return runRestore(deps, task, signal);
      case 'rebuild':
        return runRebuild(deps, task, signal);
      case 'snapshot':
        return runSnapshot(deps, task, signal);
      case 'read-snapshot':
        return runReadSnapshot(deps, task, signal);
      default:
        return this.runHostTask(task, signal);
    }
  }

  /** Tasks that read the data host and need no drive. */
  private async runHostTask(task: Task, signal: AbortSignal): Promise<TaskOutcome> {
    switch (task.kind) {
      case 'scan':
        return runScan(this.deps, task, signal);
      case 'discover':
        await runDiscover(this.deps, task, signal);
        return { kind: 'dropped', reason: 'reported' };
      default:
        return { kind: 'dropped', reason: `a ${task.kind} task on the scans queue needs a drive; it was sent to the wrong queue` };
    }
  }

  private consumer(queue: QueueKey, queueUrl: string, batchSize: number, run: (task: Task, signal: AbortSignal) => Promise<TaskOutcome>): Consumer {
    const c = Consumer.create({
      queueUrl,
      sqs: this.deps.ctx.queues.sqs,
      batchSize,
      waitTimeSeconds: this.opts.waitTimeSeconds,
      visibilityTimeout: this.opts.visibilityTimeout,
      heartbeatInterval: this.opts.heartbeatInterval,
      pollingCompleteWaitTimeMs: this.opts.drainTimeoutSeconds * 1000,
      messageSystemAttributeNames: ['ApproximateReceiveCount'],
      handleMessage: async (message) => this.handle(queue, message, run),
    });
    c.on('error', (err) => this.deps.log('error', 'queue error', { queue, error: String(err) }));
    c.on('processing_error', (err) => this.deps.log('error', 'task failed; it will be redelivered', { queue, error: String(err) }));
    return c;
  }

  private async handle(queue: QueueKey, message: Message, run: (task: Task, signal: AbortSignal) => Promise<TaskOutcome>): Promise<Message | undefined> {
    const parsed = parseMessage(taskSchema, message.Body);
    if (!parsed.ok) {
      await this.deadLetter(queue, message, parsed.error);
      return undefined; // already deleted by deadLetter
    }
    const task = parsed.value;
    // A second copy of a task this agent is running or has reported (reconcile of a task it
    // was still on, a redelivery): never run twice. A copy of a reported task gets that report
    // again (applying it is idempotent: a lost report is recovered this way).
    const copy = this.seen.get(task.taskId);
    if (copy?.state === 'running') {
      if (copy.messageId === message.MessageId) {
        // The very message came back (its visibility lapsed): left to the attempt that holds it.
        this.deps.log('warn', 'the message of a running task came back; left on the queue', { taskId: task.taskId });
        return undefined;
      }
      this.deps.log('info', 'task dropped', { taskId: task.taskId, reason: 'a copy of a task this agent is running' });
      return message;
    }
    if (copy?.state === 'reported') {
      await this.deps.reporter.report(copy.result);
      this.deps.log('info', 'task dropped', { taskId: task.taskId, reason: 'a copy of a task this agent has reported: its report was sent again' });
      return message;
    }
    this.seen.set(task.taskId, { state: 'running', ...(message.MessageId ? { messageId: message.MessageId } : {}) });
    this.active++;
    const started = Date.now();
    this.deps.log('info', 'task received', { queue, kind: task.kind, taskId: task.taskId, receiveCount: message.Attributes?.ApproximateReceiveCount });
    // Tasks the catalog follows (write, verify, check-tape) get a heartbeat while they run.
    const beat = task.kind === 'scan' || task.kind === 'discover' ? undefined : this.heartbeat(task.taskId);
    try {
      const outcome = await run(task, this.abort.signal);
      if (outcome.kind === 'report') {
        await this.deps.reporter.report(outcome.result);
        this.remember(task.taskId, outcome.result);
      } else {
        // Dropped: the catalog does not want it; a copy is checked (and dropped) the same way.
        this.seen.delete(task.taskId);
        this.deps.log('info', 'task dropped', { taskId: task.taskId, reason: outcome.reason });
      }
      this.deps.log('info', 'task done', { taskId: task.taskId, kind: task.kind, seconds: (Date.now() - started) / 1000 });
      return message; // deleted only now, after the report is on the results queue
    } catch (e) {
      this.seen.delete(task.taskId); // not done: the redelivered message runs it again
      throw e;
    } finally {
      if (beat) clearInterval(beat);
      this.active--;
    }
  }

  /**
   * Tasks running here (never forgotten while they run), and the reports of the last SEEN_MAX
   * reported ones (a copy arrives within minutes of its task, not days).
   */
  private readonly seen = new Map<string, { state: 'running'; messageId?: string } | { state: 'reported'; result: TaskReport }>();
  private remember(taskId: string, result: TaskReport): void {
    this.seen.delete(taskId);
    this.seen.set(taskId, { state: 'reported', result });
    if (this.seen.size <= SEEN_MAX) return;
    for (const [id, entry] of this.seen) {
      if (entry.state !== 'reported') continue;
      this.seen.delete(id); // the oldest reported one
      break;
    }
  }

  /** Sends a heartbeat now and every heartbeatInterval seconds until cleared. */
  private heartbeat(taskId: string): NodeJS.Timeout {
    const send = () =>
      void this.deps.reporter
        .report({ kind: 'heartbeat', taskId })
        .catch((e: unknown) => this.deps.log('warn', 'heartbeat not sent', { taskId, error: String(e) }));
    send();
    const timer = setInterval(send, this.opts.heartbeatInterval * 1000);
    timer.unref();
    return timer;
  }

  private async deadLetter(queue: QueueKey, message: Message, error: string): Promise<void> {
    await moveToDeadLetter(this.deps.ctx.queues, queue, message, error);
    this.deps.log('error', 'poison message moved to the dead-letter queue', { queue, error, messageId: message.MessageId });
  }

  /** First call: stop polling and let running tasks finish. With force: abort them now. */
  async stop(opts: { force?: boolean } = {}): Promise<void> {
    if (opts.force) this.abort.abort();
    await Promise.all(
      this.consumers.map(
        (c) =>
          new Promise<void>((resolve) => {
            if (!c.status.isRunning) return resolve();
            c.once('stopped', () => resolve());
            c.stop(opts.force ? { abort: true } : undefined);
          }),
      ),
    );
    this.deps.log('info', 'agent stopped', { forced: !!opts.force });
  }
}
