/**
 * Every job by its operator-facing name, with the schema of its input. The Lambda handlers,
 * the HTTP gateway and the local runner all go through `runJob`, so input validation and
 * behaviour are the same whichever way a job is started.
 */
import { z } from 'zod';
import { NotFoundError, UsageError } from '../errors.ts';
import { reconcile } from './reconcile.ts';
import { discover } from './discover.ts';
import { rescan } from './rescan.ts';
import { status } from './status.ts';
import { enableTape } from './enable-tape.ts';
import { removeTape } from './remove-tape.ts';
import { JOB_ACCESS } from '../resources/access.ts';
import { restrict, type JobContext } from './context.ts';
import { listTapes, openTape } from './tapes.ts';
import { importTargets, listTargets } from './targets.ts';
import { assign } from './assign.ts';
import { archive } from './archive.ts';
import { confirm } from './confirm.ts';
import { closeTape, planCloseTape } from './close-tape.ts';
import { setCopies } from './set-copies.ts';
import { migrate } from './migrate.ts';
import { unassigned } from './unassigned.ts';
import { tapeDetail } from './tape-detail.ts';
import { formatIssues } from '../validation.ts';
import { isStale } from '../catalog/task-status.ts';
import { MAX_REBUILD_TAPES, MAX_RESTORE_PATHS } from '../protocol/tasks.ts';
import { rebuildCatalog } from './rebuild-catalog.ts';
import { restore } from './restore.ts';
import { cancel } from './cancel.ts';
import { whereIs } from './where-is.ts';
import { scrub } from './scrub.ts';
import { repair } from './repair.ts';
import { atRisk } from './at-risk.ts';
import { fetchSnapshot, snapshotTape } from './snapshot-tape.ts';

const tapeName = z.string().min(1).max(64);
const poolName = z.string().min(1).max(64);
/** A number or a boolean that may also come as query-string text ("3", "true"). */
const fromQuery = <T extends z.ZodNumber | z.ZodBoolean>(s: T) =>
  z.preprocess((v) => (typeof v !== 'string' ? v : v === 'true' ? true : v === 'false' ? false : /^\d+$/.test(v) ? Number(v) : v), s);
const targetIds = z.array(z.string().min(1).max(64)).max(10_000);

