/**
 * What AWS does beside the handlers, done on one machine: the results pump (the SQS-triggered
 * results Lambda), the periodic reconcile and the daily scrub (their schedules), with a first
 * reconcile of everything pending at start (the local queues keep nothing across a restart).
 */
import type { JobContext } from '../lib/jobs/context.ts';
import { reconcile } from '../lib/jobs/reconcile.ts';
import { scrub } from '../lib/jobs/scrub.ts';
import { errorMessage } from '../lib/errors.ts';
import type { Logger } from '../lib/log.ts';
import { startResultsPump } from '../lib/results/results-pump.ts';

export interface BackgroundWork {
  /** Re-sends everything the catalog says is pending (call once the agent is up). */
  catchUp(): Promise<void>;
  stop(): Promise<void>;
}

export async function startBackgroundWork(
  ctx: JobContext,
  opts: { resultsPump?: boolean; reconcileEverySeconds?: number; scrubEverySeconds?: number; log?: Logger } = {},
): Promise<BackgroundWork> {
  const log = opts.log ?? (() => undefined);
  const pump = opts.resultsPump === false ? { stop: async () => undefined } : await startResultsPump(ctx, { waitTimeSeconds: 1 });
  // Queued work untouched for 10 minutes, and running tasks without a heartbeat, are sent again.
  const timer = setInterval(() => void reconcile(ctx, { olderThanSeconds: 600 }).catch(() => undefined), (opts.reconcileEverySeconds ?? 60) * 1000);
  timer.unref();
  // The scrub schedule (daily on AWS): the configured budget of drive-hours, oldest verification first.
  const scrubTimer = setInterval(
    () =>
      void scrub(ctx, {}).then(
        (r) => log('info', 'scheduled scrub', { files: r.requested.length, bytes: r.bytes, left: r.left }),
        (e: unknown) => log('error', 'scheduled scrub failed', { error: errorMessage(e) }),
      ),
    (opts.scrubEverySeconds ?? 86_400) * 1000,
  );
  scrubTimer.unref();
  return {
    catchUp: async () => {
      await reconcile(ctx, { olderThanSeconds: 0 }).catch(() => undefined);
    },
    stop: async () => {
      clearInterval(timer);
      clearInterval(scrubTimer);
      await pump.stop();
    },
  };
}
