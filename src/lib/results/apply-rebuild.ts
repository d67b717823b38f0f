/**
 * Applies the reports of a rebuild task (rebuild_catalog) to the catalog: each tape, each tape
 * file with its target and copy, and the end of the task. Every write is "only if absent" or
 * conditional on the item a rebuild made, so a report applied twice, late or out of order adds
 * nothing twice, and a catalog that was there before (`--merge`) is never changed where it has
 * something: each difference is noted on the task instead.
 */
import type { JobContext } from '../jobs/context.ts';
import type { RebuildFileResult, RebuildResult, RebuildTapeResult } from '../protocol/results.ts';
import { disagreements, newerWrite, rebuiltCopy, rebuiltTapeFile, rebuiltTape, rebuiltTarget } from '../domain/rebuild.ts';
import { ReportTooEarlyError } from '../errors.ts';
import type { ApplyOutcome } from './apply-result.ts';

const TAPE_FIELDS = ['barcode', 'pool'] as const;
const TAPE_END_FIELDS = ['nextFileNumber', 'filesWritten', 'bytesUsed'] as const;
const FILE_FIELDS = ['targetId', 'taskId', 'scanId', 'bytes', 'fileCount', 'sha256'] as const;
const TARGET_FIELDS = ['host', 'path', 'scanId'] as const;
const COPY_FIELDS = ['tapeName', 'fileNumber'] as const;

export async function applyRebuildTape(ctx: JobContext, r: RebuildTapeResult): Promise<ApplyOutcome> {
  const now = ctx.now().toISOString();
  const tape = rebuiltTape(r, now);
  const existing = await ctx.catalog.getTape(r.tapeName);
  if (existing && !existing.rebuilt) {
    const fields = r.phase === 'end' ? [...TAPE_FIELDS, ...TAPE_END_FIELDS] : TAPE_FIELDS;
    const notes = disagreements(`tape ${r.tapeName}`, { ...existing }, { ...tape }, fields);
    await ctx.tasks.note(r.taskId, notes);
    return {
      applied: false,
      note: `tape ${r.tapeName} is in the catalog already: kept as it is${notes.length ? `, ${notes.length} disagreement(s) noted` : ''}`,
    };
  }
  if (r.phase === 'start') {
    const added = await ctx.catalog.addRebuiltTape(tape);
    return { applied: added, note: added ? `rebuilding tape ${r.tapeName}` : `tape ${r.tapeName} was already being rebuilt` };
  }
  // Notes first: a tape read to its end has all of its notes on the task (the end's check below).
  if (r.skipped?.length || r.problems?.length)
    await ctx.tasks.note(r.taskId, [
      ...(r.skipped ?? []).map((s) => `tape ${r.tapeName} file ${s.fileNumber} not catalogued: ${s.reason}`),
      ...(r.problems ?? []).map((p) => `tape ${r.tapeName}: ${p}`),
    ]);
  const done = await ctx.catalog.finishRebuiltTape(existing ? { ...tape, createdAt: existing.createdAt } : tape);
  return { applied: done, note: done ? `tape ${r.tapeName} rebuilt: ${r.files} file(s)` : `tape ${r.tapeName} was already rebuilt` };
}

