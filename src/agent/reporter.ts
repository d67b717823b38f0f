import type { QueueDirectory } from '../lib/protocol/task-queue.ts';
import { report, type ReportBody } from '../lib/protocol/build-tasks.ts';
import type { ProgressReport, Result } from '../lib/protocol/results.ts';

type Body<T extends Result> = ReportBody<T>;

/** Sends reports on the results queue; progress is throttled so a fast task sends few. */
export class Reporter {
  constructor(
    private readonly queues: QueueDirectory,
    private readonly progressIntervalMs = 1000,
  ) {}

  async report(r: Body<Result>): Promise<void> {
    await this.queues.sendJson('results', report(r, new Date().toISOString()));
  }

  /** A progress callback for one task: at most one report per interval, never awaited by the data path. */
  progress(taskId: string, bytesTotal: number, phase: string): { update(bytesDone: number): void; flush(): Promise<void> } {
    let last = 0;
    let inFlight: Promise<void> = Promise.resolve();
    let latest = 0;
    const send = (bytesDone: number) => {
      const body: Body<ProgressReport> = { kind: 'progress', taskId, bytesDone, bytesTotal, phase };
      inFlight = inFlight.then(() => this.report(body)).catch(() => undefined);
    };
    return {
      update: (bytesDone) => {
        latest = bytesDone;
        const now = Date.now();
        if (now - last >= this.progressIntervalMs) {
          last = now;
          send(bytesDone);
        }
      },
      flush: async () => {
        send(latest);
        await inFlight;
      },
    };
  }
}
