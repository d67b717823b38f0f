/**
 * run-job's `snapshot_catalog --to FILE` and `restore_catalog FILE`: the whole catalog (both
 * tables) to a gzip'd JSON-lines file and back into an empty catalog (lib/catalog/snapshot.ts).
 * They talk to DynamoDB directly, as `bootstrap` does: not over the HTTP API.
 */
import type { Command } from 'commander';
import type { AwsClients } from '../lib/aws/clients.ts';
import { restoreCatalog, snapshotCatalog } from '../lib/catalog/snapshot.ts';
import type { Config } from '../lib/config.ts';
import { UsageError } from '../lib/errors.ts';

export interface CatalogCommandTools {
  session: () => { config: Config; clients: AwsClients };
  print: (value: unknown, human: () => string) => void;
  overApi: () => boolean;
}

export function addCatalogCommands(program: Command, t: CatalogCommandTools): void {
  const direct = (name: string) => {
    if (t.overApi()) throw new UsageError(`${name} talks to DynamoDB directly; run it without --api, with the catalog's credentials.`);
    const s = t.session();
    return { db: s.clients.dynamodb, tables: { catalog: s.config.names.catalogTable, manifests: s.config.names.manifestTable } };
  };
  program
    .command('snapshot_catalog')
    .description('write the whole catalog (both tables) to a gzip\'d JSON-lines file: "gzip -dc FILE | jq" reads it')
    .requiredOption('--to <file>', 'the file to write (never overwritten)')
    .action(async (o: { to: string }) => {
      const { db, tables } = direct('snapshot_catalog');
      const r = await snapshotCatalog(db, tables, o.to, new Date());
      t.print({ file: o.to, ...r }, () => `catalog snapshot ${o.to}: ${r.catalog} catalog item(s), ${r.manifests} manifest item(s), sha256 ${r.sha256}`);
    });
  program
    .command('restore_catalog')
    .argument('<file>', 'a file written by snapshot_catalog')
    .description('load a catalog snapshot into an empty catalog (the whole file is checked first; a damaged one loads nothing)')
    .action(async (file: string) => {
      const { db, tables } = direct('restore_catalog');
      const r = await restoreCatalog(db, tables, file);
      t.print(
        { file, ...r },
        () =>
          `catalog restored from ${file} (taken ${r.createdAt}): ${r.catalog} catalog item(s), ${r.manifests} manifest item(s). Check it with "status" and "tapes".`,
      );
    });
}
