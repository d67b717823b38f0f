/**
 * The rebuild path (rebuild_catalog): the catalog rebuilt from tapes alone. For each tape: read
 * the label, then every tape file to its end (header and manifest, trailer, length; the data
 * itself hashed and checked only with `verify`), store each file's manifest and report it. A
 * tape is reported when started and when read to its end, so a task interrupted (kill -9) and
 * delivered again skips the tapes already read and reads the others; every report applies
 * idempotently.
 */
import { mkdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { DEFAULT_POOL } from '../../lib/domain/copies.ts';
import { readSnapshotFile } from '../../lib/tape-format/snapshot-file.ts';
import { errorMessage } from '../../lib/errors.ts';
import { MAX_LISTED, type RebuildFileResult, type RebuildResult } from '../../lib/protocol/results.ts';
import type { RebuildTask } from '../../lib/protocol/tasks.ts';
import { readLabel, readTargetFile, readTargetHeader, type TapeLabel } from '../../lib/tape-format/index.ts';
import { surveyTargetFile, type SurveyOutcome } from '../../lib/tape-format/survey.ts';
import { isTapeChanger, TapeBusyError } from '../../lib/tape/drive.ts';
import type { DriveDeps, TaskOutcome } from '../types.ts';
import { mountTape } from './tape-checks.ts';

type TapeOutcome = RebuildResult['tapes'][number];
type FileReport = Omit<RebuildFileResult, 'v' | 'reportedAt'>;

/** The tapes to read: those named, or every tape of the library (a drive without a changer: the one loaded). */
async function tapesToRead(deps: DriveDeps, task: RebuildTask): Promise<string[]> {
  if (task.tapes.length) return task.tapes;
  const { drive } = deps;
  if (isTapeChanger(drive) && drive.inventory) return drive.inventory();
  if ((await drive.seekEndOfData()) === 0) throw new Error(`the tape in drive ${drive.id} is blank`);
  await drive.rewind();
  return [(await readLabel(drive.readFile())).tapeName];
}

export async function runRebuild(deps: DriveDeps, task: RebuildTask, signal: AbortSignal): Promise<TaskOutcome> {
  const status = await deps.ctx.tasks.get(task.taskId);
  if (status && (status.state === 'succeeded' || status.state === 'failed')) return { kind: 'dropped', reason: `rebuild ${task.taskId} already reported` };
  const tapes: TapeOutcome[] = [];
  let names: string[];
  try {
    names = await tapesToRead(deps, task);
  } catch (e) {
    if (signal.aborted || e instanceof TapeBusyError) throw e;
    return {
      kind: 'report',
      result: { kind: 'rebuild-result', taskId: task.taskId, tapes: [{ name: '(library)', outcome: 'failed', files: 0, error: errorMessage(e) }] },
    };
  }
  for (const name of names.slice(0, 500)) {
    const known = await deps.ctx.catalog.getTape(name);
    // Read to its end before (an interrupted task delivered again, a second run): not read again, unless merging.
    if (known?.rebuilt?.complete && !task.merge) {
      tapes.push({ name, outcome: 'already-rebuilt', files: known.filesWritten });
      continue;
    }
    try {
      tapes.push({ name, outcome: 'rebuilt', files: await rebuildTape(deps, task, name, signal) });
    } catch (e) {
      if (signal.aborted || e instanceof TapeBusyError) throw e;
      deps.log('warn', 'tape not rebuilt', { taskId: task.taskId, tape: name, error: errorMessage(e) });
      tapes.push({ name, outcome: 'failed', files: 0, error: errorMessage(e).slice(0, 2000) });
    }
  }
  return { kind: 'report', result: { kind: 'rebuild-result', taskId: task.taskId, tapes } };
}

/** Reads one tape to its end; returns the number of files catalogued. */
async function rebuildTape(deps: DriveDeps, task: RebuildTask, name: string, signal: AbortSignal): Promise<number> {
  const { drive, reporter, log } = deps;
  await mountTape(drive, name);
  const filesOnTape = await drive.seekEndOfData();
  if (filesOnTape === 0) throw new Error(`tape ${name} is blank: nothing to rebuild from`);
  await drive.rewind();
  const label: TapeLabel = await readLabel(drive.readFile({ signal })).catch((e: unknown) => {
    throw new Error(
      `tape ${name} has no readable label (${errorMessage(e)}). A tape written by tapetown has none: it is not rebuilt from the tape, but adopted again from tapetown's database ("adopt_tapetown DB --host HOST", docs/tapetown.md).`,
    );
  });
  if (label.tapeName !== name) throw new Error(`the cartridge loaded as ${name} is labelled ${label.tapeName}; check the library's barcodes`);
  const tapeBase = {
    kind: 'rebuild-tape-result' as const,
    taskId: task.taskId,
    tapeName: name,
    barcode: label.barcode,
    blockSize: label.blockSize,
    labelledAt: label.createdAt,
    filesOnTape,
    verified: task.verify,
    merge: task.merge,
    ...(label.capacityBytes ? { capacityBytes: label.capacityBytes } : {}),
  };
  await reporter.report({ ...tapeBase, phase: 'start', ...(label.pool ? { pool: label.pool } : {}) });
  const progress = reporter.progress(task.taskId, filesOnTape - 1, `rebuilding ${name}`);
  const skipped: { fileNumber: number; reason: string }[] = [];
  const pools = new Set<string>();
  let files = 0;
  let bytesUsed = 0;
  let lastComplete = 0;
  for (let n = 1; n < filesOnTape; n++) {
    signal.throwIfAborted();
    const r = await rebuildFile(deps, task, name, n, signal);
    if ('reason' in r) {
      skipped.push({ fileNumber: n, reason: r.reason });
      // A catalog snapshot is a complete file: the next write goes after it, never over it.
      if (r.snapshot) lastComplete = n;
    } else {
      await reporter.report(r);
      files++;
      bytesUsed += r.bytes;
      lastComplete = n;
      pools.add(r.pool);
    }
    progress.update(n);
  }
  await progress.flush();
  const pool = label.pool ?? (pools.size === 1 ? [...pools][0] : pools.size ? undefined : DEFAULT_POOL);
  const problems = pools.size > 1 ? [`its files name ${pools.size} pools (${[...pools].sort().join(', ')}); the tape's pool is in doubt`] : [];
  if (label.pool && [...pools].some((p) => p !== label.pool)) problems.push(`its label says pool ${label.pool}, some files name another`);
  await reporter.report({
    ...tapeBase,
    phase: 'end',
    ...(pool ? { pool } : {}),
    files,
    bytesUsed,
    nextFileNumber: lastComplete + 1,
    skipped: skipped.slice(0, MAX_LISTED),
    problems: problems.slice(0, MAX_LISTED),
  });
  log('info', 'tape rebuilt', { taskId: task.taskId, tape: name, files, skipped: skipped.length });
  return files;
}

/** Whether file `n` is a complete catalog snapshot: what it is, for the task's notes. */
async function snapshotAt(deps: DriveDeps, task: RebuildTask, n: number): Promise<string | undefined> {
  const temp = join(deps.staging.dir, `rebuild-${task.taskId}-${n}.jsonl.gz`);
  try {
    await mkdir(deps.staging.dir, { recursive: true });
    await rm(temp, { force: true });
    await deps.drive.seekFile(n);
    const { header, trailer } = await readSnapshotFile(deps.drive.readFile(), temp);
    return `a catalog snapshot of ${header.writtenAt} (${trailer.items.catalog} catalog item(s)); "restore_catalog --tape" loads it`;
  } catch {
    return undefined;
  } finally {
    await rm(temp, { force: true });
  }
}

/** One tape file: its report, or why it is not catalogued. */
async function rebuildFile(
  deps: DriveDeps,
  task: RebuildTask,
  tapeName: string,
  n: number,
  signal: AbortSignal,
): Promise<FileReport | { reason: string; snapshot?: boolean }> {
  const { drive, ctx } = deps;
  await drive.seekFile(n);
  const head = await readTargetHeader(drive.readFile({ signal })).catch((e: unknown) => ({ failure: errorMessage(e) }));
  if ('failure' in head) {
    const snapshot = await snapshotAt(deps, task, n);
    return snapshot ? { reason: snapshot, snapshot: true } : { reason: head.failure };
  }
  if (head.tapeName !== tapeName || head.fileNumber !== n)
    return { reason: `its header says it is file ${head.fileNumber} of tape ${head.tapeName}: copied from another tape? Inspect it ("tape-agent inspect")` };
  await drive.seekFile(n);
  const out: SurveyOutcome = { tapeBytes: 0, damage: [] };
  // The manifest goes into the catalog's pages as it comes off the tape (the name index too).
  const pages = await ctx.manifests.write(head.target.id, head.scanId, surveyTargetFile(drive.readFile({ signal }), out, { signal }), { names: ctx.names });
  if (out.incomplete || !out.header || !out.trailer) return { reason: out.incomplete ?? 'incomplete' };
  const h = out.header;
  let verify: FileReport['verify'] = 'not-read';
  let verifyError: string | undefined;
  if (task.verify) {
    await drive.seekFile(n);
    const report = await readTargetFile(
      drive.readFile({ signal }),
      { targetId: h.target.id, manifest: () => ctx.manifests.read(h.target.id, h.scanId, pages) },
      { signal },
    );
    verify = report.ok ? 'ok' : 'failed';
    if (!report.ok)
      verifyError = `${report.bad.length} bad: ${report.bad
        .slice(0, 5)
        .map((b) => `${b.path}: ${b.reason}`)
        .join('; ')}`.slice(0, 4000);
  }
  return {
    kind: 'rebuild-file-result',
    taskId: task.taskId,
    tapeName,
    fileNumber: n,
    target: { id: h.target.id, host: h.target.host, path: h.target.path },
    scanId: h.scanId,
    pool: h.pool ?? DEFAULT_POOL,
    ...(h.copies ? { copies: h.copies.slice(0, 16) } : {}),
    writeTaskId: h.taskId,
    writtenAt: h.writtenAt,
    fileCount: h.fileCount,
    totalBytes: h.totalBytes,
    manifestPages: pages,
    ...(h.skippedCount ? { skipped: (h.skipped ?? []).slice(0, MAX_LISTED), skippedCount: h.skippedCount } : {}),
    bytes: out.tapeBytes,
    trailerFileCount: out.trailer.fileCount,
    digest: out.trailer.digest,
    verify,
    ...(verifyError ? { verifyError } : {}),
    merge: task.merge,
  };
}
