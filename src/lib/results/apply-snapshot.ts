/**
 * Applying a catalog snapshot's reports: one written to a closed tape (the tape's next file is
 * after it, and it is listed on the tape) or not, and one read from a tape for restore_catalog
 * (only its task status changes). Conditional on the task: a report applied twice changes nothing.
 */
import type { JobContext } from '../jobs/context.ts';
import type { ReadSnapshotResult, SnapshotResult } from '../protocol/results.ts';
import type { ApplyOutcome } from './apply-result.ts';

export async function applySnapshot(ctx: JobContext, r: SnapshotResult): Promise<ApplyOutcome> {
  const now = ctx.now().toISOString();
  const written =
    r.outcome === 'written' && r.bytes !== undefined && r.sha256 && r.items
      ? { fileNumber: r.fileNumber, taskId: r.taskId, at: now, bytes: r.bytes, sha256: r.sha256, items: r.items }
      : undefined;
  const applied = await ctx.catalog.finishSnapshot(r.tapeName, r.taskId, written, now);
  const message = written
    ? `catalog snapshot written as file ${r.fileNumber} of ${r.tapeName}: ${written.items.catalog} catalog item(s), ${written.items.manifests} manifest item(s), ${written.bytes} bytes, sha256 ${written.sha256}`
    : `no catalog snapshot was written to ${r.tapeName}: ${r.error ?? 'unknown error'}. Its catalogued files are untouched and the catalog still ends it at file ${r.fileNumber - 1}; a partial file the attempt may have left is never written over, so later snapshots on this tape are refused ("tape-agent inspect" shows it). The next tape closed carries the catalog; "snapshot_catalog --to FILE" keeps one now.`;
  if (!applied) {
    // Applied before, perhaps by a consumer that died before finishing the task: finish it now.
    const status = await ctx.tasks.get(r.taskId);
    if (status && (status.state === 'queued' || status.state === 'running') && (await ctx.catalog.getTape(r.tapeName))?.snapshotInFlight?.taskId !== r.taskId)
      await ctx.tasks.finish(r.taskId, written ? 'succeeded' : 'failed', r.outcome, message, now);
    return { applied: false, note: `snapshot ${r.taskId} on ${r.tapeName} is not in flight (already applied); ignored` };
  }
  await ctx.tasks.finish(r.taskId, written ? 'succeeded' : 'failed', r.outcome, message, now);
  return { applied: true, note: message };
}

export async function applyReadSnapshot(ctx: JobContext, r: ReadSnapshotResult): Promise<ApplyOutcome> {
  const task = await ctx.tasks.get(r.taskId);
  if (!task || task.state === 'succeeded' || task.state === 'failed') return { applied: false, note: `read-snapshot ${r.taskId} is not open; ignored` };
  const message = r.ok
    ? `the catalog snapshot of ${r.writtenAt ?? '?'} (file ${r.fileNumber} of ${r.tapeName}) is in ${r.file} on the agent's host: ${r.items?.catalog ?? 0} catalog item(s), ${r.items?.manifests ?? 0} manifest item(s), sha256 ${r.sha256}`
    : `no catalog snapshot read from ${r.tapeName}: ${r.error ?? 'unknown error'}`;
  await ctx.tasks.finish(r.taskId, r.ok ? 'succeeded' : 'failed', r.ok ? 'read' : 'failed', message, ctx.now().toISOString());
  return { applied: true, note: message };
}
