/**
 * The restore path: mount the tape, then for each listed file in file-number order (one pass
 * over the tape) restore the selected members of its target under the item's directory,
 * every file verified against the catalog's manifest (lib/restore/extract.ts). A tape I/O
 * error ends the task with what was done and which copy to read instead; what was restored
 * stays (verified), so the same restore run again skips it and finishes.
 */
import type { RestoreTask } from '../../lib/protocol/tasks.ts';
import { MAX_LISTED, type RestoreResult } from '../../lib/protocol/results.ts';
import { addCounts, noCounts } from '../../lib/domain/restore.ts';
import { extractTargetFile, linkGroupsToRedirect, type RestoreFailure } from '../../lib/restore/extract.ts';
import type { RestoreDestination } from '../../lib/restore/destination.ts';
import { LocalDestination } from '../../lib/restore/local-destination.ts';
import { TapeBusyError } from '../../lib/tape/drive.ts';
import { errorMessage } from '../../lib/errors.ts';
import type { DriveDeps, TaskOutcome } from '../types.ts';
import { mountForReading } from './tape-checks.ts';

/** How often a running restore looks for a cancel request. */
const CANCEL_POLL_MS = 1000;

class Cancelled extends Error {}

export async function runRestore(deps: DriveDeps, task: RestoreTask, signal: AbortSignal): Promise<TaskOutcome> {
  const { drive, ctx, log } = deps;
  const status = await ctx.tasks.get(task.taskId);
  if (status && (status.state === 'succeeded' || status.state === 'failed')) {
    return { kind: 'dropped', reason: `restore ${task.taskId} already reported` };
  }
  let counts = noCounts();
  const failures: (RestoreFailure & { targetId?: string })[] = [];
  let targetsDone = 0;
  let error: string | undefined;
  let cancelled = status?.cancelRequested === true;
  const progress = deps.reporter.progress(task.taskId, status?.bytesTotal ?? 0, 'restoring');
  const stop = new AbortController();
  const both = AbortSignal.any([signal, stop.signal]);
  const poll = setInterval(() => {
    void ctx.tasks
      .get(task.taskId)
      .then((s) => {
        if (s?.cancelRequested) stop.abort(new Cancelled('cancelled'));
      })
      .catch(() => undefined);
  }, CANCEL_POLL_MS);
  let bytesBefore = 0;
  let current: { fileNumber: number; targetId: string } | undefined;
  try {
    const reading = cancelled ? undefined : await mountForReading(drive, ctx, task.tapeName);
    if (!cancelled && !reading) throw new Error(`tape ${task.tapeName} in drive ${drive.id} is blank`);
    const selection = task.paths.map((p) => Buffer.from(p));
    for (const item of task.items) {
      if (!reading) break; // cancelled before it began
      current = item;
      const dest: RestoreDestination = destinationFor(deps, task, item.dir);
      let extracted = false;
      try {
        const manifest = () => ctx.manifests.read(item.targetId, item.scanId, item.manifestPages);
        const redirectedGroups = await linkGroupsToRedirect(manifest(), selection);
        await drive.seekFile(item.fileNumber);
        const target = await ctx.catalog.getTarget(item.targetId);
        if (!target) throw new Error(`target ${item.targetId} is not in the catalog`);
        const done = await extractTargetFile({
          targetId: item.targetId,
          ...reading.extract(target.path, both),
          manifest: manifest(),
          selection,
          redirectedGroups,
          dest,
          overwrite: task.overwrite,
          // A data host's tar sets owners only when it runs as root; here, only as root.
          owners: task.host !== undefined || process.getuid?.() === 0,
          onFailure: (f) => {
            log('warn', 'restore: not restored', { taskId: task.taskId, targetId: item.targetId, ...f });
            if (failures.length < MAX_LISTED) failures.push({ ...f, targetId: item.targetId });
          },
          onProgress: (n) => progress.update(bytesBefore + n),
          signal: both,
        });
        counts = addCounts(counts, done);
        extracted = true;
      } finally {
        // On a data host the files are there only once its tar has finished.
        await dest.close().catch((e: unknown) => {
          if (extracted) throw e;
        });
      }
      targetsDone++;
      const file = await ctx.catalog.getTapeFile(task.tapeName, item.fileNumber);
      bytesBefore += file?.bytes ?? 0;
    }
  } catch (e) {
    if (stop.signal.aborted && !signal.aborted) cancelled = true;
    else if (signal.aborted || e instanceof TapeBusyError) throw e;
    else {
      const at = current ? ` at file ${current.fileNumber} (${current.targetId})` : '';
      error = `the restore from ${task.tapeName}${at} stopped: ${errorMessage(e)}`;
      log('warn', 'restore could not read on', { taskId: task.taskId, tape: task.tapeName, error });
    }
  } finally {
    clearInterval(poll);
  }
  await progress.flush();
  const outcome: RestoreResult['outcome'] = cancelled ? 'cancelled' : error || counts.failed > 0 ? 'failed' : 'restored';
  log(outcome === 'restored' ? 'info' : 'warn', `restore ${outcome}`, { taskId: task.taskId, tape: task.tapeName, ...counts, targetsDone });
  return {
    kind: 'report',
    result: {
      kind: 'restore-result',
      taskId: task.taskId,
      tapeName: task.tapeName,
      outcome,
      ...counts,
      failures,
      targetsDone,
      ...(error ? { error: error.slice(0, 4000) } : {}),
    },
  };
}

function destinationFor(deps: DriveDeps, task: RestoreTask, dir: string): RestoreDestination {
  if (!task.host) return new LocalDestination(dir);
  return deps.sources.for(task.host).restoreDestination(dir);
}
