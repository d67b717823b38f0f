/**
 * `status`: the whole archive at a glance for the operator: which tape of each pool is online,
 * tapes set aside and why, how many targets are in each state and how many are safe (every
 * copy their policy requires confirmed), and the tape tasks under way, with any whose agent
 * has gone silent (stale: reconcile drives them again).
 */
import { isStale, type TaskStatus } from '../catalog/task-status.ts';
import { TAPE_STATES, type TapeState } from '../domain/tape.ts';
import { TARGET_STATUSES, type TargetStatus } from '../domain/target.ts';
import { copiesStatus, DEFAULT_POOL, overallStatus } from '../domain/copies.ts';
import type { JobContext } from './context.ts';
import { layoutRuns, TAPE_FILE_STATES, type TapeFileState } from '../domain/tape-file.ts';
import { resolveTape } from './tapes.ts';
import { unassigned } from './unassigned.ts';
import { assignedTo } from './close-tape.ts';
import { assessRisk } from '../domain/risk.ts';

export interface StatusResult {
  /** The online tape of the default pool, or of the only pool with one. */
  onlineTape?: string;
  /** The online tape of every pool that has one. */
  online: { pool: string; tape: string }[];
  tapes: Record<TapeState, number>;
  /** Disabled and broken tapes, with the reason they were set aside. */
  setAside: { name: string; state: TapeState; reason?: string }[];
  targets: Record<TargetStatus, number>;
  /** Targets with every required copy confirmed (their source may be deleted), and the rest. */
  copies: { safe: number; atRisk: number; bad: number; overdueScrub: number };
  tasks: {
    queued: number;
    running: number;
    /** Running, but no heartbeat from the agent for STALE_AFTER_SECONDS. */
    stale: { taskId: string; kind: TaskStatus['kind']; tapeName?: string; fileNumber?: number; heartbeatAt?: string }[];
  };
}

const TASK_KINDS = ['write', 'verify', 'check-tape', 'restore'] as const;

/** `status TAPE` (the predecessor's form): one tape's files per state with their bytes, its layout, what waits for it. */
export interface TapeStatus {
  name: string;
  pool: string;
  state: TapeState;
  files: Record<TapeFileState, { count: number; bytes: number }>;
  /** Runs of consecutive file numbers in one state: "1 - 41 : confirmed". */
  layout: { from: number; to: number; state: TapeFileState }[];
  /** Copies assigned to the tape and not yet written; scanned copies of its pool not assigned to any tape. */
  assigned: number;
  unassignedInPool: number;
}

export async function tapeStatus(ctx: JobContext, name: string): Promise<TapeStatus> {
  const tape = await resolveTape(ctx, name);
  const files = await ctx.catalog.listTapeFiles(tape.name);
  const perState = Object.fromEntries(
    TAPE_FILE_STATES.map((s) => {
      const of = files.filter((f) => f.state === s);
      return [s, { count: of.length, bytes: of.reduce((n, f) => n + (f.bytes ?? 0), 0) }];
    }),
  ) as TapeStatus['files'];
  // Counted as `unassigned` counts them.
  const waiting = (await unassigned(ctx, { pool: tape.pool })).count;
  return {
    name: tape.name,
    pool: tape.pool,
    state: tape.state,
    files: perState,
    layout: layoutRuns(files),
    assigned: (await assignedTo(ctx, tape)).length,
    unassignedInPool: waiting,
  };
}

export async function status(ctx: JobContext, input: { tape?: string } = {}): Promise<StatusResult & { tape?: TapeStatus }> {
  const one = input.tape !== undefined ? await tapeStatus(ctx, input.tape) : undefined;
  const [online, tapes, targets, ...tasks] = await Promise.all([
    ctx.catalog.listOnline(),
    ctx.catalog.listTapes(),
    ctx.catalog.listAllTargetCopies(),
    ...TASK_KINDS.map((k) => ctx.tasks.listUnfinished(k)),
  ]);
  const unfinished = tasks.flat();
  const now = ctx.now();
  const count = <K extends string>(keys: readonly K[], values: K[]) =>
    Object.fromEntries(keys.map((k) => [k, values.filter((v) => v === k).length])) as Record<K, number>;
  const main = online.find((o) => o.pool === DEFAULT_POOL) ?? (online.length === 1 ? online[0] : undefined);
  const safe = targets.filter((tc) => copiesStatus(tc.target.copies, tc.copies).safe).length;
  const overdueBefore = new Date(now.getTime() - ctx.config.scrub.intervalDays * 86_400_000).toISOString();
  const risk = assessRisk(targets, tapes, { overdueBefore, limit: 0 }).counts;
  return {
    ...(one ? { tape: one } : {}),
    ...(main ? { onlineTape: main.tapeName } : {}),
    online: online.map((o) => ({ pool: o.pool, tape: o.tapeName })),
    tapes: count(
      TAPE_STATES,
      tapes.map((t) => t.state),
    ),
    setAside: tapes
      .filter((t) => t.state === 'disabled' || t.state === 'broken')
      .map((t) => ({ name: t.name, state: t.state, ...(t.reason ? { reason: t.reason } : {}) })),
    targets: count(TARGET_STATUSES, targets.map(overallStatus)),
    copies: { safe, atRisk: targets.length - safe, bad: risk.badCopies, overdueScrub: risk.overdueScrub },
    tasks: {
      queued: unfinished.filter((s) => s.state === 'queued').length,
      running: unfinished.filter((s) => s.state === 'running').length,
      stale: unfinished
        .filter((s) => isStale(s, now))
        .map((s) => ({
          taskId: s.taskId,
          kind: s.kind,
          ...(s.tapeName ? { tapeName: s.tapeName } : {}),
          ...(s.fileNumber !== undefined ? { fileNumber: s.fileNumber } : {}),
          ...(s.heartbeatAt ? { heartbeatAt: s.heartbeatAt } : {}),
        })),
    },
  };
}
