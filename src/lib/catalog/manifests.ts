/**
 * Manifest pages in the manifest table: pk = target id, sk = `<scanId>#<page>`. Each page is
 * a gzip'd JSON array of entries kept well under the 400 KB item limit, so a target of a
 * million files is a few thousand items. A scan writes its pages first and is marked complete
 * only afterwards, so a failed scan never leaves a manifest that looks complete.
 */
import { gunzipSync, gzipSync } from 'node:zlib';
import { BatchWriteItemCommand, QueryCommand, type DynamoDBClient, type QueryCommandInput } from '@aws-sdk/client-dynamodb';
import { marshall, unmarshall } from '@aws-sdk/util-dynamodb';
import { z } from 'zod';
import type { ManifestEntry } from '../domain/manifest.ts';
import { retry } from '../concurrency.ts';

/** Compressed bytes per page; DynamoDB's item limit is 400 KB. */
const PAGE_BYTES = 300_000;
const MAX_ENTRIES_PER_PAGE = 5_000;

const entrySchema = z
  .object({
    path: z.string(),
    rawPath: z.string().optional(),
    type: z.enum(['file', 'dir', 'symlink']),
    size: z.number(),
    mtimeMs: z.number(),
    mode: z.number(),
    sha256: z.string().optional(),
    linkTarget: z.string().optional(),
    rawLinkTarget: z.string().optional(),
    linkGroup: z.number().int().positive().optional(),
    uid: z.number().int().nonnegative().optional(),
    gid: z.number().int().nonnegative().optional(),
  })
  .strict();

class ThrottledPages extends Error {}

const pageKey = (scanId: string, page: number) => `${scanId}#${String(page).padStart(6, '0')}`;

export class ManifestStore {
  constructor(
    readonly db: DynamoDBClient,
    readonly tableName: string,
  ) {}

  /** Writes a manifest as pages; returns the page count. Re-running with the same scan id overwrites. */
  async write(targetId: string, scanId: string, entries: AsyncIterable<ManifestEntry> | Iterable<ManifestEntry>): Promise<number> {
    let page: ManifestEntry[] = [];
    let pageJsonBytes = 0;
    let pageNo = 0;
    const pending: Record<string, unknown>[] = [];
    const flushBatch = async (force: boolean) => {
      while (pending.length >= 25 || (force && pending.length)) {
        const batch = pending.splice(0, 25);
        let request = { [this.tableName]: batch.map((Item) => ({ PutRequest: { Item: marshall(Item) } })) };
        // Unprocessed items (throttling) are sent again with backoff, up to 10 calls.
        await retry(
          async () => {
            const out = await this.db.send(new BatchWriteItemCommand({ RequestItems: request }));
            const left = out.UnprocessedItems ?? {};
            if (!Object.keys(left).length || !left[this.tableName]?.length) return;
            request = left as typeof request;
            throw new ThrottledPages();
          },
          { attempts: 10, initialDelayMs: 50, maxDelayMs: 5_000, retryable: (e) => e instanceof ThrottledPages },
        ).catch((e: unknown) => {
          throw e instanceof ThrottledPages ? new Error('DynamoDB kept throttling manifest pages; try the scan again later') : e;
        });
      }
    };
    const closePage = async () => {
      const data = gzipSync(JSON.stringify(page));
      pending.push({ pk: targetId, sk: pageKey(scanId, pageNo), scanId, page: pageNo, count: page.length, data });
      pageNo++;
      page = [];
      pageJsonBytes = 0;
      await flushBatch(false);
    };
    for await (const e of entries) {
      page.push(e);
      // JSON compresses ~3-5x; closing at 3x the page size keeps gzip'd pages under it.
      pageJsonBytes += JSON.stringify(e).length;
      if (pageJsonBytes >= PAGE_BYTES * 3 || page.length >= MAX_ENTRIES_PER_PAGE) await closePage();
    }
    if (page.length || pageNo === 0) await closePage();
    await flushBatch(true);
    return pageNo;
  }

  /** Reads a manifest back, page by page, checking that every page is there. */
  async *read(targetId: string, scanId: string, expectedPages: number): AsyncGenerator<ManifestEntry> {
    let start: QueryCommandInput['ExclusiveStartKey'];
    let next = 0;
    do {
      const out = await this.db.send(
        new QueryCommand({
          TableName: this.tableName,
          KeyConditionExpression: 'pk = :pk AND begins_with(sk, :s)',
          ExpressionAttributeValues: marshall({ ':pk': targetId, ':s': `${scanId}#` }),
          ExclusiveStartKey: start,
          ConsistentRead: true,
        }),
      );
      for (const raw of out.Items ?? []) {
        const item = unmarshall(raw);
        if (item.page !== next) throw new Error(`manifest of ${targetId} scan ${scanId} is missing page ${next}`);
        next++;
        const entries = z.array(entrySchema).parse(JSON.parse(gunzipSync(item.data as Uint8Array).toString('utf8')));
        yield* entries as ManifestEntry[];
      }
      start = out.LastEvaluatedKey;
    } while (start);
    if (next !== expectedPages) throw new Error(`manifest of ${targetId} scan ${scanId} has ${next} pages, expected ${expectedPages}`);
  }

  async readAll(targetId: string, scanId: string, expectedPages: number): Promise<ManifestEntry[]> {
    const all: ManifestEntry[] = [];
    for await (const e of this.read(targetId, scanId, expectedPages)) all.push(e);
    return all;
  }
}
