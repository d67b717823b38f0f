/**
 * run-job's `restore` and `cancel`: request a restore, wait for each of its tasks (one per
 * tape) with the progress bar, then say what was restored, skipped and failed, by name.
 */
import type { Command } from 'commander';
import type { TaskStatus } from '../lib/catalog/task-status.ts';
import { UsageError } from '../lib/errors.ts';
import type { JobName, JobOutput } from '../lib/jobs/registry.ts';

export interface CommandTools {
  job: <N extends JobName>(name: N, input: unknown) => Promise<JobOutput<N>>;
  print: (value: unknown, human: () => string) => void;
  out: (s: string) => void;
  json: () => boolean;
  awaitTask: (taskId: string, what: string) => Promise<TaskStatus>;
  /** The command failed in part (exit 1). */
  failed: () => void;
}

export function addRestoreCommands(program: Command, t: CommandTools): void {
  program
    .command('restore')
    .argument('[target]', 'target id (from "targets" or "where_is")')
    .argument('[paths...]', 'files or directories inside the target, relative to its root (default: all of it)')
    .description('restore a target, a subtree or a file from a confirmed copy, every file verified against the catalog')
    .requiredOption('--to <[host:]dir>', "directory the target root is restored to, on the agent's host or on a data host")
    .option('--from <pool|tape>', 'read the copy in this pool or on this tape (default: the first confirmed copy on a readable tape)')
    .option('--tape <name>', 'restore every target whose copy is on this tape, each under DIR/<name of its directory>, in one pass')
    .option('--targets <ids>', 'several targets, comma-separated, each under DIR/<name of its directory>')
    .option('--overwrite', 'replace existing files that differ (default: leave them and report them)')
    .option('--no-wait', 'only request the restore; follow it with "task ID --wait"')
    .action(
      async (
        target: string | undefined,
        paths: string[],
        o: { to: string; from?: string; tape?: string; targets?: string; overwrite?: boolean; wait: boolean },
      ) => {
        const ids = [
          ...(target ? [target] : []),
          ...(o.targets
            ? o.targets
                .split(',')
                .map((s) => s.trim())
                .filter(Boolean)
            : []),
        ];
        if (o.tape && ids.length) throw new UsageError('restore --tape takes no target: it restores every target on the tape.');
        const r = await t.job('restore', {
          ...(ids.length ? { targetIds: ids } : {}),
          ...(o.tape ? { tape: o.tape } : {}),
          ...(paths.length ? { paths } : {}),
          to: o.to,
          ...(o.from ? { from: o.from } : {}),
          overwrite: !!o.overwrite,
        });
        const requested = () =>
          r.tasks
            .map((x) => `restore of ${x.targets.length} target(s) from ${x.tape} (${x.pool}) to ${r.destination} requested; task ${x.taskId}`)
            .concat(r.leftOut.map((l) => `left out: ${l.targetId}: ${l.reason}`))
            .join('\n');
        if (!o.wait) {
          t.print(r, requested);
          return;
        }
        if (!t.json()) t.out(requested());
        const done: TaskStatus[] = [];
        for (const x of r.tasks) {
          const s = await t.awaitTask(x.taskId, `restore from ${x.tape}`);
          done.push(s);
          if (s.state !== 'succeeded') t.failed();
          if (!t.json()) t.out(restoreReport(s));
        }
        if (t.json()) t.print({ ...r, results: done }, () => '');
      },
    );

  program
    .command('cancel')
    .argument('<task>', 'task id of a restore')
    .description('stop a queued or running restore cleanly (what it verified stays; run the restore again to finish)')
    .action(async (taskId: string) => {
      const r = await t.job('cancel', { taskId });
      t.print(r, () => r.message);
    });
}

/** The end of a restore for the operator: the figures, then each failure by name. */
export function restoreReport(s: TaskStatus): string {
  const lines = [s.message ?? `${s.kind} ${s.taskId}: ${s.state}`];
  const r = s.restore;
  if (r) {
    for (const f of r.failures) lines.push(`  ${JSON.stringify(f.path)}${f.targetId ? ` (${f.targetId})` : ''}: ${f.reason}`);
    if (r.failed > r.failures.length) lines.push(`  ... and ${r.failed - r.failures.length} more (the agent's log names every one)`);
  }
  return lines.join('\n');
}
