/**
 * Every task and report envelope is built here (no task literal anywhere else), so the
 * version, ids and field names of the protocol (tasks.ts, results.ts) are set in one place.
 * The message flows themselves are described in docs/architecture.md ("Tasks, results and
 * lost work").
 */
import type { Target } from '../domain/target.ts';
import type { RepairSource } from '../domain/copies.ts';
import type { Result } from './results.ts';
import {
  PROTOCOL_VERSION,
  type CheckTapeTask,
  type DiscoverTask,
  type ReadSnapshotTask,
  type RebuildTask,
  type SnapshotTask,
  type RestoreTask,
  type ScanTask,
  type VerifyTask,
  type WriteTask,
} from './tasks.ts';

/** When and under which id a task is issued. */
export interface Issue {
  taskId: string;
  issuedAt: string;
}

type TargetRef = Pick<Target, 'id' | 'host' | 'path'>;
const ref = (t: TargetRef) => ({ id: t.id, host: t.host, path: t.path });

/** Append a catalog snapshot to `tapeName` as file `fileNumber` (close_tape, snapshot_catalog --tape). */
export function snapshotTask(issue: Issue, tapeName: string, fileNumber: number): SnapshotTask {
  return { v: PROTOCOL_VERSION, kind: 'snapshot', ...issue, tapeName, fileNumber };
}

/** Write the last catalog snapshot on `tapeName` as `file` on the agent's host (restore_catalog --tape). */
export function readSnapshotTask(issue: Issue, tapeName: string, file: string): ReadSnapshotTask {
  return { v: PROTOCOL_VERSION, kind: 'read-snapshot', ...issue, tapeName, file };
}

/** Read `tapes` (none: every tape in the library) and report what is on them (rebuild_catalog). */
export function rebuildTask(issue: Issue, r: { tapes: string[]; verify: boolean; merge: boolean }): RebuildTask {
  return { v: PROTOCOL_VERSION, kind: 'rebuild', ...issue, tapes: r.tapes, verify: r.verify, merge: r.merge };
}

/** Scan `target` under scan id `scanId` (import, rescan, reconcile), leaving out its excludes (nested targets). */
export function scanTask(issue: Issue, target: TargetRef & Pick<Target, 'excludes'>, scanId: string): ScanTask {
  return { v: PROTOCOL_VERSION, kind: 'scan', ...issue, target: ref(target), scanId, ...(target.excludes?.length ? { excludes: [...target.excludes] } : {}) };
}

/** Write `target`'s current scan as file `fileNumber` of `tapeName` (archive, reconcile: the same task id). */
export function writeTask(issue: Issue, target: Target, tapeName: string, fileNumber: number, from?: RepairSource): WriteTask {
  return {
    v: PROTOCOL_VERSION,
    kind: 'write',
    ...issue,
    tapeName,
    fileNumber,
    target: ref(target),
    scanId: target.scanId ?? '',
    manifestPages: target.manifestPages ?? 0,
    fileCount: target.fileCount ?? 0,
    totalBytes: target.totalBytes ?? 0,
    // Another copy is read only if it holds the very scan being written.
    ...(from && from.scanId === target.scanId ? { from } : {}),
  };
}

/** Read back and verify file `fileNumber` of `tapeName` (confirm, reconcile). */
export function verifyTask(issue: Issue, v: { tapeName: string; fileNumber: number; targetId: string; updateCatalog: boolean }): VerifyTask {
  return {
    v: PROTOCOL_VERSION,
    kind: 'verify',
    ...issue,
    tapeName: v.tapeName,
    fileNumber: v.fileNumber,
    targetId: v.targetId,
    updateCatalog: v.updateCatalog,
  };
}

/** Check a disabled tape's label and end of data against the catalog (enable_tape). */
export function checkTapeTask(issue: Issue, tapeName: string, expectedFiles: number): CheckTapeTask {
  return { v: PROTOCOL_VERSION, kind: 'check-tape', ...issue, tapeName, expectedFiles };
}

/** Restore the listed files of `tapeName` (restore): `items` in file-number order. */
export function restoreTask(issue: Issue, r: Pick<RestoreTask, 'tapeName' | 'items' | 'paths' | 'overwrite'> & { host?: string }): RestoreTask {
  return {
    v: PROTOCOL_VERSION,
    kind: 'restore',
    ...issue,
    tapeName: r.tapeName,
    items: [...r.items].sort((a, b) => a.fileNumber - b.fileNumber),
    ...(r.host ? { host: r.host } : {}),
    paths: r.paths,
    overwrite: r.overwrite,
  };
}

/** List directories matching `pattern` under `root` on `host` (scheduled import). */
export function discoverTask(issue: Issue, host: string, root: string, pattern: string): DiscoverTask {
  return { v: PROTOCOL_VERSION, kind: 'discover', ...issue, host, root, pattern };
}

/** A report body without its envelope, as the agent's task runners produce it. */
export type ReportBody<T extends Result = Result> = T extends unknown ? Omit<T, 'v' | 'reportedAt'> : never;

/** The envelope of a report on the results queue. */
export function report(body: ReportBody, reportedAt: string): Result {
  return { v: PROTOCOL_VERSION, reportedAt, ...body } as Result;
}
