/** Scheduled handlers (EventBridge rules): work that the catalog says is pending but stalled. */
import middy from '@middy/core';
import { discover } from '../lib/jobs/discover.ts';
import { reconcile as reconcileJob } from '../lib/jobs/reconcile.ts';
import { scrub as scrubJob } from '../lib/jobs/scrub.ts';
import { handlerLog, jobContext } from './runtime.ts';

export const reconcile = middy(async () => {
  const result = await reconcileJob(jobContext('reconcile'), { olderThanSeconds: 900 });
  handlerLog('info', 'reconcile', { scans: result.scansResent.length, writes: result.writesResent.length, verifies: result.verifiesResent.length });
  return result;
});

/** The scheduled import: discover tasks for the configured roots (TAPE_ARCHIVE_IMPORT_ROOTS). */
export const scheduledImport = middy(async (event: { roots?: string[]; pattern?: string } = {}) => {
  const ctx = jobContext('scheduledImport');
  if (!event.roots && !ctx.config.importRoots.length) {
    handlerLog('info', 'scheduled import: no roots configured; nothing to do');
    return { requested: [] };
  }
  const result = await discover(ctx, { ...(event.roots ? { roots: event.roots } : {}), ...(event.pattern ? { pattern: event.pattern } : {}) });
  handlerLog('info', 'scheduled import requested', { roots: result.requested.length });
  return result;
});

/** The daily scrub: re-reads the oldest-verified confirmed copies within the configured budget (TAPE_ARCHIVE_SCRUB_*). */
export const scrub = middy(async () => {
  const result = await scrubJob(jobContext('scheduledScrub'), {});
  handlerLog('info', 'scheduled scrub', { files: result.requested.length, bytes: result.bytes, left: result.left });
  return result;
});
