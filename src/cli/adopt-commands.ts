/**
 * run-job's `adopt_tapetown DB --host HOST [--pool P] [--copies POLICY] [--dry-run]`: a
 * tapetown database brought into the catalog (lib/tapetown/adopt.ts). It reads the sqlite file
 * on this machine and talks to DynamoDB directly, as restore_catalog does: not over the HTTP API.
 */
import { existsSync } from 'node:fs';
import type { Command } from 'commander';
import { parseCopyPolicy, validatePoolName } from '../lib/domain/copies.ts';
import { NotFoundError, UsageError } from '../lib/errors.ts';
import type { JobContext } from '../lib/jobs/context.ts';
import { adoptTapetown, type AdoptReport } from '../lib/tapetown/adopt.ts';
import type { CommandTools } from './restore-commands.ts';

export const TAPETOWN_POOL = 'tapetown';
/** Lines of the not-imported list printed (--json has all of them). */
const SHOWN = 50;

export interface AdoptCommandTools extends CommandTools {
  context: () => JobContext;
  overApi: () => boolean;
}

export function addAdoptCommands(program: Command, t: AdoptCommandTools): void {
  program
    .command('adopt_tapetown')
    .argument('<db>', "tapetown's sqlite database (read only: it is never written)")
    .description('bring a tapetown archive into the catalog: its tapes (read only for ever), targets, files and copies; --dry-run first')
    .requiredOption('--host <host>', 'the data host the targets are on (tapetown kept it only in tape.conf)')
    .option('--pool <pool>', 'the pool the tapetown tapes are put in', TAPETOWN_POOL)
    .option('--copies <pools>', 'the copy policy of the adopted targets: the current pools new copies go to (default: the configured policy)')
    .option('--dry-run', 'print what would be adopted and every oddity found; change nothing')
    .action(async (db: string, o: { host: string; pool: string; copies?: string; dryRun?: boolean }) => {
      if (t.overApi()) throw new UsageError('adopt_tapetown reads the database file here and talks to DynamoDB directly; run it without --api.');
      if (!existsSync(db)) throw new NotFoundError(`${db} does not exist; give the path of the tapetown database (tape.db). Nothing was changed.`);
      const badPool = validatePoolName(o.pool);
      if (badPool) throw new UsageError(badPool);
      if (!o.host.trim()) throw new UsageError("--host is empty; give the data host the targets are on, as in tape.conf's ssh_command (e.g. user@host).");
      const ctx = t.context();
      const policy = o.copies ? parseCopyPolicy(o.copies) : { policy: ctx.config.copies };
      if ('error' in policy) throw new UsageError(policy.error);
      if (policy.policy.includes(o.pool))
        throw new UsageError(
          `--copies names pool ${o.pool}, the pool the tapetown tapes go to: their copies would count for the policy and no new copy would be written. Give the current pools in --copies and another --pool. Nothing was changed.`,
        );
      const r = await adoptTapetown(ctx, { db, host: o.host, pool: o.pool, policy: policy.policy, dryRun: !!o.dryRun });
      t.print(r, () => adoptReport(r));
    });
}

/** The report for the operator: row counts that add up, the tapes, the notes, every row not imported. */
export function adoptReport(r: AdoptReport): string {
  const lines = [
    `${r.dryRun ? 'dry run, nothing changed: ' : ''}tapetown database ${r.db} (host ${r.host}, pool ${r.pool}; ${r.schema.parentId ? 'with' : 'without'} parent_id, ${r.schema.scanned ? 'with' : 'without'} scanned)`,
  ];
  const verb = r.dryRun ? 'to adopt' : 'adopted';
  for (const [table, c] of Object.entries(r.rows))
    lines.push(`  ${table}: ${c.rows} row(s): ${c.adopted} ${verb}, ${c.before} adopted before, ${c.reported} not imported (listed below)`);
  lines.push(`tapes (read only, format tapetown):`);
  for (const tape of r.tapes)
    lines.push(`  ${tape.name}: ${tape.state}, ${tape.files} file(s), ${tape.confirmed} confirmed by tapetown${tape.before ? ' (adopted before)' : ''}`);
  const c = r.targets;
  lines.push(
    `targets: ${c.adopted} ${verb}, ${c.before} adopted before; ${c.nested} with nested targets left out; ${c.withoutFileList} without a file list (imported with --no-scan: confirm takes a baseline from tape); ${c.notScanned} never scanned`,
  );
  lines.push(
    `copies: ${
      Object.entries(c.copies)
        .map(([k, n]) => `${n} ${k}`)
        .join(', ') || 'none'
    }`,
  );
  if (r.notes.length) lines.push(`${r.notes.length} note(s):`, ...r.notes.map((n) => `  ${n}`));
  if (r.notImported.length) {
    lines.push(`${r.notImported.length} row(s) not imported:`);
    for (const n of r.notImported.slice(0, SHOWN))
      lines.push(`  ${n.table} row ${n.id}${n.count && n.count > 1 ? ` and ${n.count - 1} more` : ''}: ${n.reason}`);
    if (r.notImported.length > SHOWN) lines.push(`  ... and ${r.notImported.length - SHOWN} more ("--json" lists them all)`);
  }
  lines.push(
    r.dryRun
      ? 'Next: run it again without --dry-run.'
      : 'Next: load each tapetown tape and "confirm --all --tape NAME": it checks every md5 and records exact sizes and SHA-256; then "assign" and "archive" give the targets new copies.',
  );
  return lines.join('\n');
}
