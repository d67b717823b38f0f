/**
 * run-job's `snapshot_catalog --to FILE | --tape T` and `restore_catalog FILE | --tape T`: the
 * whole catalog (both tables) to a gzip'd JSON-lines file and back into an empty catalog
 * (lib/catalog/snapshot.ts), or through a tape: appended to a closed tape by the agent, and
 * read back from the last snapshot on a tape (jobs/snapshot-tape.ts). The file forms talk to
 * DynamoDB directly, as `bootstrap` does: not over the HTTP API.
 */
import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import type { Command } from 'commander';
import type { AwsClients } from '../lib/aws/clients.ts';
import { restoreCatalog, snapshotCatalog } from '../lib/catalog/snapshot.ts';
import type { Config } from '../lib/config.ts';
import { NotFoundError, UsageError } from '../lib/errors.ts';
import type { CommandTools } from './restore-commands.ts';

export interface CatalogCommandTools extends CommandTools {
  session: () => { config: Config; clients: AwsClients };
  overApi: () => boolean;
}

export function addCatalogCommands(program: Command, t: CatalogCommandTools): void {
  const direct = (name: string) => {
    if (t.overApi()) throw new UsageError(`${name} talks to DynamoDB directly; run it without --api, with the catalog's credentials.`);
    const s = t.session();
    return { db: s.clients.dynamodb, tables: { catalog: s.config.names.catalogTable, manifests: s.config.names.manifestTable } };
  };
  const load = async (file: string, from = file) => {
    const { db, tables } = direct('restore_catalog');
    const r = await restoreCatalog(db, tables, file);
    t.print(
      { file, ...r },
      () =>
        `catalog restored from ${from} (taken ${r.createdAt}): ${r.catalog} catalog item(s), ${r.manifests} manifest item(s). Check it with "status" and "tapes".`,
    );
  };
  program
    .command('snapshot_catalog')
    .description('write the whole catalog (both tables) to a gzip\'d JSON-lines file ("gzip -dc FILE | jq" reads it), or append it to a closed tape')
    .option('--to <file>', 'the file to write (never overwritten)')
    .option('--tape <name>', 'append it to this closed tape as one more tape file, written by the agent (close_tape does this itself)')
    .option('--no-wait', 'with --tape: only request it; follow it with "task ID --wait"')
    .action(async (o: { to?: string; tape?: string; wait: boolean }) => {
      if (!o.to === !o.tape) throw new UsageError('give --to FILE or --tape NAME (one of them)');
      if (o.tape) {
        const r = await t.job('snapshot_tape', { tape: o.tape });
        if (!o.wait) return t.print(r, () => r.message);
        const s = await t.awaitTask(r.taskId, `catalog snapshot on ${r.tape}`);
        if (s.state !== 'succeeded') t.failed();
        return t.print({ ...r, state: s.state, result: s.message ?? '' }, () => s.message ?? `${s.state}`);
      }
      const { db, tables } = direct('snapshot_catalog');
      const r = await snapshotCatalog(db, tables, o.to!, new Date());
      t.print({ file: o.to, ...r }, () => `catalog snapshot ${o.to}: ${r.catalog} catalog item(s), ${r.manifests} manifest item(s), sha256 ${r.sha256}`);
    });
  program
    .command('restore_catalog')
    .argument('[file]', 'a file written by snapshot_catalog')
    .description(
      'load a catalog snapshot (a file, or the last one on a tape) into an empty catalog; the whole snapshot is checked first, a damaged one loads nothing',
    )
    .option('--tape <name>', 'the last catalog snapshot on this tape: the agent reads it (no catalog needed) and writes it to --via')
    .option('--via <file>', 'with --tape: where the agent writes the snapshot (absolute; default ./catalog-<tape>-<time>.jsonl.gz)')
    .action(async (file: string | undefined, o: { tape?: string; via?: string }) => {
      if (!file === !o.tape) throw new UsageError('give a snapshot FILE or --tape NAME (one of them)');
      if (!o.tape) return load(file!);
      direct('restore_catalog');
      const via = resolve(o.via ?? `catalog-${o.tape}-${new Date().toISOString().replace(/[:.]/g, '-')}.jsonl.gz`);
      if (existsSync(via)) throw new UsageError(`${via} exists; name a new file with --via. Nothing was read.`);
      const r = await t.job('fetch_snapshot', { tape: o.tape, file: via });
      const s = await t.awaitTask(r.taskId, `reading the catalog snapshot on ${o.tape}`);
      if (s.state !== 'succeeded') throw new NotFoundError(`${s.message ?? `reading the snapshot on ${o.tape} ${s.state}`}. Nothing was loaded.`);
      if (!existsSync(via))
        throw new NotFoundError(`${s.message}; it is not on this machine: copy it here and run "restore_catalog FILE". Nothing was loaded.`);
      await load(via, `${via} (${s.message?.match(/file \d+ of \S+/)?.[0] ?? o.tape})`);
    });
}
