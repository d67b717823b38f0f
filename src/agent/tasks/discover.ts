import { minimatch } from 'minimatch';
import { MAX_DISCOVERED_PER_REPORT } from '../../lib/protocol/results.ts';
import type { DiscoverTask } from '../../lib/protocol/tasks.ts';
import type { AgentDeps } from '../types.ts';
import { errorMessage } from '../../lib/errors.ts';

/**
 * Scheduled import, the agent's half: list the directories under a root on the data host that
 * match the pattern, and report them (in parts, so no report nears the message size limit).
 * Importing them is the results handler's half, idempotent like any import.
 */
export async function runDiscover(deps: AgentDeps, task: DiscoverTask, signal: AbortSignal): Promise<void> {
  const base = { kind: 'discover-result' as const, taskId: task.taskId, host: task.host, root: task.root };
  const depth = task.pattern.split('/').filter(Boolean).length;
  const found: string[] = [];
  try {
    const source = deps.sources.for(task.host);
    for await (const rel of source.listDirectories(task.root, depth, { signal })) {
      if (minimatch(rel, task.pattern, { dot: false })) found.push(`${task.root.replace(/\/$/, '')}/${rel}`);
    }
  } catch (e) {
    if (signal.aborted) throw e;
    await deps.reporter.report({ ...base, ok: false, error: errorMessage(e) });
    return;
  }
  const parts = Math.max(1, Math.ceil(found.length / MAX_DISCOVERED_PER_REPORT));
  for (let i = 0; i < parts; i++) {
    await deps.reporter.report({
      ...base,
      ok: true,
      paths: found.slice(i * MAX_DISCOVERED_PER_REPORT, (i + 1) * MAX_DISCOVERED_PER_REPORT),
      part: i + 1,
      parts,
    });
  }
  deps.log('info', 'discover complete', { taskId: task.taskId, host: task.host, root: task.root, pattern: task.pattern, found: found.length });
}
