/**
 * Applies an agent's report to the catalog. Runs in the SQS-triggered results handler (AWS)
 * or the results pump of the local stack. Every change is conditional on the task still
 * being the one the catalog waits for, so a duplicate, late or out-of-order report is
 * acknowledged and changes nothing.
 */
import { ConditionFailed } from '../catalog/catalog.ts';
import { isReleaseThreeTarget } from '../catalog/items.ts';
import { CatalogUpgradeError, ConflictError } from '../errors.ts';
import { adoptedScanId } from '../domain/target.ts';
import type { JobContext } from '../jobs/context.ts';
import type { CheckTapeResult, DiscoverResult, ProgressReport, RestoreResult, Result, ScanResult, VerifyResult, WriteResult } from '../protocol/results.ts';
import { restoreMessage } from '../domain/restore.ts';
import { importTargets } from '../jobs/targets.ts';
import { repair } from '../jobs/repair.ts';
import { errorMessage } from '../errors.ts';
import { applyRebuildEnd, applyRebuildFile, applyRebuildTape } from './apply-rebuild.ts';
import { applyReadSnapshot, applySnapshot } from './apply-snapshot.ts';

/** A target at least this share of a tape's capacity that meets the end of medium on an empty tape is too large for it. */
const TOO_LARGE_SHARE = 0.9;

export interface ApplyOutcome {
  applied: boolean;
  note: string;
}

export async function applyResult(ctx: JobContext, r: Result): Promise<ApplyOutcome> {
  switch (r.kind) {
    case 'scan-result':
      return applyScan(ctx, r);
    case 'write-result':
      return applyWrite(ctx, r);
    case 'verify-result':
      return applyVerify(ctx, r);
    case 'check-tape-result':
      return applyCheckTape(ctx, r);
    case 'restore-result':
      return applyRestore(ctx, r);
    case 'progress':
      return applyProgress(ctx, r);
    case 'heartbeat':
      return (await ctx.tasks.heartbeat(r.taskId, ctx.now().toISOString()))
        ? { applied: true, note: 'heartbeat' }
        : { applied: false, note: 'heartbeat for a finished or unknown task; dropped' };
    case 'discover-result':
      return applyDiscover(ctx, r);
    case 'rebuild-tape-result':
      return applyRebuildTape(ctx, r);
    case 'rebuild-file-result':
      return applyRebuildFile(ctx, r);
    case 'rebuild-result':
      return applyRebuildEnd(ctx, r);
    case 'snapshot-result':
      return applySnapshot(ctx, r);
    case 'read-snapshot-result':
      return applyReadSnapshot(ctx, r);
  }
}

/** Imports what a scheduled discover found; known targets are left as they are. */
async function applyDiscover(ctx: JobContext, r: DiscoverResult): Promise<ApplyOutcome> {
  if (!r.ok) return { applied: false, note: `discover under ${r.host}:${r.root} failed: ${r.error}` };
  if (r.paths.length === 0) return { applied: false, note: `nothing found under ${r.host}:${r.root}` };
  const out = await importTargets(ctx, {
    content: r.paths.map((p) => `${r.host}:${p}`).join('\n'),
    source: `scheduled import of ${r.host}:${r.root}`,
    skipInvalid: true,
  });
  return {
    applied: out.imported.length > 0,
    note: `scheduled import under ${r.host}:${r.root} (part ${r.part}/${r.parts}): ${out.imported.length} new, ${out.alreadyKnown.length} known`,
  };
}