export const jobInputSchemas = {
  tapes: z.object({ name: tapeName.optional() }).strict(),
  status: z.object({ tape: tapeName.optional() }).strict(),
  open_tape: z
    .object({
      name: tapeName,
      capacity: z.union([z.string().max(32), z.number().int().positive()]).optional(),
      barcode: z.string().max(16).optional(),
      pool: poolName.optional(),
      new: z.boolean().default(false),
    })
    .strict(),
  /** The predecessor's name: make a registered tape its pool's online tape (never registers one). */
  activate_tape: z.object({ name: tapeName }).strict(),
  enable_tape: z.object({ name: tapeName }).strict(),
  remove_tape: z.object({ name: tapeName }).strict(),
  import: z
    .object({
      content: z.string().max(5 * 1024 * 1024),
      source: z.string().max(256).default('import list'),
      skipInvalid: z.boolean().default(false),
      /** The copy policy of the new targets (default: the configured `copies`). */
      copies: z.array(poolName).min(1).max(16).optional(),
    })
    .strict(),
  assign: z.object({ tape: tapeName.optional(), targetIds: targetIds.optional() }).strict(),
  /** tape: only if this is (still) the online tape of its pool; archive --all passes the tape it began on. */
  archive: z.object({ tape: tapeName.optional(), pool: poolName.optional() }).strict(),
  confirm: z
    .object({
      which: z.string().min(1).max(32).default('next'),
      tape: tapeName.optional(),
      pool: poolName.optional(),
      retry: z.boolean().default(false),
      noDbUpdate: z.boolean().default(false),
    })
    .strict(),
  close_tape: z.object({ tape: tapeName.optional(), pool: poolName.optional(), yes: z.boolean().default(false) }).strict(),
  targets: z.object({ state: z.string().max(32).optional(), tape: tapeName.optional(), pool: poolName.optional() }).strict(),
  set_copies: z
    .object({
      pools: z.array(poolName).min(1).max(16),
      targetIds: targetIds.optional(),
      allImported: z.boolean().default(false),
      force: z.boolean().default(false),
    })
    .strict(),
  migrate: z.object({}).strict(),
  unassigned: z.object({ pool: poolName.optional() }).strict(),
  tape_detail: z
    .object({
      tape: tapeName.optional(),
      pool: poolName.optional(),
      fileNumber: fromQuery(z.number().int()).optional(),
      verbose: fromQuery(z.boolean()).default(false),
    })
    .strict(),
  reconcile: z
    .object({
      olderThanSeconds: z
        .number()
        .int()
        .min(0)
        .max(30 * 24 * 3600)
        .optional(),
      staleAfterSeconds: z
        .number()
        .int()
        .min(0)
        .max(24 * 3600)
        .optional(),
    })
    .strict(),
  task: z.object({ taskId: z.string().uuid() }).strict(),
  restore: z
    .object({
      targetIds: targetIds.optional(),
      tape: tapeName.optional(),
      paths: z.array(z.string().min(1).max(4096)).max(MAX_RESTORE_PATHS).optional(),
      /** [HOST:]DIR */
      to: z.string().min(1).max(4096),
      /** A pool or a tape: the copy to read. */
      from: z.string().min(1).max(64).optional(),
      overwrite: z.boolean().default(false),
    })
    .strict(),
  cancel: z.object({ taskId: z.string().uuid() }).strict(),
  /** A base name, a path relative to the target root, or a glob (domain/name-pattern.ts). */
  where_is: z
    .object({
      pattern: z.string().min(1).max(4096),
      target: z.string().min(1).max(64).optional(),
      limit: fromQuery(z.number().int().min(1).max(10_000)).optional(),
    })
    .strict(),
  rescan: z.object({ targetIds: targetIds.optional(), failed: z.boolean().default(false) }).strict(),
  discover: z.object({ roots: z.array(z.string().min(2).max(4096)).max(100).optional(), pattern: z.string().min(1).max(256).optional() }).strict(),
  rebuild_catalog: z
    .object({
      tapes: z.array(tapeName).max(MAX_REBUILD_TAPES).default([]),
      all: z.boolean().default(false),
      verify: z.boolean().default(false),
      merge: z.boolean().default(false),
    })
    .strict(),
  scrub: z
    .object({
      budgetHours: fromQuery(z.number().positive().max(24)).optional(),
      maxFiles: fromQuery(z.number().int().min(1).max(100_000)).optional(),
      olderThanDays: fromQuery(z.number().min(0).max(36_500)).optional(),
      tapes: z.array(tapeName).max(MAX_REBUILD_TAPES).optional(),
    })
    .strict(),
  repair: z
    .object({
      targetIds: targetIds.optional(),
      pool: poolName.optional(),
      from: z.enum(['auto', 'copy', 'source']).default('auto'),
    })
    .strict(),
  at_risk: z.object({ limit: fromQuery(z.number().int().min(1).max(10_000)).optional() }).strict(),
  snapshot_tape: z.object({ tape: tapeName }).strict(),
  fetch_snapshot: z.object({ tape: tapeName, file: z.string().min(2).max(4096) }).strict(),
} as const;

export type JobName = keyof typeof jobInputSchemas;
export type JobInput<N extends JobName> = z.output<(typeof jobInputSchemas)[N]>;
export const JOB_NAMES = Object.keys(jobInputSchemas) as JobName[];

async function closeTapeJob(ctx: JobContext, input: JobInput<'close_tape'>) {
  const plan = await planCloseTape(ctx, input.tape, input.pool);
  if (!input.yes && !plan.alreadyClosed) {
    return {
      status: 'needs-confirmation' as const,
      tape: plan.tape.name,
      warnings: plan.warnings,
      toRelease: plan.toRelease.map((c) => c.targetId),
      message: `closing ${plan.tape.name} needs confirmation; nothing was changed. Repeat with yes (CLI: --yes).`,
    };
  }
  return { status: 'closed' as const, ...(await closeTape(ctx, plan)) };
}

