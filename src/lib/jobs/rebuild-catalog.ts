/**
 * `rebuild_catalog [TAPE...] | --all [--verify] [--merge]`: the catalog rebuilt from tapes alone
 * (the agent reads them: agent/tasks/rebuild.ts; its reports are applied by
 * results/apply-rebuild.ts). Into an empty catalog, or one an earlier rebuild began (it goes on
 * where that one stopped: tapes read to their end are not read again); into any other only with
 * `--merge`, which adds what is missing and notes every disagreement without changing anything.
 */
import { validateTapeName } from '../domain/tape.ts';
import { ConflictError, UsageError } from '../errors.ts';
import { rebuildTask } from '../protocol/build-tasks.ts';
import { MAX_REBUILD_TAPES } from '../protocol/tasks.ts';
import type { JobContext } from './context.ts';
import { isStale } from '../catalog/task-status.ts';

export interface RebuildCatalogInput {
  tapes: string[];
  all: boolean;
  verify: boolean;
  merge: boolean;
}

export interface RebuildCatalogResult {
  status: 'requested';
  taskId: string;
  tapes: string[] | 'all';
  verify: boolean;
  merge: boolean;
  message: string;
}

/** Why the catalog may not take a rebuild without --merge, if it may not. */
async function notEmpty(ctx: JobContext): Promise<string | undefined> {
  const tapes = await ctx.catalog.listTapes();
  const own = tapes.filter((t) => !t.rebuilt);
  if (own.length)
    return `it holds ${own.length} tape(s) that were not rebuilt from tape (${own
      .slice(0, 5)
      .map((t) => t.name)
      .join(', ')}${own.length > 5 ? ', ...' : ''})`;
  if (!tapes.length && (await ctx.catalog.hasAny('target'))) return 'it holds targets';
  return undefined;
}

export async function rebuildCatalog(ctx: JobContext, input: RebuildCatalogInput): Promise<RebuildCatalogResult> {
  if (input.all === input.tapes.length > 0)
    throw new UsageError(
      input.all ? 'name tapes or use --all, not both.' : 'name the tapes to read ("rebuild_catalog TA0001 TA0002"), or --all for every tape in the library.',
    );
  if (input.tapes.length > MAX_REBUILD_TAPES) throw new UsageError(`at most ${MAX_REBUILD_TAPES} tapes per rebuild; run it again for the rest.`);
  const bad = input.tapes.map(validateTapeName).find(Boolean);
  if (bad) throw new UsageError(bad);
  const twice = input.tapes.find((t, i) => input.tapes.indexOf(t) !== i);
  if (twice) throw new UsageError(`tape ${twice} is named twice.`);
  // One at a time; a rebuild whose agent is not heard from any more (killed) does not hold the next one up.
  const running = (await ctx.tasks.listUnfinished('rebuild')).filter((s) => !isStale(s, ctx.now()));
  if (running.length)
    throw new ConflictError(
      `rebuild ${running[0]!.taskId} is still ${running[0]!.state}; follow it with "task ${running[0]!.taskId}" and start another when it is done.`,
    );
  if (!input.merge) {
    const why = await notEmpty(ctx);
    if (why)
      throw new ConflictError(
        `the catalog is not empty: ${why}. rebuild_catalog writes into an empty catalog (or continues a rebuild); add --merge to add what is missing and report every disagreement (nothing there is changed). Nothing was changed.`,
      );
  }
  const task = rebuildTask({ taskId: ctx.newId(), issuedAt: ctx.now().toISOString() }, { tapes: input.tapes, verify: input.verify, merge: input.merge });
  await ctx.tasks.create({ taskId: task.taskId, kind: 'rebuild', tapes: input.tapes, merge: input.merge, bytesTotal: 0, createdAt: task.issuedAt });
  await ctx.queues.sendTask(task);
  const which = input.all ? 'every tape in the library' : input.tapes.join(', ');
  return {
    status: 'requested',
    taskId: task.taskId,
    tapes: input.all ? 'all' : input.tapes,
    verify: input.verify,
    merge: input.merge,
    message: `rebuild of the catalog from ${which} requested (task ${task.taskId})${input.verify ? ', every file read back and checked' : ''}${input.merge ? ', merged into the catalog' : ''}.`,
  };
}