async function applyScan(ctx: JobContext, r: ScanResult): Promise<ApplyOutcome> {
  const t = await ctx.catalog.getTarget(r.targetId);
  if (!t) return { applied: false, note: `scan result for unknown target ${r.targetId}` };
  if (t.scanId !== r.scanId || t.scan !== 'pending') {
    return { applied: false, note: `scan ${r.scanId} of ${t.id} is not the pending one (${t.scanId}, ${t.scan}); ignored` };
  }
  const now = ctx.now().toISOString();
  const next = r.ok
    ? {
        ...t,
        scan: 'complete' as const,
        fileCount: r.fileCount,
        totalBytes: r.totalBytes,
        manifestPages: r.manifestPages,
        skippedCount: r.skippedCount,
        skipped: r.skipped,
        scanError: undefined,
        updatedAt: now,
        version: t.version + 1,
      }
    : {
        ...t,
        scan: 'failed' as const,
        scanError: `${r.error}${r.retryable ? ' (retry with "rescan --failed")' : ' (fix the agent configuration, then "rescan --failed")'}`,
        updatedAt: now,
        version: t.version + 1,
      };
  const ok = await ctx.catalog.updateTarget(t, next);
  return ok
    ? { applied: true, note: `scan of ${t.id} ${r.ok ? 'complete' : 'failed'}` }
    : { applied: false, note: `target ${t.id} changed meanwhile; scan result dropped` };
}

/** "2 special file(s) not archived (policy: skipped and reported): "fifo" (a fifo), ..." */
export function describeSkipped(count: number, list: { path: string; reason: string }[]): string {
  const shown = list.slice(0, 10).map((s) => `${JSON.stringify(s.path)} (${s.reason.replace(/^skipped: /, '').replace(/ \(.*\)$/, '')})`);
  return `${count} special file(s) not archived (policy: skipped and reported): ${shown.join(', ')}${count > shown.length ? `, and ${count - shown.length} more` : ''}`;
}

function describeWrite(r: WriteResult): string {
  switch (r.outcome) {
    case 'archived':
      return `archived ${r.fileCount} file(s), ${r.bytes} bytes on tape${r.skippedCount ? `; ${describeSkipped(r.skippedCount, r.skipped ?? [])}` : ''}`;
    case 'end-of-medium':
      return `end of medium after ${r.bytesAtEnd} bytes: tape ${r.tapeName} is full; the target goes to the next tape`;
    case 'source-changed':
      return `source changed since its scan (${r.changeCount} file(s): ${r.changes.map((c) => `${c.path}: ${c.reason}`).join('; ')}); once it has settled, "rescan ${r.targetId}" and assign it again`;
    case 'io-error':
      return `I/O error writing file ${r.fileNumber}: ${r.error}`;
    case 'source-error':
      return `could not read the source: ${r.error}`;
    case 'refused':
      return `write refused (${r.reason}): ${r.error}`;
  }
}

