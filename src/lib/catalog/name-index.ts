/**
 * The name index `where_is` answers from, in the manifest table beside the pages it comes from:
 *
 *   index item   pk NAME#<base name>   sk <targetId>#<scanId>#<page 000000>#<part 000>
 *   done marker  pk <targetId>         sk <scanId>~names    (every index item of that scan is stored)
 *
 * One index item per base name per manifest page, with every entry of that name on the page
 * (split into parts when they would not fit an item). Looking up a base name is one Query on
 * its partition, whatever the size of the archive; a later scan of a target adds items under
 * its own scan id, and `where_is` keeps only the scans that are current or on a tape.
 */
import { PutItemCommand, QueryCommand, ScanCommand, type DynamoDBClient, type QueryCommandInput, type ScanCommandInput } from '@aws-sdk/client-dynamodb';
import { marshall, unmarshall } from '@aws-sdk/util-dynamodb';
import { z } from 'zod';
import { baseName } from '../domain/name-pattern.ts';
import { BatchWriter } from './batch-writer.ts';
import type { EntryType, ManifestEntry } from '../domain/manifest.ts';

/** JSON bytes of entries per index item (DynamoDB's item limit is 400 KB). */
const PART_BYTES = 200_000;

/** One indexed name: what `where_is` prints about it. */
export interface IndexedName {
  path: string;
  rawPath?: string;
  type: EntryType;
  size: number;
  sha256?: string;
}

export interface IndexHit extends IndexedName {
  targetId: string;
  scanId: string;
}

const indexedSchema = z.object({
  p: z.string(),
  r: z.string().optional(),
  t: z.enum(['file', 'dir', 'symlink']),
  s: z.number(),
  h: z.string().optional(),
});

export const nameKeys = {
  partition: (name: string) => `NAME#${name}`,
  sort: (targetId: string, scanId: string, page: number, part: number) =>
    `${targetId}#${scanId}#${String(page).padStart(6, '0')}#${String(part).padStart(3, '0')}`,
  marker: (targetId: string, scanId: string) => ({ pk: targetId, sk: `${scanId}~names` }),
};

function compact(e: ManifestEntry): z.infer<typeof indexedSchema> {
  return {
    p: e.path,
    ...(e.rawPath !== undefined ? { r: e.rawPath } : {}),
    t: e.type,
    s: e.size,
    ...(e.sha256 !== undefined ? { h: e.sha256 } : {}),
  };
}

/** The index items of one manifest page (pure: the ManifestStore sends them with the page). */
export function nameIndexItems(targetId: string, scanId: string, page: number, entries: readonly ManifestEntry[]): Record<string, unknown>[] {
  const byName = new Map<string, z.infer<typeof indexedSchema>[]>();
  for (const e of entries) {
    const name = baseName(e.path);
    let list = byName.get(name);
    if (!list) byName.set(name, (list = []));
    list.push(compact(e));
  }
  const items: Record<string, unknown>[] = [];
  for (const [name, list] of byName) {
    let part = 0;
    let chunk: typeof list = [];
    let bytes = 0;
    const close = () => {
      items.push({ pk: nameKeys.partition(name), sk: nameKeys.sort(targetId, scanId, page, part++), targetId, scanId, data: JSON.stringify(chunk) });
      chunk = [];
      bytes = 0;
    };
    for (const c of list) {
      const n = JSON.stringify(c).length + 1;
      if (chunk.length && bytes + n > PART_BYTES) close();
      chunk.push(c);
      bytes += n;
    }
    close();
  }
  return items;
}

function hitsOf(raw: Record<string, unknown>): IndexHit[] {
  const item = unmarshall(raw as never) as { targetId: string; scanId: string; data: string };
  return z
    .array(indexedSchema)
    .parse(JSON.parse(item.data))
    .map((c) => ({
      targetId: item.targetId,
      scanId: item.scanId,
      path: c.p,
      ...(c.r !== undefined ? { rawPath: c.r } : {}),
      type: c.t,
      size: c.s,
      ...(c.h !== undefined ? { sha256: c.h } : {}),
    }));
}