export async function applyRebuildFile(ctx: JobContext, r: RebuildFileResult, again = false): Promise<ApplyOutcome> {
  const now = ctx.now().toISOString();
  const where = `tape ${r.tapeName} file ${r.fileNumber}`;
  const notes: string[] = [];
  const file = rebuiltTapeFile(r, now);
  const fileAdded = await ctx.catalog.addRebuiltTapeFile(file);
  if (!fileAdded) {
    const have = await ctx.catalog.getTapeFile(r.tapeName, r.fileNumber);
    if (have && (r.merge || have.taskId !== file.taskId)) notes.push(...disagreements(where, { ...have }, { ...file }, FILE_FIELDS));
  }

  const target = rebuiltTarget(r);
  const tc = await ctx.catalog.getTargetCopies(r.target.id);
  if (!tc) {
    // The target with a copy per pool of its policy: the one on this tape, the others not (yet) found.
    const copies = target.copies.map((pool) =>
      pool === r.pool
        ? rebuiltCopy(r, target.importedAt, now)
        : { targetId: target.id, pool, placement: 'unassigned' as const, importedAt: target.importedAt, updatedAt: now, version: 1 },
    );
    if (!target.copies.includes(r.pool)) copies.push(rebuiltCopy(r, target.importedAt, now));
    if (await ctx.catalog.createTarget(target, copies)) return { applied: true, note: `${where}: target ${target.id} rebuilt` };
    // Created meanwhile by another file's report: merge into it (once; a copy without its target is left as it is).
    if (!again) return applyRebuildFile(ctx, r, true);
    await ctx.tasks.note(r.taskId, [`${where}: target ${target.id} could not be created (copy items without their target?); look at it`]);
    return { applied: false, note: `${where}: target ${target.id} not created` };
  }

  const t = tc.target;
  notes.push(...disagreements(`${where}: target ${t.id}`, { ...t }, { ...target }, r.merge ? TARGET_FIELDS : TARGET_FIELDS.slice(0, 2)));
  // Without --merge the catalog is the rebuild's own: a newer write of the target brings its scan.
  if (!r.merge && t.scanId !== r.scanId && newerWrite(t.updatedAt, r)) {
    await ctx.catalog.updateTarget(t, { ...target, copies: t.copies, importedAt: t.importedAt, updatedAt: r.writtenAt, version: t.version + 1 });
  }
  const copy = tc.copies.find((c) => c.pool === r.pool);
  const mine = rebuiltCopy(r, t.importedAt, now);
  if (!copy) {
    if (!(await ctx.catalog.addRebuiltCopy(mine))) notes.push(`${where}: the copy of ${t.id} in pool ${r.pool} appeared meanwhile; not replaced`);
  } else if (copy.placement === 'unassigned') {
    await ctx.catalog.updateCopy(copy, { ...mine, version: copy.version + 1 });
  } else if (copy.tapeName !== r.tapeName || copy.fileNumber !== r.fileNumber) {
    if (r.merge) notes.push(...disagreements(`${where}: the copy of ${t.id} in pool ${r.pool}`, { ...copy }, { ...mine }, COPY_FIELDS));
    else if (newerWrite(copy.archivedAt, r)) await ctx.catalog.updateCopy(copy, { ...mine, version: copy.version + 1 });
  }
  await ctx.tasks.note(r.taskId, notes);
  return { applied: true, note: `${where}: target ${t.id}${notes.length ? `, ${notes.length} disagreement(s) noted` : ''}` };
}

export async function applyRebuildEnd(ctx: JobContext, r: RebuildResult): Promise<ApplyOutcome> {
  const status = await ctx.tasks.get(r.taskId);
  if (status?.state === 'succeeded' || status?.state === 'failed') return { applied: false, note: `rebuild ${r.taskId} already finished; ignored` };
  // The end is sent after every tape's end, but may be applied first (the queue keeps no order, the
  // pump applies a batch at once): the task is finished only with every tape and note in place.
  for (const t of r.tapes.filter((x) => x.outcome === 'rebuilt')) {
    const tape = await ctx.catalog.getTape(t.name);
    if (!tape || (tape.rebuilt && !tape.rebuilt.complete))
      throw new ReportTooEarlyError(`the end of rebuild ${r.taskId} came before the end of tape ${t.name}; retried`);
  }
  const failed = r.tapes.filter((t) => t.outcome === 'failed');
  const files = r.tapes.reduce((n, t) => n + t.files, 0);
  const parts = r.tapes.map(
    (t) => `${t.name}: ${t.outcome === 'failed' ? `FAILED (${t.error})` : `${t.files} file(s)${t.outcome === 'already-rebuilt' ? ' (rebuilt before)' : ''}`}`,
  );
  const message = `${r.tapes.length} tape(s), ${files} file(s) catalogued; ${parts.join('; ')}`;
  await ctx.tasks.finish(r.taskId, failed.length ? 'failed' : 'succeeded', failed.length ? 'failed' : 'rebuilt', message, ctx.now().toISOString());
  return { applied: true, note: `rebuild ${r.taskId}: ${message}` };
}
