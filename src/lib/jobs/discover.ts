/**
 * Scheduled import: asks the agent to look for new target directories under configured roots
 * on the data hosts (e.g. every night's observations). Each root with its pattern becomes a
 * discover task; what the agent finds is imported by the results handler. Idempotent: known
 * directories are left as they are, so the schedule may fire as often as it likes.
 */
import { UsageError } from '../errors.ts';
import { normalizeTargetPath } from '../domain/import-list.ts';
import type { JobContext } from './context.ts';
import { discoverTask } from '../protocol/build-tasks.ts';

export interface DiscoverInput {
  /** `host:/path` or `/path` (default host); default: the configured import roots. */
  roots?: string[];
  /** Glob relative to each root, one segment per level; default: the configured pattern. */
  pattern?: string;
}

export interface DiscoverOutput {
  requested: { host: string; root: string; pattern: string; taskId: string }[];
}

export async function discover(ctx: JobContext, input: DiscoverInput): Promise<DiscoverOutput> {
  const roots = input.roots ?? ctx.config.importRoots;
  const pattern = input.pattern ?? ctx.config.importPattern;
  if (!roots.length) throw new UsageError('no import roots: pass --root host:/path (repeatable) or set TAPE_ARCHIVE_IMPORT_ROOTS.');
  if (!pattern || pattern.startsWith('/') || pattern.split('/').some((s) => s === '..' || s === '.' || s === '')) {
    throw new UsageError(`import pattern "${pattern ?? ''}" is invalid: give a glob relative to the root, one segment per level, e.g. "2026-*/obs-*".`);
  }
  const out: DiscoverOutput = { requested: [] };
  const now = ctx.now().toISOString();
  const parsed = roots.map((r) => {
    const m = /^([A-Za-z0-9.-]+):(\/.*)$/.exec(r);
    const host = m ? m[1]! : ctx.config.defaultHost;
    const { path, error } = normalizeTargetPath(m ? m[2]! : r);
    if (!path) throw new UsageError(`import root "${r}": ${error}`);
    return { host, root: path };
  });
  for (const { host, root } of parsed) {
    const task = discoverTask({ taskId: ctx.newId(), issuedAt: now }, host, root, pattern);
    await ctx.queues.sendTask(task);
    out.requested.push({ host, root, pattern, taskId: task.taskId });
  }
  return out;
}
