import { ManifestSummary } from '../../lib/domain/manifest.ts';
import { MAX_LISTED } from '../../lib/protocol/results.ts';
import type { ScanTask } from '../../lib/protocol/tasks.ts';
import type { SkippedEntry } from '../../lib/source/data-source.ts';
import type { AgentDeps, TaskOutcome } from '../types.ts';
import { errorMessage, isArchiveError } from '../../lib/errors.ts';

/**
 * Scans a target on its data host and stores the manifest in pages. The target is marked
 * scanned only by the results handler, after every page is stored; a scan that fails midway
 * reports a retryable failure and its pages are never referenced.
 */
export async function runScan(deps: AgentDeps, task: ScanTask, signal: AbortSignal): Promise<TaskOutcome> {
  const target = await deps.ctx.catalog.getTarget(task.target.id);
  if (!target || target.scanId !== task.scanId || target.scan !== 'pending') {
    return { kind: 'dropped', reason: `scan ${task.scanId} of ${task.target.id} is no longer pending` };
  }
  const base = { kind: 'scan-result' as const, taskId: task.taskId, targetId: task.target.id, scanId: task.scanId };
  try {
    const source = deps.sources.for(task.target.host);
    // Summarized as it streams into the pages: nothing grows with the target.
    const summary = new ManifestSummary();
    // Special files are not archived (the policy), and never silently: each one is reported.
    const skipped: SkippedEntry[] = [];
    let skippedCount = 0;
    const onSkipped = (s: SkippedEntry) => {
      skippedCount++;
      if (skipped.length < MAX_LISTED)
        skipped.push(s.rawPath !== undefined ? { path: s.path, rawPath: s.rawPath, reason: s.reason } : { path: s.path, reason: s.reason });
    };
    // Nested targets are left out with their subtrees: the task's excludes, and the target's
    // own for this scan (the same list, unless an older handler sent the task without them).
    const excludes = [...new Set([...(task.excludes ?? []), ...(target.excludes ?? [])])].sort();
    const collect = async function* () {
      for await (const e of source.scan(task.target.path, { signal, onSkipped, excludes })) {
        summary.add(e);
        yield e;
      }
    };
    const pages = await deps.ctx.manifests.write(task.target.id, task.scanId, collect(), { names: deps.ctx.names });
    const s = summary.result();
    deps.log('info', 'scan complete', {
      taskId: task.taskId,
      target: task.target.id,
      path: task.target.path,
      files: s.fileCount,
      bytes: s.totalBytes,
      pages,
      skipped: skippedCount,
      ...(excludes.length ? { excluded: excludes.length } : {}),
    });
    if (skippedCount)
      deps.log('warn', 'special files not archived', { target: task.target.id, count: skippedCount, first: skipped.slice(0, 5).map((x) => x.path) });
    const left = skippedCount ? { skipped, skippedCount } : {};
    return {
      kind: 'report',
      result: { ...base, ok: true, fileCount: s.fileCount, totalBytes: s.totalBytes, manifestPages: pages, manifestDigest: s.digest, ...left },
    };
  } catch (e) {
    if (signal.aborted) throw e;
    // A refused host key, a refused user key or bad configuration needs an operator, not a
    // retry (ArchiveError.retryable); a system error (EIO, ECONNRESET...) may pass.
    const retryable = isArchiveError(e) ? e.retryable : true;
    deps.log('warn', 'scan failed', { taskId: task.taskId, target: task.target.id, error: String(e), retryable });
    return { kind: 'report', result: { ...base, ok: false, error: errorMessage(e), retryable } };
  }
}
