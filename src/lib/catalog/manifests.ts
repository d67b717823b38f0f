/**
 * Manifest pages in the manifest table: pk = target id, sk = `<scanId>#<page>`. Each page is
 * a gzip'd JSON array of entries kept well under the 400 KB item limit, so a target of a
 * million files is a few hundred items. A scan writes its pages first and is marked complete
 * only afterwards, so a failed scan never leaves a manifest that looks complete. A scan writes
 * the name index (name-index.ts) with the pages, and its marker after the last one.
 */
import { gunzipSync, gzipSync } from 'node:zlib';
import { QueryCommand, type DynamoDBClient, type QueryCommandInput } from '@aws-sdk/client-dynamodb';
import { marshall, unmarshall } from '@aws-sdk/util-dynamodb';
import { z } from 'zod';
import type { ManifestEntry } from '../domain/manifest.ts';
import { BatchWriter } from './batch-writer.ts';
import type { NameIndex } from './name-index.ts';

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
    md5: z.string().optional(),
    approximate: z.literal(true).optional(),
    uid: z.number().int().nonnegative().optional(),
    gid: z.number().int().nonnegative().optional(),
  })
  .strict();

const pageKey = (scanId: string, page: number) => `${scanId}#${String(page).padStart(6, '0')}`;

export class ManifestStore {
  constructor(
    readonly db: DynamoDBClient,
    readonly tableName: string,
  ) {}

  /**
   * Writes a manifest as pages; returns the page count. Re-running with the same scan id
   * overwrites. Holds one page at a time. With `names`, the name index of each page is written
   * too, and its marker once all of it is stored.
   */
  async write(
    targetId: string,
    scanId: string,
    entries: AsyncIterable<ManifestEntry> | Iterable<ManifestEntry>,
    opts: { names?: NameIndex } = {},
  ): Promise<number> {
    const out = new BatchWriter(this.db, this.tableName, { what: 'manifest pages' });
    const index = opts.names?.writer(targetId, scanId);
    let page: ManifestEntry[] = [];
    let pageJsonBytes = 0;
    let pageNo = 0;
    const closePage = async () => {
      const data = gzipSync(JSON.stringify(page));
      await out.put([{ pk: targetId, sk: pageKey(scanId, pageNo), scanId, page: pageNo, count: page.length, data }]);
      await index?.page(pageNo, page);
      pageNo++;
      page = [];
      pageJsonBytes = 0;
    };
    for await (const e of entries) {
      page.push(e);
      // JSON compresses ~3-5x; closing at 3x the page size keeps gzip'd pages under it.
      pageJsonBytes += JSON.stringify(e).length;
      if (pageJsonBytes >= PAGE_BYTES * 3 || page.length >= MAX_ENTRIES_PER_PAGE) await closePage();
    }
    if (page.length || pageNo === 0) await closePage();
    await out.done();
    await index?.done();
    return pageNo;
  }

  /** Builds the name index of a manifest stored before release 0.5 (migrate), from its pages. */
  async writeNameIndex(names: NameIndex, targetId: string, scanId: string, expectedPages: number): Promise<void> {
    const index = names.writer(targetId, scanId);
    for await (const { page, entries } of this.pages(targetId, scanId, expectedPages)) await index.page(page, entries);
    await index.done();
  }

  /** A manifest's pages in order, checking that every page is there. */
  async *pages(targetId: string, scanId: string, expectedPages: number): AsyncGenerator<{ page: number; entries: ManifestEntry[] }> {
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
        const entries = z.array(entrySchema).parse(JSON.parse(gunzipSync(item.data as Uint8Array).toString('utf8'))) as ManifestEntry[];
        yield { page: next++, entries };
      }
      start = out.LastEvaluatedKey;
    } while (start);
    if (next !== expectedPages) throw new Error(`manifest of ${targetId} scan ${scanId} has ${next} pages, expected ${expectedPages}`);
  }

  /** Reads a manifest back, entry by entry (one page in memory at a time). */
  async *read(targetId: string, scanId: string, expectedPages: number): AsyncGenerator<ManifestEntry> {
    for await (const p of this.pages(targetId, scanId, expectedPages)) yield* p.entries;
  }

  async readAll(targetId: string, scanId: string, expectedPages: number): Promise<ManifestEntry[]> {
    const all: ManifestEntry[] = [];
    for await (const e of this.read(targetId, scanId, expectedPages)) all.push(e);
    return all;
  }
}
