/**
 * run-job's commands against rot on the shelf: `scrub` (re-read confirmed copies, oldest
 * verification first; with --wait, until each is done), `at_risk` (what needs an operator) and
 * `repair` (bad copies written again, from another copy or from the source).
 */
import type { Command } from 'commander';
import type { CommandTools } from './restore-commands.ts';

const list = (s: string) =>
  s
    .split(',')
    .map((x) => x.trim())
    .filter(Boolean);

export function addScrubCommands(program: Command, t: CommandTools): void {
  program
    .command('scrub')
    .description('re-read confirmed copies in full, oldest verification first, one tape at a time, within a budget of drive-hours')
    .option('--budget-hours <h>', 'drive-hours this run may spend (default: the configured scrub budget)', Number)
    .option('--max-files <n>', 'at most this many tape files', Number)
    .option('--older-than-days <d>', 'only copies last verified at least this many days ago', Number)
    .option('--tape <names>', 'only these tapes, comma-separated', list)
    .option('--wait', 'wait for every read-back and report each; exit 1 if any failed')
    .action(async (o: { budgetHours?: number; maxFiles?: number; olderThanDays?: number; tape?: string[]; wait?: boolean }) => {
      const r = await t.job('scrub', {
        ...(o.budgetHours !== undefined ? { budgetHours: o.budgetHours } : {}),
        ...(o.maxFiles !== undefined ? { maxFiles: o.maxFiles } : {}),
        ...(o.olderThanDays !== undefined ? { olderThanDays: o.olderThanDays } : {}),
        ...(o.tape ? { tapes: o.tape } : {}),
      });
      if (!o.wait)
        return t.print(r, () => [r.message, ...r.requested.map((q) => `  ${q.tape} file ${q.fileNumber} (${q.targetId}): task ${q.taskId}`)].join('\n'));
      if (!t.json()) t.out(r.message);
      const done = [];
      for (const q of r.requested) {
        const s = await t.awaitTask(q.taskId, `scrub of ${q.tape} file ${q.fileNumber}`);
        if (s.state !== 'succeeded') t.failed();
        done.push({ ...q, state: s.state, message: s.message ?? '' });
      }
      const bad = done.filter((d) => d.state !== 'succeeded');
      t.print({ ...r, results: done }, () =>
        [
          `scrub done: ${done.length - bad.length} of ${done.length} file(s) read back good${bad.length ? `, ${bad.length} BAD` : ''}.`,
          ...bad.map((d) => `  ${d.tape} file ${d.fileNumber} (${d.targetId}): ${d.message}`),
          ...(bad.length ? ['Next: "at_risk", then "archive" for the repairs started (or "repair" where none could start).'] : []),
        ].join('\n'),
      );
    });

  program
    .command('at_risk')
    .description('targets short of confirmed copies (bad copies first), copies overdue for scrub, tapes with errors, oldest data never read back')
    .option('--limit <n>', 'at most this many entries per list', Number)
    .action(async (o: { limit?: number }) => {
      const r = await t.job('at_risk', o.limit !== undefined ? { limit: o.limit } : {});
      t.print(r, () =>
        [
          r.message,
          ...r.targets.map(
            (x) =>
              `  ${x.id} ${x.host}:${x.path}: ${x.reason}, ${x.confirmed}/${x.required} confirmed (missing: ${x.missing.join(', ')})` +
              x.bad.map((b) => `; bad copy in ${b.pool} on ${b.tape ?? '?'} file ${b.fileNumber ?? '?'}`).join(''),
          ),
          ...r.tapesWithErrors.map((x) => `  tape ${x.name} (${x.state}): ${x.badFiles} bad file(s)${x.reason ? `; ${x.reason}` : ''}`),
          ...r.overdueScrub.slice(0, 10).map((x) => `  overdue: ${x.tape} file ${x.fileNumber} (${x.targetId}), last verified ${x.lastVerified || 'never'}`),
          ...r.oldestUnverified.slice(0, 10).map((x) => `  never read back: ${x.tape} file ${x.fileNumber} (${x.targetId}), written ${x.archivedAt}`),
        ].join('\n'),
      );
    });

  program
    .command('repair')
    .description('assign bad copies (or the missing copies of named targets) to be written again by archive, then confirmed')
    .option('--target <ids>', 'only these targets, comma-separated (also their missing copies)', list)
    .option('--pool <pool>', 'only copies in this pool')
    .option('--from <where>', 'auto (another confirmed copy if there is one, else the source), copy, or source', 'auto')
    .action(async (o: { target?: string[]; pool?: string; from: string }) => {
      const r = await t.job('repair', { ...(o.target ? { targetIds: o.target } : {}), ...(o.pool ? { pool: o.pool } : {}), from: o.from });
      if (r.refused.length) t.failed();
      t.print(r, () =>
        [
          r.message,
          ...r.assigned.map(
            (a) =>
              `  ${a.id} (${a.pool}): to ${a.tape}, from ${a.from === 'copy' ? `the copy ${a.fromFile}` : 'the source'}${a.badFile ? ` (bad: ${a.badFile})` : ''}`,
          ),
          ...r.refused.map((x) => `  refused ${x.id} (${x.pool}): ${x.reason}`),
        ].join('\n'),
      );
    });
}