/** Query parameters for every index item of a base name (of one target when given). */
export function lookupParams(tableName: string, name: string, targetId?: string): QueryCommandInput {
  return {
    TableName: tableName,
    KeyConditionExpression: targetId ? 'pk = :pk AND begins_with(sk, :t)' : 'pk = :pk',
    ExpressionAttributeValues: marshall({ ':pk': nameKeys.partition(name), ...(targetId ? { ':t': `${targetId}#` } : {}) }),
  };
}

/** Scan parameters for one segment of every index item (a glob without a literal base name). */
export function scanParams(tableName: string, segment: number, totalSegments: number): ScanCommandInput {
  return {
    TableName: tableName,
    FilterExpression: 'begins_with(pk, :n)',
    ExpressionAttributeValues: marshall({ ':n': 'NAME#' }),
    Segment: segment,
    TotalSegments: totalSegments,
  };
}

export class NameIndex {
  constructor(
    readonly db: DynamoDBClient,
    readonly tableName: string,
  ) {}

  /** Every indexed entry with this exact base name (of one target when given), every scan. */
  async *lookup(name: string, targetId?: string): AsyncGenerator<IndexHit> {
    let start: QueryCommandInput['ExclusiveStartKey'];
    do {
      const out = await this.db.send(new QueryCommand({ ...lookupParams(this.tableName, name, targetId), ExclusiveStartKey: start }));
      for (const raw of out.Items ?? []) yield* hitsOf(raw);
      start = out.LastEvaluatedKey;
    } while (start);
  }

  /** Every indexed entry (a parallel Scan of the manifest table): for patterns without a literal base name. */
  async *all(segments = 4): AsyncGenerator<IndexHit> {
    const pending = new Map<number, Promise<{ segment: number; hits: IndexHit[]; next?: ScanCommandInput['ExclusiveStartKey'] }>>();
    const read = (segment: number, start?: ScanCommandInput['ExclusiveStartKey']) =>
      this.db.send(new ScanCommand({ ...scanParams(this.tableName, segment, segments), ExclusiveStartKey: start })).then((out) => ({
        segment,
        hits: (out.Items ?? []).flatMap(hitsOf),
        next: out.LastEvaluatedKey,
      }));
    for (let s = 0; s < segments; s++) pending.set(s, read(s));
    while (pending.size) {
      const done = await Promise.race(pending.values());
      pending.delete(done.segment);
      if (done.next) pending.set(done.segment, read(done.segment, done.next));
      yield* done.hits;
    }
  }

  /** Writes the index of one manifest page by page (ManifestStore.write), then its marker. */
  writer(targetId: string, scanId: string): { page: (page: number, entries: readonly ManifestEntry[]) => Promise<void>; done: () => Promise<void> } {
    // Several batches in flight: a page of 5,000 names is up to 200 BatchWriteItem calls.
    const out = new BatchWriter(this.db, this.tableName, { concurrency: 8, what: 'the name index' });
    return {
      page: (page, entries) => out.put(nameIndexItems(targetId, scanId, page, entries)),
      done: async () => {
        await out.done();
        // Only once every item is stored: a scan without its marker is indexed again by migrate.
        await this.db.send(new PutItemCommand({ TableName: this.tableName, Item: marshall({ ...nameKeys.marker(targetId, scanId), scanId }) }));
      },
    };
  }

  /** Whether every index item of this scan is stored (scans written before release 0.5 have none until `migrate`). */
  async isIndexed(targetId: string, scanId: string): Promise<boolean> {
    const out = await this.db.send(
      new QueryCommand({
        TableName: this.tableName,
        KeyConditionExpression: 'pk = :pk AND sk = :sk',
        ExpressionAttributeValues: marshall({ ':pk': targetId, ':sk': nameKeys.marker(targetId, scanId).sk }),
        ConsistentRead: true,
      }),
    );
    return (out.Items?.length ?? 0) > 0;
  }
}
