/**
 * What each piece of code may touch: tables it reads or writes, queues it sends to or
 * receives from. One declaration per job, per Lambda function and for the agent. From it:
 * - the IAM statements every function's role must hold (iam.ts; the template test checks
 *   serverless.yml against them);
 * - a guard on the AWS clients handed to a job (guard.ts): a call to a table or queue the
 *   declaration does not name throws, in tests and in production alike, instead of failing
 *   only on AWS with AccessDenied.
 */
import type { JobName } from '../jobs/registry.ts';
import type { QueueKey } from './definitions.ts';

export type TableKey = 'catalog' | 'manifests';

export interface Access {
  /** Tables read (GetItem, Query, Scan). */
  read?: readonly TableKey[];
  /** Tables written (Put/Update/Delete/ConditionCheck, transactions, batch writes); implies read. */
  write?: readonly TableKey[];
  /** Queues sent to (SendMessage, GetQueueUrl). */
  send?: readonly QueueKey[];
  /** Queues consumed (ReceiveMessage, DeleteMessage, ChangeMessageVisibility, GetQueueAttributes). */
  receive?: readonly QueueKey[];
  /** Dead-letter queues sent to (poison messages moved at once). */
  deadLetter?: readonly QueueKey[];
}

/** Every job of the registry (src/lib/jobs/registry.ts), by name. */
export const JOB_ACCESS = {
  tapes: { read: ['catalog'] },
  status: { read: ['catalog'] },
  open_tape: { write: ['catalog'] },
  // the agent checks the tape; the results consumer enables it
  enable_tape: { write: ['catalog'], send: ['tasks'] },
  remove_tape: { write: ['catalog'] },
  import: { write: ['catalog'], send: ['scans'] },
  assign: { write: ['catalog'] },
  archive: { write: ['catalog'], send: ['tasks'] },
  confirm: { write: ['catalog'], send: ['tasks'] },
  close_tape: { write: ['catalog'], send: ['tasks'] },
  targets: { read: ['catalog'] },
  set_copies: { write: ['catalog'] },
  // and builds the name index of manifests stored before release 0.5
  migrate: { write: ['catalog', 'manifests'] },
  unassigned: { read: ['catalog'] },
  tape_detail: { read: ['catalog', 'manifests'] },
  activate_tape: { write: ['catalog'] },
  reconcile: { write: ['catalog'], send: ['tasks', 'scans'] },
  task: { read: ['catalog'] },
  // the agent reads the tape and writes the files; only task status items change
  restore: { read: ['manifests'], write: ['catalog'], send: ['tasks'] },
  cancel: { write: ['catalog'] },
  where_is: { read: ['catalog', 'manifests'] },
  rescan: { write: ['catalog'], send: ['scans'] },
  // discover tasks go on the scan queue; their results are imported by the results consumer
  discover: { send: ['scans'] },
  // the agent reads the tapes and stores the manifests; the results consumer writes the catalog
  rebuild_catalog: { write: ['catalog'], send: ['tasks'] },
  scrub: { write: ['catalog'], send: ['tasks'] },
  repair: { write: ['catalog'] },
  at_risk: { read: ['catalog'] },
  snapshot_tape: { write: ['catalog'], send: ['tasks'] },
  fetch_snapshot: { write: ['catalog'], send: ['tasks'] },
} as const satisfies Record<JobName, Access>;

export type DeclaredJob = keyof typeof JOB_ACCESS;

/**
 * The results consumer (Lambda results handler and local results pump): applies reports to
 * the catalog; a discover report imports the targets it found, which sends their scans.
 */
export const RESULTS_ACCESS: Access = { write: ['catalog'], send: ['scans'], receive: ['results'], deadLetter: ['results'] };

/** The on-premise agent: reads the catalog, writes manifest pages, reports on the results queue. */
export const AGENT_ACCESS: Access = { read: ['catalog'], write: ['manifests'], send: ['results'], receive: ['tasks', 'scans'], deadLetter: ['tasks', 'scans'] };

