/**
 * `status`: the whole archive at a glance for the operator: which tape is online, tapes set
 * aside and why, how many targets are in each state, and the tape tasks under way, with any
 * whose agent has gone silent (stale: reconcile drives them again).
 */
import { isStale, type TaskStatus } from '../catalog/task-status.ts';
import { TAPE_STATES, type TapeState } from '../domain/tape.ts';
import { TARGET_STATUSES, targetStatus, type TargetStatus } from '../domain/target.ts';
import type { JobContext } from './context.ts';

export interface StatusResult {
  onlineTape?: string;
  tapes: Record<TapeState, number>;
  /** Disabled and broken tapes, with the reason they were set aside. */
  setAside: { name: string; state: TapeState; reason?: string }[];
  targets: Record<TargetStatus, number>;
  tasks: {
    queued: number;
    running: number;
    /** Running, but no heartbeat from the agent for STALE_AFTER_SECONDS. */
    stale: { taskId: string; kind: TaskStatus['kind']; tapeName?: string; fileNumber?: number; heartbeatAt?: string }[];
  };
}

const TASK_KINDS = ['write', 'verify', 'check-tape'] as const;

export async function status(ctx: JobContext): Promise<StatusResult> {
  const [online, tapes, targets, ...tasks] = await Promise.all([
    ctx.catalog.getOnlineTapeName(),
    ctx.catalog.listTapes(),
    ctx.catalog.listAllTargets(),
    ...TASK_KINDS.map((k) => ctx.tasks.listUnfinished(k)),
  ]);
  const unfinished = tasks.flat();
  const now = ctx.now();
  const count = <K extends string>(keys: readonly K[], values: K[]) =>
    Object.fromEntries(keys.map((k) => [k, values.filter((v) => v === k).length])) as Record<K, number>;
  return {
    ...(online ? { onlineTape: online } : {}),
    tapes: count(
      TAPE_STATES,
      tapes.map((t) => t.state),
    ),
    setAside: tapes
      .filter((t) => t.state === 'disabled' || t.state === 'broken')
      .map((t) => ({ name: t.name, state: t.state, ...(t.reason ? { reason: t.reason } : {}) })),
    targets: count(TARGET_STATUSES, targets.map(targetStatus)),
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
