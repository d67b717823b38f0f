/**
 * The HTTP route of every job: method, path, which input fields come from the path, the
 * status of a success, and what it does. Read by the Lambda handlers (status), the API
 * client (run-job --api) and the OpenAPI generator; serverless.yml's events are checked
 * against it by the template test.
 */
import type { JobName } from '../jobs/registry.ts';

export interface Route {
  method: 'GET' | 'POST' | 'DELETE';
  path: string;
  /** Path parameter -> input field. */
  pathParams?: Record<string, string>;
  /** 202 for jobs that enqueue agent work and answer before it is done. */
  okStatus: 200 | 202;
  summary: string;
}

export const HTTP_ROUTES: Record<JobName, Route> = {
  tapes: { method: 'GET', path: '/tapes', okStatus: 200, summary: 'tapes: every tape with state (and why, when disabled), online flag, usage and counts' },
  status: {
    method: 'GET',
    path: '/status',
    okStatus: 200,
    summary: 'status: the online tape, tapes set aside and why, targets per state, tape tasks under way and any gone stale',
  },
  open_tape: {
    method: 'POST',
    path: '/tapes/{name}/open',
    pathParams: { name: 'name' },
    okStatus: 200,
    summary: 'open_tape: make a registered tape the online tape; with new: true register a new one',
  },
  enable_tape: {
    method: 'POST',
    path: '/tapes/{name}/enable',
    pathParams: { name: 'name' },
    okStatus: 202,
    summary: 'enable_tape: ask the agent to check a disabled tape (label and end of data against the catalog); enabled if they match',
  },
  remove_tape: {
    method: 'DELETE',
    path: '/tapes/{name}',
    pathParams: { name: 'name' },
    okStatus: 200,
    summary: 'remove_tape: remove the record of a tape with nothing written; its assigned targets are released',
  },
  close_tape: {
    method: 'POST',
    path: '/tapes/{name}/close',
    pathParams: { name: 'tape' },
    okStatus: 200,
    summary: 'close_tape: closed, offline, outstanding targets released; without yes: true only the warnings',
  },
  import: { method: 'POST', path: '/imports', okStatus: 200, summary: 'import: each listed directory becomes a target and a scan is requested' },
  assign: {
    method: 'POST',
    path: '/assignments',
    okStatus: 200,
    summary: "assign: unassigned copies of a pool (or the listed targets) go to its tape; default: each pool's online tape",
  },
  archive: {
    method: 'POST',
    path: '/archive',
    okStatus: 202,
    summary: "archive: the next assigned copy gets the next file number of its pool's online tape; a write task is enqueued (default: one per pool)",
  },
  confirm: { method: 'POST', path: '/confirm', okStatus: 202, summary: 'confirm: request a read-back verify of a tape file' },
  targets: { method: 'GET', path: '/targets', okStatus: 200, summary: 'targets: what is where, copy by copy, and which targets are safe' },
  set_copies: {
    method: 'POST',
    path: '/targets/copies',
    okStatus: 200,
    summary: 'set_copies: change the copy policy of targets (raising creates the missing copies; lowering keeps copies on tape as extra, with force)',
  },
  unassigned: {
    method: 'GET',
    path: '/targets/unassigned',
    okStatus: 200,
    summary: 'unassigned: how many scanned targets, and how many bytes, wait in each pool for a tape',
  },
  tape_detail: {
    method: 'GET',
    path: '/tapes/{name}/files',
    pathParams: { name: 'tape' },
    okStatus: 200,
    summary: 'tape_detail: one row per tape file (number, state, size, target); with verbose a sha256sum -c line per file',
  },
  activate_tape: {
    method: 'POST',
    path: '/tapes/{name}/activate',
    pathParams: { name: 'name' },
    okStatus: 200,
    summary: 'activate_tape: make a registered tape the online tape of its pool (unknown, closed and broken tapes are refused)',
  },
  migrate: { method: 'POST', path: '/migrate', okStatus: 200, summary: 'migrate: upgrade a catalog written by release 0.3 to copies (idempotent)' },
  task: { method: 'GET', path: '/tasks/{id}', pathParams: { id: 'taskId' }, okStatus: 200, summary: 'task: where a write, verify or tape check stands' },
  restore: {
    method: 'POST',
    path: '/restores',
    okStatus: 202,
    summary: 'restore: read a confirmed copy of targets (or of a subtree or file) back to a directory, every file verified; one task per tape',
  },
  cancel: {
    method: 'POST',
    path: '/tasks/{id}/cancel',
    pathParams: { id: 'taskId' },
    okStatus: 200,
    summary: 'cancel: stop a queued or running restore cleanly',
  },
  where_is: {
    method: 'GET',
    path: '/files',
    okStatus: 200,
    summary: 'where_is: which targets and copies (pool, tape, file number, state) hold files of a base name, a relative path or a glob',
  },
  rebuild_catalog: {
    method: 'POST',
    path: '/catalog/rebuild',
    okStatus: 202,
    summary: 'rebuild_catalog: recreate the catalog from tapes alone (labels, headers, trailers; with verify every byte), into an empty catalog or merged',
  },
  scrub: {
    method: 'POST',
    path: '/scrubs',
    okStatus: 202,
    summary: 'scrub: re-read confirmed copies in full, oldest verification first, one tape at a time, within a budget of drive-hours',
  },
  repair: {
    method: 'POST',
    path: '/repairs',
    okStatus: 200,
    summary: 'repair: assign bad (or missing) copies to be written again, from another confirmed copy or from the unchanged source',
  },
  at_risk: {
    method: 'GET',
    path: '/at-risk',
    okStatus: 200,
    summary: 'at_risk: targets short of confirmed copies, copies overdue for scrub, tapes with errors, oldest data never read back (for monitoring)',
  },
  snapshot_tape: {
    method: 'POST',
    path: '/catalog/snapshots',
    okStatus: 202,
    summary: 'snapshot_tape: append the whole catalog to a closed tape as one more tape file (close_tape does it as it closes a tape)',
  },
  fetch_snapshot: {
    method: 'POST',
    path: '/catalog/snapshots/fetch',
    okStatus: 202,
    summary: 'fetch_snapshot: the agent writes the last catalog snapshot on a tape to a file on its host (restore_catalog --tape)',
  },
  reconcile: { method: 'POST', path: '/reconcile', okStatus: 200, summary: 'reconcile: re-send work whose task was lost or whose agent died' },
  discover: {
    method: 'POST',
    path: '/imports/scheduled',
    okStatus: 202,
    summary: 'scheduled import on demand: discover tasks for the import roots; what the agent finds is imported',
  },
  rescan: { method: 'POST', path: '/rescans', okStatus: 200, summary: 'rescan: scan targets again (failed scan, changed source, or a read-back that failed)' },
};