/** The union of several declarations. */
export function union(...all: Access[]): Access {
  const merge = <K extends keyof Access>(k: K) => [...new Set(all.flatMap((a) => (a[k] ?? []) as string[]))].sort() as never;
  const out: Access = {};
  for (const k of ['read', 'write', 'send', 'receive', 'deadLetter'] as const) {
    const v = merge(k) as string[];
    if (v.length) (out as Record<string, string[]>)[k] = v;
  }
  return out;
}

/** Idempotency keys of mutating HTTP routes are items of the catalog table. */
const IDEMPOTENCY: Access = { write: ['catalog'] };

/** A Lambda function of serverless.yml: its handler export, the job it runs, what it may touch. */
export interface FunctionDecl {
  /** `<module in src/handlers>.<export>`, as in serverless.yml's `handler`. */
  handler: string;
  job?: DeclaredJob;
  /** A mutating HTTP route: honours Idempotency-Key (its items are in the catalog table). */
  mutating?: boolean;
  access: Access;
}

const httpJob = (handler: string, job: DeclaredJob, mutating = false): FunctionDecl => ({
  handler: `jobs.${handler}`,
  job,
  mutating,
  access: mutating ? union(JOB_ACCESS[job], IDEMPOTENCY) : JOB_ACCESS[job],
});

/** Every function of serverless.yml, by function name; the template test checks each role. */
export const FUNCTIONS = {
  tapes: httpJob('tapes', 'tapes'),
  status: httpJob('status', 'status'),
  openTape: httpJob('openTape', 'open_tape', true),
  closeTape: httpJob('closeTape', 'close_tape', true),
  enableTape: httpJob('enableTape', 'enable_tape', true),
  removeTape: httpJob('removeTape', 'remove_tape', true),
  importTargets: httpJob('importTargets', 'import', true),
  assign: httpJob('assign', 'assign', true),
  archive: httpJob('archive', 'archive', true),
  confirm: httpJob('confirm', 'confirm', true),
  targets: httpJob('targets', 'targets'),
  setCopies: httpJob('setCopies', 'set_copies', true),
  migrate: httpJob('migrate', 'migrate', true),
  unassigned: httpJob('unassigned', 'unassigned'),
  tapeDetail: httpJob('tapeDetail', 'tape_detail'),
  activateTape: httpJob('activateTape', 'activate_tape', true),
  task: httpJob('task', 'task'),
  restore: httpJob('restore', 'restore', true),
  cancel: httpJob('cancel', 'cancel', true),
  whereIs: httpJob('whereIs', 'where_is'),
  rebuildCatalog: httpJob('rebuildCatalog', 'rebuild_catalog', true),
  scrubNow: httpJob('scrub', 'scrub', true),
  repair: httpJob('repair', 'repair', true),
  atRisk: httpJob('atRisk', 'at_risk'),
  snapshotTape: httpJob('snapshotTape', 'snapshot_tape', true),
  fetchSnapshot: httpJob('fetchSnapshot', 'fetch_snapshot', true),
  reconcileNow: httpJob('reconcile', 'reconcile', true),
  rescan: httpJob('rescan', 'rescan', true),
  discoverNow: httpJob('discover', 'discover', true),
  results: { handler: 'results.handler', access: RESULTS_ACCESS },
  reconcile: { handler: 'scheduled.reconcile', job: 'reconcile', access: JOB_ACCESS.reconcile },
  scheduledImport: { handler: 'scheduled.scheduledImport', job: 'discover', access: JOB_ACCESS.discover },
  scheduledScrub: { handler: 'scheduled.scrub', job: 'scrub', access: JOB_ACCESS.scrub },
} as const satisfies Record<string, FunctionDecl>;

export type FunctionName = keyof typeof FUNCTIONS;
