/**
 * Catalog snapshots: both tables, every item, in one gzip'd file of JSON lines that standard
 * tools read (`gzip -dc FILE | jq -c .`):
 *
 *   {"format":"tape-archive-catalog/1","createdAt":"...","tables":{"catalog":"<name>","manifests":"<name>"}}
 *   {"t":"catalog","item":{<the item in DynamoDB JSON: binary as base64>}}      one line per item
 *   {"t":"manifests","item":{...}}
 *   {"end":true,"items":{"catalog":N,"manifests":M},"sha256":"<of every item line, each with its newline>"}
 *
 * `restoreCatalog` loads a snapshot into empty tables only, after reading the whole file once to
 * check it (format, end line, counts, digest): a truncated or damaged file loads nothing.
 */
import { createHash } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { access, rename, rm } from 'node:fs/promises';
import { createInterface } from 'node:readline';
import { pipeline } from 'node:stream/promises';
import { createGunzip, createGzip } from 'node:zlib';
import { ScanCommand, type DynamoDBClient, type ScanCommandInput } from '@aws-sdk/client-dynamodb';
import { z } from 'zod';
import { ConflictError, ValidationError } from '../errors.ts';
import { BatchWriter } from './batch-writer.ts';
import { decodeItem, encodeItem, type Item } from './dynamodb-json.ts';

export const SNAPSHOT_FORMAT = 'tape-archive-catalog/1';
const TABLE_KEYS = ['catalog', 'manifests'] as const;
export type TableKey = (typeof TABLE_KEYS)[number];
export type SnapshotTables = Record<TableKey, string>;
export interface SnapshotCounts {
  catalog: number;
  manifests: number;
}

const headSchema = z.object({ format: z.literal(SNAPSHOT_FORMAT), createdAt: z.string(), tables: z.object({ catalog: z.string(), manifests: z.string() }) });
const lineSchema = z.object({ t: z.enum(TABLE_KEYS), item: z.record(z.string(), z.record(z.string(), z.unknown())) });
const endSchema = z.object({ end: z.literal(true), items: z.object({ catalog: z.number().int(), manifests: z.number().int() }), sha256: z.string() });

async function* scanTable(db: DynamoDBClient, tableName: string, limit?: number): AsyncGenerator<Item> {
  let start: ScanCommandInput['ExclusiveStartKey'];
  do {
    const out = await db.send(new ScanCommand({ TableName: tableName, ExclusiveStartKey: start, ConsistentRead: true, ...(limit ? { Limit: limit } : {}) }));
    for (const item of out.Items ?? []) yield item;
    start = limit ? undefined : out.LastEvaluatedKey;
  } while (start);
}

/**
 * Writes every item of both tables to `file` (refused if it exists); returns the counts.
 * `adjust` may change an item as it is written (a snapshot on tape records its own tape as it
 * will be once the snapshot is on it).
 */
export async function snapshotCatalog(
  db: DynamoDBClient,
  tables: SnapshotTables,
  file: string,
  now: Date,
  adjust: (table: TableKey, item: Item) => Item = (_t, item) => item,
): Promise<SnapshotCounts & { sha256: string }> {
  if (
    await access(file).then(
      () => true,
      () => false,
    )
  )
    throw new ConflictError(`${file} exists; a snapshot never overwrites a file: name a new one.`);
  const part = `${file}.part`;
  const counts: SnapshotCounts = { catalog: 0, manifests: 0 };
  const h = createHash('sha256');
  async function* lines(): AsyncGenerator<string> {
    yield `${JSON.stringify({ format: SNAPSHOT_FORMAT, createdAt: now.toISOString(), tables })}\n`;
    for (const t of TABLE_KEYS) {
      for await (const item of scanTable(db, tables[t])) {
        const line = `${JSON.stringify({ t, item: encodeItem(adjust(t, item)) })}\n`;
        h.update(line);
        counts[t]++;
        yield line;
      }
    }
    yield `${JSON.stringify({ end: true, items: counts, sha256: h.copy().digest('hex') })}\n`;
  }
  try {
    await pipeline(lines(), createGzip(), createWriteStream(part, { flags: 'wx' }));
    await rename(part, file);
  } catch (e) {
    await rm(part, { force: true });
    throw e;
  }
  return { ...counts, sha256: h.digest('hex') };
}

async function* readLines(file: string): AsyncGenerator<string> {
  const input = createReadStream(file).pipe(createGunzip());
  yield* createInterface({ input, crlfDelay: Number.POSITIVE_INFINITY });
}

/** Reads the whole snapshot once: its head and end, or what is wrong with it. */
async function checkSnapshot(file: string): Promise<{ head: z.infer<typeof headSchema>; counts: SnapshotCounts }> {
  const bad = (why: string) => new ValidationError(`${file} is not a complete catalog snapshot: ${why}; nothing was loaded.`);
  let head: z.infer<typeof headSchema> | undefined;
  let end: z.infer<typeof endSchema> | undefined;
  const counts: SnapshotCounts = { catalog: 0, manifests: 0 };
  const h = createHash('sha256');
  let n = 0;
  try {
    for await (const text of readLines(file)) {
      n++;
      if (end) throw bad(`text after its end line (line ${n})`);
      const value: unknown = JSON.parse(text);
      if (n === 1) {
        const r = headSchema.safeParse(value);
        if (!r.success) throw bad(`its first line is not a ${SNAPSHOT_FORMAT} head`);
        head = r.data;
        continue;
      }
      const e = endSchema.safeParse(value);
      if (e.success) {
        end = e.data;
        continue;
      }
      const r = lineSchema.safeParse(value);
      if (!r.success) throw bad(`line ${n} is neither an item nor the end`);
      h.update(`${text}\n`);
      counts[r.data.t]++;
    }
  } catch (e) {
    if (e instanceof ValidationError) throw e;
    throw bad(`it cannot be read (${(e as Error).message})`);
  }
  if (!head) throw bad('it is empty');
  if (!end) throw bad('it has no end line (cut short?)');
  if (end.items.catalog !== counts.catalog || end.items.manifests !== counts.manifests || end.sha256 !== h.digest('hex')) {
    throw bad('its items do not match its end line (damaged)');
  }
  return { head, counts };
}

/** Loads a snapshot into the (empty) tables; returns what was loaded. */
export async function restoreCatalog(db: DynamoDBClient, tables: SnapshotTables, file: string): Promise<SnapshotCounts & { createdAt: string }> {
  const { head, counts } = await checkSnapshot(file);
  for (const t of TABLE_KEYS) {
    // Task status items are history, not the catalog (restore_catalog --tape has just made one).
    for await (const item of scanTable(db, tables[t])) {
      if (item.pk?.S?.startsWith('TASK#')) continue;
      throw new ConflictError(
        `table ${tables[t]} is not empty; restore_catalog loads a snapshot into an empty catalog only (nothing was loaded). Check the configured prefix, or delete the tables and run "run-job bootstrap" first.`,
      );
    }
  }
  const writer = (table: string) => new BatchWriter(db, table, { concurrency: 4, what: 'snapshot items', marshalled: true });
  const writers = { catalog: writer(tables.catalog), manifests: writer(tables.manifests) };
  let n = 0;
  for await (const text of readLines(file)) {
    if (n++ === 0) continue;
    const r = lineSchema.safeParse(JSON.parse(text));
    if (r.success) await writers[r.data.t].put([decodeItem(r.data.item as Record<string, Record<string, unknown>>)]);
  }
  await writers.catalog.done();
  await writers.manifests.done();
  return { ...counts, createdAt: head.createdAt };
}
