/**
 * Writes test/fixtures/catalog-0.3: a catalog (both tables, item by item as DynamoDB holds
 * them) and the virtual tape it describes, made by release 0.3 running its own workflow, so
 * a later release's upgrade can be tested on data that release really wrote. Run once per
 * release whose items change: `npx tsx test/support/make-catalog-fixture.ts`.
 *
 * What it holds: targets run-0..run-4 under FIXTURE_ROOT (rebuilt by fixture-tree.ts);
 * tape1 (pool default) with file 1 confirmed, file 2 archived, run-2 and run-3 assigned to it,
 * run-4 scanned and unassigned; tape2 registered, empty and offline.
 */
import { cp, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { ScanCommand, type AttributeValue } from '@aws-sdk/client-dynamodb';
import { main } from '../../src/cli/run-job.ts';
import { freePort } from '../../src/local/free-port.ts';
import { startLocalSystem } from '../../src/local/local-system.ts';
import { FIXTURE_ROOT, makeFixtureTarget } from './fixture-tree.ts';
import { itemsToJson } from './dynamodb-json.ts';

export const FIXTURE_DIR = resolve(import.meta.dirname, '../fixtures/catalog-0.3');
export const FIXTURE_BLOCK_SIZE = 16 * 1024;

const work = await mkdtemp(join(tmpdir(), 'make-fixture-'));
const system = await startLocalSystem({ workDir: work, dynamodbPort: await freePort(), sqsPort: await freePort(), blockSize: FIXTURE_BLOCK_SIZE });
const env = { ...system.env, TAPE_ARCHIVE_CONFIG: '' };
const job = async (args: string[]) => {
  const out: string[] = [];
  const code = await main(args, { out: (s) => out.push(s), err: (s) => out.push(s), env, pollIntervalMs: 100 });
  if (code !== 0) throw new Error(`run-job ${args.join(' ')} exited ${code}: ${out.join('\n')}`);
  return out.join('\n');
};
try {
  const paths = [];
  for (let n = 0; n < 5; n++) paths.push(await makeFixtureTarget(n));
  await writeFile(join(work, 'list.txt'), `${paths.slice(0, 4).join('\n')}\n`);
  await job(['import', join(work, 'list.txt')]);
  const scanned = async () => (await system.ctx.catalog.listAllTargets()).every((t) => t.scan === 'complete');
  for (let i = 0; !(await scanned()); i++) {
    if (i > 300) throw new Error('scans did not complete');
    await new Promise((r) => setTimeout(r, 100));
  }
  await system.vtl.createTape('tape1', { capacityBytes: 100_000_000 });
  await job(['open_tape', '--new', 'tape1', '--capacity', '100M', '--barcode', 'FIX001L9']);
  await job(['assign']);
  await job(['archive']);
  await job(['archive']);
  await job(['confirm', 'next']);
  await writeFile(join(work, 'list2.txt'), `${paths[4]}\n`);
  await job(['import', join(work, 'list2.txt')]);
  for (let i = 0; (await system.ctx.catalog.listAllTargets()).some((t) => t.scan !== 'complete'); i++) {
    if (i > 300) throw new Error('scan did not complete');
    await new Promise((r) => setTimeout(r, 100));
  }
  await system.vtl.createTape('tape2', { capacityBytes: 100_000_000 });
  await job(['open_tape', '--new', 'tape2']);
  await job(['open_tape', 'tape1']);

  await rm(FIXTURE_DIR, { recursive: true, force: true });
  await mkdir(FIXTURE_DIR, { recursive: true });
  for (const [name, table] of [
    ['catalog', system.stack.config.names.catalogTable],
    ['manifests', system.stack.config.names.manifestTable],
  ] as const) {
    const items: Record<string, AttributeValue>[] = [];
    let start: Record<string, AttributeValue> | undefined;
    do {
      const page = await system.ctx.catalog.db.send(new ScanCommand({ TableName: table, ...(start ? { ExclusiveStartKey: start } : {}) }));
      items.push(...(page.Items ?? []));
      start = page.LastEvaluatedKey;
    } while (start);
    items.sort((a, b) => `${a.pk?.S}|${a.sk?.S}`.localeCompare(`${b.pk?.S}|${b.sk?.S}`));
    await writeFile(join(FIXTURE_DIR, `${name}.json`), itemsToJson(items));
  }
  await cp(join(work, 'vtl', 'tapes'), join(FIXTURE_DIR, 'tapes'), { recursive: true });
  await writeFile(
    join(FIXTURE_DIR, 'README.md'),
    `# Catalog written by release 0.3\n\nMade by \`npx tsx test/support/make-catalog-fixture.ts\` (see that file for what it holds). Its targets live under\n\`${FIXTURE_ROOT}\`, rebuilt byte for byte by \`test/support/fixture-tree.ts\`; the tapes were written with ${FIXTURE_BLOCK_SIZE}-byte blocks.\n`,
  );
  console.log(`wrote ${FIXTURE_DIR}`);
} finally {
  await system.stop();
  await rm(work, { recursive: true, force: true });
}