const runners = {
  tapes: (ctx: JobContext, i: JobInput<'tapes'>) => listTapes(ctx, i),
  status: (ctx: JobContext, i: JobInput<'status'>) => status(ctx, i),
  open_tape: (ctx: JobContext, i: JobInput<'open_tape'>) => openTape(ctx, i),
  activate_tape: async (ctx: JobContext, i: JobInput<'activate_tape'>) => {
    if (!(await ctx.catalog.getTape(i.name)))
      throw new NotFoundError(
        `tape ${i.name} is not registered; activate_tape only brings a registered tape online. Register a new one with "open_tape ${i.name} --new", or check the name with "tapes".`,
      );
    return openTape(ctx, { name: i.name, new: false });
  },
  enable_tape: (ctx: JobContext, i: JobInput<'enable_tape'>) => enableTape(ctx, i),
  remove_tape: (ctx: JobContext, i: JobInput<'remove_tape'>) => removeTape(ctx, i),
  import: (ctx: JobContext, i: JobInput<'import'>) => importTargets(ctx, i),
  assign: (ctx: JobContext, i: JobInput<'assign'>) => assign(ctx, i),
  archive: (ctx: JobContext, i: JobInput<'archive'>) => archive(ctx, i),
  confirm: (ctx: JobContext, i: JobInput<'confirm'>) => confirm(ctx, i),
  close_tape: closeTapeJob,
  targets: (ctx: JobContext, i: JobInput<'targets'>) => listTargets(ctx, i),
  set_copies: (ctx: JobContext, i: JobInput<'set_copies'>) => setCopies(ctx, i),
  migrate: (ctx: JobContext) => migrate(ctx),
  unassigned: (ctx: JobContext, i: JobInput<'unassigned'>) => unassigned(ctx, i),
  tape_detail: (ctx: JobContext, i: JobInput<'tape_detail'>) => tapeDetail(ctx, i),
  reconcile: (ctx: JobContext, i: JobInput<'reconcile'>) => reconcile(ctx, i),
  discover: (ctx: JobContext, i: JobInput<'discover'>) => discover(ctx, i),
  rescan: (ctx: JobContext, i: JobInput<'rescan'>) => rescan(ctx, i),
  task: async (ctx: JobContext, i: JobInput<'task'>) => {
    const status = await ctx.tasks.get(i.taskId);
    if (!status) throw new NotFoundError(`no task ${i.taskId}; task ids are printed by archive and confirm.`);
    // Running but no heartbeat: the agent died or lost it; reconcile drives it again.
    return { ...status, stale: isStale(status, ctx.now()) };
  },
  restore: (ctx: JobContext, i: JobInput<'restore'>) => restore(ctx, i),
  cancel: (ctx: JobContext, i: JobInput<'cancel'>) => cancel(ctx, i),
  where_is: (ctx: JobContext, i: JobInput<'where_is'>) => whereIs(ctx, i),
  rebuild_catalog: (ctx: JobContext, i: JobInput<'rebuild_catalog'>) => rebuildCatalog(ctx, i),
  scrub: (ctx: JobContext, i: JobInput<'scrub'>) => scrub(ctx, i),
  repair: (ctx: JobContext, i: JobInput<'repair'>) => repair(ctx, i),
  at_risk: (ctx: JobContext, i: JobInput<'at_risk'>) => atRisk(ctx, i),
  snapshot_tape: (ctx: JobContext, i: JobInput<'snapshot_tape'>) => snapshotTape(ctx, i),
  fetch_snapshot: (ctx: JobContext, i: JobInput<'fetch_snapshot'>) => fetchSnapshot(ctx, i),
} satisfies { [N in JobName]: (ctx: JobContext, input: JobInput<N>) => Promise<unknown> };

export type JobOutput<N extends JobName> = Awaited<ReturnType<(typeof runners)[N]>>;

/** Validates raw input against the job's schema (unknown fields refused) and runs it. */
export async function runJob<N extends JobName>(ctx: JobContext, name: N, rawInput: unknown): Promise<JobOutput<N>> {
  const schema = jobInputSchemas[name];
  if (!schema) throw new UsageError(`unknown job "${String(name)}"; jobs are: ${JOB_NAMES.join(', ')}.`);
  const parsed = schema.safeParse(rawInput ?? {});
  if (!parsed.success) {
    const issues = formatIssues(parsed.error, '(input)');
    throw new UsageError(`invalid input for ${name}: ${issues}`);
  }
  const run = runners[name] as (ctx: JobContext, input: unknown) => Promise<JobOutput<N>>;
  // A job touches only the tables and queues it declares (resources/access.ts).
  return run(restrict(ctx, JOB_ACCESS[name], `job ${name}`), parsed.data);
}