async function applyWrite(ctx: JobContext, r: WriteResult): Promise<ApplyOutcome> {
  const tape = await ctx.catalog.getTape(r.tapeName);
  const now = ctx.now().toISOString();
  if (!tape || tape.writeInFlight?.taskId !== r.taskId) {
    return { applied: false, note: `write ${r.taskId} is not in flight on ${r.tapeName}; duplicate or late report ignored` };
  }
  const w = { taskId: r.taskId, fileNumber: r.fileNumber, targetId: r.targetId };
  // End of medium in the first file of a tape: the tape is not full (nothing is on it). Either
  // the target is about as large as a whole tape, or the cartridge holds less than the
  // catalog says (damaged, or a wrong capacity): the tape is then set aside, not the target.
  const emptyTapeEnd = r.outcome === 'end-of-medium' && r.fileNumber === 1;
  const targetBytes = emptyTapeEnd ? ((await ctx.catalog.getTarget(r.targetId))?.totalBytes ?? 0) : 0;
  const tooLarge = emptyTapeEnd && targetBytes >= TOO_LARGE_SHARE * tape.capacityBytes;
  const shortTape = emptyTapeEnd && !tooLarge;
  const message = tooLarge
    ? `too large for the tape: ${targetBytes} bytes of data, end of medium after ${r.bytesAtEnd} bytes with nothing else on ${r.tapeName} (capacity ${tape.capacityBytes} bytes); ` +
      `tape ${r.tapeName} is not marked full. Split the target into smaller directories, or assign it to a tape of larger capacity.`
    : shortTape
      ? `end of medium after ${r.bytesAtEnd} bytes with nothing else on ${r.tapeName}, whose capacity is ${tape.capacityBytes} bytes (the target has ${targetBytes}): ` +
        `the cartridge holds less than the catalog says, or is damaged. Tape ${r.tapeName} is disabled (not full); check the cartridge, then close it ("close_tape", the target is released) and use another tape.`
      : describeWrite(r);
  // A discarded write may still have labelled a blank tape: the state says so.
  const labelled = r.labelWritten && tape.state === 'registered' ? ({ tapeState: 'labelled' } as const) : {};
  try {
    switch (r.outcome) {
      case 'archived':
        await ctx.catalog.finishWrite(tape, { ...w, bytes: r.bytes, fileCount: r.fileCount, sha256: r.digest }, now);
        break;
      case 'end-of-medium':
        if (tooLarge) {
          await ctx.catalog.discardWrite(tape, w, { targetPlacement: 'write_failed', error: message, ...labelled }, now);
        } else if (shortTape) {
          await ctx.catalog.discardWrite(tape, w, { targetPlacement: 'assigned', tapeState: 'disabled', reason: message, error: message }, now);
        } else {
          await ctx.catalog.discardWrite(tape, w, { targetPlacement: 'assigned', tapeState: 'full', reason: `end of medium at file ${r.fileNumber}` }, now);
        }
        break;
      case 'source-changed':
        await ctx.catalog.discardWrite(tape, w, { targetPlacement: 'write_failed', error: message, ...labelled }, now);
        break;
      case 'source-error':
        // The data host (or a repair's other copy) failed us, not the tape: the target stays
        // assigned and is retried; a repair whose other copy could not be staged, from the source.
        await ctx.catalog.discardWrite(tape, w, { targetPlacement: 'assigned', error: message, dropRepairSource: true, ...labelled }, now);
        break;
      case 'io-error':
      case 'refused':
        // The tape or drive is suspect: stop writing to it until an operator looks. An adopted
        // tape keeps its state (closed for ever): the agent refused it because it is read only.
        await ctx.catalog.discardWrite(
          tape,
          w,
          { targetPlacement: 'assigned', ...(tape.format ? {} : { tapeState: 'disabled' as const, reason: message }), error: message },
          now,
        );
        break;
    }
  } catch (e) {
    if (e instanceof ConditionFailed) {
      // A write started by release 0.3 whose report arrives before `migrate`: retried, not lost.
      const item = await ctx.catalog.rawTarget(r.targetId);
      if (item && isReleaseThreeTarget(item)) throw new CatalogUpgradeError(`target ${r.targetId} still holds its placement`);
      return { applied: false, note: `write ${r.taskId} already applied or superseded; ignored` };
    }
    throw e;
  }
  const ok = r.outcome === 'archived';
  // End of medium is the normal end of a tape, not a failure of the job.
  await ctx.tasks.finish(r.taskId, ok || (r.outcome === 'end-of-medium' && !emptyTapeEnd) ? 'succeeded' : 'failed', r.outcome, message, now);
  return { applied: true, note: message };
}

