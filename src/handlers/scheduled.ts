/** Scheduled handlers (EventBridge rules): work that the catalog says is pending but stalled. */
import middy from '@middy/core';
import { reconcile as reconcileJob } from '../lib/jobs/reconcile.ts';
import { jobContext } from './runtime.ts';

export const reconcile = middy(async () => {
  const result = await reconcileJob(jobContext(), { olderThanSeconds: 900 });
  console.log(JSON.stringify({ level: 'info', msg: 'reconcile', scans: result.scansResent.length, writes: result.writesResent.length, verifies: result.verifiesResent.length }));
  return result;
});
