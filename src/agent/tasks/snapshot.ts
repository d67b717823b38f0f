/**
 * Catalog snapshots on tape. The snapshot path (close_tape, snapshot_catalog --tape): export
 * both tables into the staging directory, check the tape (label, end of data where the catalog
 * expects it), and append the snapshot as one tape file (lib/tape-format/snapshot-file.ts). The
 * read path (restore_catalog --tape): find the last snapshot file on a tape, from its end, and
 * write it, checked against its trailer, as a file on this host. Neither needs the tape's
 * catalog entry beyond the task.
 */
import { readOnlyReason } from '../../lib/domain/tape.ts';
import { link, mkdir, rm, stat } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { marshall, unmarshall } from '@aws-sdk/util-dynamodb';
import { SNAPSHOT_FORMAT, snapshotCatalog } from '../../lib/catalog/snapshot.ts';
import { errorMessage } from '../../lib/errors.ts';
import type { ReadSnapshotTask, SnapshotTask } from '../../lib/protocol/tasks.ts';
import { readSnapshotFile, writeSnapshotFile, type SnapshotHeader, type SnapshotTrailer } from '../../lib/tape-format/snapshot-file.ts';
import { TapeBusyError } from '../../lib/tape/drive.ts';
import type { DriveDeps, TaskOutcome } from '../types.ts';
import { checkLabel, mountTape } from './tape-checks.ts';

export async function runSnapshot(deps: DriveDeps, task: SnapshotTask, signal: AbortSignal): Promise<TaskOutcome> {
  const { drive, ctx, log } = deps;
  const tape = await ctx.catalog.getTape(task.tapeName);
  if (tape?.snapshotInFlight?.taskId !== task.taskId) return { kind: 'dropped', reason: `snapshot ${task.taskId} is no longer in flight on ${task.tapeName}` };
  const base = { kind: 'snapshot-result' as const, taskId: task.taskId, tapeName: task.tapeName, fileNumber: task.fileNumber };
  const temp = join(deps.staging.dir, `snapshot-${task.taskId}.jsonl.gz`);
  try {
    const readOnly = tape && readOnlyReason(tape);
    if (readOnly) throw new Error(readOnly);
    await mountTape(drive, task.tapeName);
    if (!(await checkLabel(drive, task.tapeName))) throw new Error(`tape ${task.tapeName} in drive ${drive.id} is blank`);
    const files = await drive.seekEndOfData();
    // Delivered again after this snapshot was written but before its report: report it again.
    if (files === task.fileNumber + 1) {
      await mkdir(deps.staging.dir, { recursive: true });
      await rm(temp, { force: true }); // left by the run that was killed
      const again = await readBack(deps, task.tapeName, task.fileNumber, temp).catch(() => undefined);
      if (again?.header.taskId === task.taskId) return { kind: 'report', result: { ...base, outcome: 'written', ...figures(again.trailer) } };
    }
    if (files !== task.fileNumber)
      throw new Error(`tape ${task.tapeName} holds ${files} file(s), label included, but the catalog expects ${task.fileNumber}; nothing was written`);
    await mkdir(deps.staging.dir, { recursive: true });
    await rm(temp, { force: true });
    const names = ctx.config.names;
    const counts = await snapshotCatalog(ctx.clients.dynamodb, { catalog: names.catalogTable, manifests: names.manifestTable }, temp, ctx.now(), (t, item) =>
      t === 'catalog' && item.pk?.S === `TAPE#${task.tapeName}` && item.sk?.S === 'TAPE' ? asAfterSnapshot(item, task.fileNumber) : item,
    );
    await drive.seekFile(task.fileNumber);
    const writer = await drive.openWriter();
    let trailer: SnapshotTrailer;
    try {
      trailer = await writeSnapshotFile(
        writer,
        { tapeName: task.tapeName, fileNumber: task.fileNumber, taskId: task.taskId, writtenAt: ctx.now().toISOString(), snapshotFormat: SNAPSHOT_FORMAT },
        { path: temp, bytes: (await stat(temp)).size, items: { catalog: counts.catalog, manifests: counts.manifests } },
      );
      await writer.close();
    } catch (e) {
      await writer.abort().catch(() => undefined);
      throw e;
    }
    log('info', 'catalog snapshot written', { taskId: task.taskId, tape: task.tapeName, fileNumber: task.fileNumber, ...counts });
    return { kind: 'report', result: { ...base, outcome: 'written', ...figures(trailer) } };
  } catch (e) {
    if (signal.aborted || e instanceof TapeBusyError) throw e;
    log('warn', 'catalog snapshot not written', { taskId: task.taskId, tape: task.tapeName, error: errorMessage(e) });
    return { kind: 'report', result: { ...base, outcome: 'failed', error: errorMessage(e).slice(0, 4000) } };
  } finally {
    await rm(temp, { force: true });
  }
}