async function applyVerify(ctx: JobContext, r: VerifyResult): Promise<ApplyOutcome> {
  const now = ctx.now().toISOString();
  const message =
    r.outcome === 'confirmed'
      ? `file ${r.fileNumber} on ${r.tapeName} confirmed: ${r.fileCount} file(s), ${r.bytes} bytes re-read, every checksum matches`
      : `file ${r.fileNumber} on ${r.tapeName} FAILED verify (${r.badCount} bad): ${r.error ?? r.bad.map((b) => `${b.path}: ${b.reason}`).join('; ')}`;
  const status = await ctx.tasks.get(r.taskId);
  const scrub = status?.scrub === true;
  if (r.notRead) {
    const why = `file ${r.fileNumber} on ${r.tapeName} was not read: ${r.error ?? 'the tape could not be mounted'}. The copy is unchanged; load tape ${r.tapeName} (or check the library) and run ${scrub ? 'scrub' : 'confirm'} again.`;
    await ctx.tasks.finish(r.taskId, 'failed', 'not-read', why, now);
    return { applied: true, note: why };
  }
  let repairNote = '';
  if (r.updateCatalog) {
    // Re-read and retry when the copy moves (re-assigned) between the reads and the write.
    const tape = await ctx.catalog.getTape(r.tapeName);
    if (!tape) return { applied: false, note: `verify of a file on unknown tape ${r.tapeName}; ignored` };
    for (let attempt = 1; ; attempt++) {
      const file = await ctx.catalog.getTapeFile(r.tapeName, r.fileNumber);
      if (!file || file.targetId !== r.targetId) return { applied: false, note: `verify of unknown file ${r.tapeName}/${r.fileNumber}; ignored` };
      if (file.lastVerifyTaskId === r.taskId) {
        // Applied before, perhaps by a consumer that died before finishing the task: finish it now.
        if (r.exact && r.outcome === 'confirmed') await adoptMeasuredScan(ctx, r.targetId, r.exact, now);
        if (status && (status.state === 'queued' || status.state === 'running')) {
          if (scrub && r.outcome === 'failed') repairNote = await startRepair(ctx, r.targetId, tape.pool, r.taskId);
          await ctx.tasks.finish(r.taskId, r.outcome === 'confirmed' ? 'succeeded' : 'failed', r.outcome, message + repairNote, now);
        }
        return { applied: false, note: `verify ${r.taskId} already applied; ignored` };
      }
      const copy = (await ctx.catalog.getTargetCopies(r.targetId))?.copies.find((c) => c.pool === tape.pool);
      const targetOnFile = copy?.tapeName === file.tapeName && copy.fileNumber === file.fileNumber;
      try {
        await ctx.catalog.recordVerify(
          file,
          tape.pool,
          {
            taskId: r.taskId,
            ok: r.outcome === 'confirmed',
            targetOnFile,
            scrub,
            ...(r.outcome === 'failed' ? { error: message } : {}),
            ...(r.exact ? { exact: r.exact } : {}),
          },
          now,
        );
        if (r.exact && r.outcome === 'confirmed') await adoptMeasuredScan(ctx, r.targetId, r.exact, now);
        // A copy found bad by a scrub is written again (from its other copy, or its source).
        if (scrub && r.outcome === 'failed' && targetOnFile) repairNote = await startRepair(ctx, r.targetId, tape.pool, r.taskId);
        break;
      } catch (e) {
        if (!(e instanceof ConditionFailed)) throw e;
        if (attempt >= 3) return { applied: false, note: `file ${r.tapeName}/${r.fileNumber} changed meanwhile; verify ${r.taskId} ignored` };
      }
    }
  }
  await ctx.tasks.finish(r.taskId, r.outcome === 'confirmed' ? 'succeeded' : 'failed', r.outcome, message + repairNote, now);
  return { applied: true, note: message + repairNote };
}

/**
 * An adopted target whose scan is still tapetown's (or none: never scanned, no file list) takes
 * the manifest its tape file was measured to have: exact sizes and SHA-256s from now on, so
 * restore checks them and archive writes new copies against them. A target scanned here since
 * keeps its own scan.
 */
async function adoptMeasuredScan(ctx: JobContext, targetId: string, x: NonNullable<VerifyResult['exact']>, now: string): Promise<void> {
  for (let attempt = 0; ; attempt++) {
    const t = await ctx.catalog.getTarget(targetId);
    if (!t?.adopted || (t.scanId !== undefined && t.scanId !== adoptedScanId(t.adopted.id))) return;
    const next = {
      ...t,
      scan: 'complete' as const,
      scanId: x.scanId,
      fileCount: x.fileCount,
      totalBytes: x.totalBytes,
      manifestPages: x.manifestPages,
      adopted: { ...t.adopted, ...(x.baseline ? { baselineFromTape: true } : {}) },
      updatedAt: now,
      version: t.version + 1,
    };
    if (await ctx.catalog.updateTarget(t, next)) return;
    // Changed meanwhile (an import, a rescan): thrown after a few tries, so the report is applied again.
    if (attempt >= 3) throw new ConflictError(`target ${targetId} kept changing; the measured scan of its tapetown file is applied again`);
  }
}

/** The repair a failed scrub starts; what it did (or why it could not) goes into the task's message. */
async function startRepair(ctx: JobContext, targetId: string, pool: string, verifyTaskId: string): Promise<string> {
  try {
    const out = await repair(ctx, { targetIds: [targetId], pool, afterVerifyTask: verifyTaskId });
    const a = out.assigned[0];
    if (a)
      return `; repair started: the copy is assigned to ${a.tape}, to be written from ${a.from === 'copy' ? `the copy ${a.fromFile}` : 'the source'} by "archive --pool ${pool}"`;
    return `; repair not started: ${out.refused[0]?.reason ?? out.message} (run "repair --target ${targetId}" once that is fixed)`;
  } catch (e) {
    return `; repair not started: ${errorMessage(e)} (run "repair --target ${targetId}")`;
  }
}

/** enable_tape's check: the tape returns to service only if the agent found it as the catalog expects. */
async function applyCheckTape(ctx: JobContext, r: CheckTapeResult): Promise<ApplyOutcome> {
  const now = ctx.now().toISOString();
  const task = await ctx.tasks.get(r.taskId);
  if (!task || task.state === 'succeeded' || task.state === 'failed')
    return { applied: false, note: `check ${r.taskId} is not open (already applied, or unknown); ignored` };
  const tape = await ctx.catalog.getTape(r.tapeName);
  let state: 'succeeded' | 'failed' = 'failed';
  let message: string;
  if (!tape) {
    message = `tape ${r.tapeName} is no longer in the catalog; nothing was enabled.`;
  } else if (tape.state !== 'disabled') {
    message = `tape ${tape.name} is ${tape.state}, no longer disabled; the check changed nothing.`;
  } else if (!r.ok) {
    message = `tape ${tape.name} stays disabled: ${r.error ?? 'the check failed'}. Fix that and run "enable_tape ${tape.name}" again, or close the tape.`;
  } else if (await ctx.catalog.enableTape(tape, (r.filesOnTape ?? 0) >= 1 ? 'labelled' : 'registered', r.taskId, now)) {
    state = 'succeeded';
    message = `tape ${tape.name} enabled: its label and end of data (${r.filesOnTape} file(s), label included) match the catalog${tape.reason ? `; it had been disabled because: ${tape.reason}` : ''}.`;
  } else {
    message = `tape ${tape.name} changed while it was checked, or this check was already applied; nothing was enabled. Run "enable_tape ${tape.name}" again if it is still disabled.`;
  }
  await ctx.tasks.finish(r.taskId, state, r.ok ? 'checked' : 'mismatch', message, now);
  return { applied: state === 'succeeded', note: message };
}

/** A restore changes no archive state: its figures go to its task status, for the operator. */
async function applyRestore(ctx: JobContext, r: RestoreResult): Promise<ApplyOutcome> {
  const task = await ctx.tasks.get(r.taskId);
  if (!task || task.state === 'succeeded' || task.state === 'failed')
    return { applied: false, note: `restore ${r.taskId} is not open (already applied, or unknown); ignored` };
  const message = restoreMessage(r, task.destination ?? 'the destination');
  const { restored, bytes, skipped, failed, failures, targetsDone } = r;
  await ctx.tasks.finish(r.taskId, r.outcome === 'restored' ? 'succeeded' : 'failed', r.outcome, message, ctx.now().toISOString(), {
    restored,
    bytes,
    skipped,
    failed,
    failures,
    targetsDone,
  });
  return { applied: true, note: message };
}

async function applyProgress(ctx: JobContext, r: ProgressReport): Promise<ApplyOutcome> {
  const moved = await ctx.tasks.progress(r.taskId, r, ctx.now().toISOString());
  return { applied: moved, note: moved ? 'progress' : 'progress for a finished or unknown task; dropped' };
}