export async function runReadSnapshot(deps: DriveDeps, task: ReadSnapshotTask, signal: AbortSignal): Promise<TaskOutcome> {
  const { drive, ctx, log } = deps;
  const status = await ctx.tasks.get(task.taskId);
  if (status && (status.state === 'succeeded' || status.state === 'failed'))
    return { kind: 'dropped', reason: `read-snapshot ${task.taskId} already reported` };
  const base = { kind: 'read-snapshot-result' as const, taskId: task.taskId, tapeName: task.tapeName };
  const part = `${task.file}.part`;
  try {
    await mountTape(drive, task.tapeName);
    if (!(await checkLabel(drive, task.tapeName))) throw new Error(`tape ${task.tapeName} in drive ${drive.id} is blank`);
    const files = await drive.seekEndOfData();
    await mkdir(dirname(task.file), { recursive: true });
    const problems: string[] = [];
    for (let n = files - 1; n >= 1; n--) {
      signal.throwIfAborted();
      await rm(part, { force: true });
      const found = await readBack(deps, task.tapeName, n, part).catch((e: unknown) => ({ failure: errorMessage(e) }));
      if ('failure' in found) {
        if (!/not a catalog snapshot file/.test(found.failure)) problems.push(`file ${n}: ${found.failure}`);
        continue;
      }
      // Never over an existing file: link fails if it exists.
      await link(part, task.file);
      log('info', 'catalog snapshot read', { taskId: task.taskId, tape: task.tapeName, fileNumber: n, file: task.file });
      return {
        kind: 'report',
        result: { ...base, ok: true, file: task.file, fileNumber: n, writtenAt: found.header.writtenAt, ...figures(found.trailer) },
      };
    }
    throw new Error(`tape ${task.tapeName} holds no complete catalog snapshot${problems.length ? ` (${problems.slice(0, 5).join('; ')})` : ''}`);
  } catch (e) {
    if (signal.aborted || e instanceof TapeBusyError) throw e;
    return { kind: 'report', result: { ...base, ok: false, error: errorMessage(e).slice(0, 4000) } };
  } finally {
    await rm(part, { force: true });
  }
}

/** Reads tape file `n` as a snapshot into `file` (TapeFormatError when it is not one). */
async function readBack(deps: DriveDeps, tapeName: string, n: number, file: string): Promise<{ header: SnapshotHeader; trailer: SnapshotTrailer }> {
  await deps.drive.seekFile(n);
  const r = await readSnapshotFile(deps.drive.readFile(), file);
  if (r.header.tapeName !== tapeName || r.header.fileNumber !== n)
    throw new Error(`file ${n} is a snapshot written as file ${r.header.fileNumber} of ${r.header.tapeName}`);
  return r;
}

const figures = (t: SnapshotTrailer) => ({ bytes: t.bytes, sha256: t.sha256, items: { catalog: t.items.catalog, manifests: t.items.manifests } });

/** The tape item as it is once the snapshot is on it: its next file after the snapshot, no snapshot in flight. */
function asAfterSnapshot(item: Parameters<typeof unmarshall>[0], fileNumber: number) {
  const { snapshotInFlight: _, ...tape } = unmarshall(item);
  return marshall({ ...tape, nextFileNumber: fileNumber + 1 }, { removeUndefinedValues: true });
}
