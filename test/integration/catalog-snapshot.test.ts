/**
 * snapshot_catalog / restore_catalog (issue 13, part of 2): a catalog written by jobs (a tape,
 * targets, copies, a manifest with its name index) goes to a gzip'd JSON-lines file that gzip
 * and jq read, and comes back item for item into the empty tables of another stack. A non-empty
 * catalog, a truncated file and an existing target file are refused, changing nothing.
 */
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { ScanCommand } from '@aws-sdk/client-dynamodb';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { main as runJobMain } from '../../src/cli/run-job.ts';
import { encodeItem } from '../../src/lib/catalog/dynamodb-json.ts';
import { createTestStack, type TestStack } from '../support/test-stack.ts';

const run = promisify(execFile);
let a: TestStack;
let b: TestStack;
let dir: string;

const cli = async (stack: TestStack, args: string[]) => {
  const out: string[] = [];
  const err: string[] = [];
  const code = await runJobMain(args, { out: (s) => out.push(s), err: (s) => err.push(s), env: stack.env, cwd: dir });
  return { code, out: out.join('\n'), err: err.join('\n') };
};
/** Every item of both tables, in a stable order, as DynamoDB JSON. */
async function everything(stack: TestStack): Promise<string[]> {
  const rows: string[] = [];
  for (const table of [stack.config.names.catalogTable, stack.config.names.manifestTable]) {
    let start: Record<string, never> | undefined;
    do {
      const out = await stack.clients.dynamodb.send(new ScanCommand({ TableName: table, ExclusiveStartKey: start, ConsistentRead: true }));
      for (const item of out.Items ?? [])
        rows.push(`${table === stack.config.names.catalogTable ? 'C' : 'M'} ${JSON.stringify(encodeItem(item), Object.keys(encodeItem(item)).sort())}`);
      start = out.LastEvaluatedKey as typeof start;
    } while (start);
  }
  return rows.sort();
}

beforeAll(async () => {
  [a, b] = await Promise.all([createTestStack(), createTestStack()]);
  dir = await mkdtemp(join(tmpdir(), 'snapshot-'));
  expect((await cli(a, ['open_tape', '--new', 'snap1', '--barcode', 'SNP001L9'])).code).toBe(0);
  await writeFile(join(dir, 'list.txt'), 'host1:/data/run-1\nhost1:/data/run-2\n');
  expect((await cli(a, ['import', join(dir, 'list.txt')])).code).toBe(0);
  const target = (await a.ctx.catalog.listAllTargets())[0]!;
  const entries = Array.from({ length: 12_000 }, (_, i) => ({
    path: `raw/frame-${i}.fits`,
    type: 'file' as const,
    size: i,
    mtimeMs: 1_700_000_000_000,
    mode: 0o644,
    sha256: i.toString(16).padStart(64, '0'),
  }));
  await a.ctx.manifests.write(target.id, 'scan-1', entries, { names: a.ctx.names });
}, 60_000);
afterAll(async () => {
  await Promise.allSettled([a?.close(), b?.close()]);
  await rm(dir, { recursive: true, force: true });
});

describe('catalog snapshots', () => {
  it('write both tables to a file gzip and jq read, and load it item for item into an empty catalog', async () => {
    const file = join(dir, 'catalog.jsonl.gz');
    const snap = await cli(a, ['--json', 'snapshot_catalog', '--to', file]);
    expect(snap.code, snap.err).toBe(0);
    const before = await everything(a);
    const figures = JSON.parse(snap.out);
    expect(figures.catalog + figures.manifests).toBe(before.length);

    // Standard tools read it: a head line, one line per item, an end line.
    const { stdout } = await run('bash', ['-c', `gzip -dc '${file}' | jq -c 'select(.t == "catalog") | .item.pk.S'`], { maxBuffer: 64 * 1024 * 1024 });
    expect(stdout).toContain('"TAPE#snap1"');
    const { stdout: last } = await run('bash', ['-c', `gzip -dc '${file}' | tail -1 | jq -c .items`]);
    expect(JSON.parse(last)).toEqual({ catalog: figures.catalog, manifests: figures.manifests });

    const loaded = await cli(b, ['restore_catalog', file]);
    expect(loaded.code, loaded.err).toBe(0);
    expect(loaded.out).toMatch(new RegExp(`${figures.catalog} catalog item\\(s\\), ${figures.manifests} manifest item\\(s\\)`));
    expect(await everything(b)).toEqual(before);
    // The jobs read it as they read the original.
    expect((await cli(b, ['tapes'])).out).toBe((await cli(a, ['tapes'])).out);
  });

  it('refuses a non-empty catalog, a damaged or truncated file and an existing file, changing nothing', async () => {
    const file = join(dir, 'catalog.jsonl.gz');
    const before = await everything(b);
    const again = await cli(b, ['restore_catalog', file]);
    expect(again.code).toBe(1);
    expect(again.err).toMatch(/is not empty; restore_catalog loads a snapshot into an empty catalog only \(nothing was loaded\)/);
    expect(await everything(b)).toEqual(before);

    const c = await createTestStack();
    try {
      const whole = await readFile(file);
      await writeFile(join(dir, 'cut.gz'), whole.subarray(0, Math.floor(whole.length / 2)));
      const cut = await cli(c, ['restore_catalog', join(dir, 'cut.gz')]);
      expect(cut.code).toBe(1);
      expect(cut.err).toMatch(/is not a complete catalog snapshot: .*nothing was loaded/);
      const { stdout } = await run('bash', ['-c', `gzip -dc '${file}' | sed '3d' | gzip > '${join(dir, 'damaged.gz')}'`]).then(() => ({ stdout: '' }));
      expect(stdout).toBe('');
      const damaged = await cli(c, ['restore_catalog', join(dir, 'damaged.gz')]);
      expect(damaged.err).toMatch(/its items do not match its end line \(damaged\); nothing was loaded/);
      expect(await everything(c)).toEqual([]);
    } finally {
      await c.close();
    }

    const exists = await cli(a, ['snapshot_catalog', '--to', file]);
    expect(exists.code).toBe(1);
    expect(exists.err).toMatch(/exists; a snapshot never overwrites a file/);
    expect((await cli(a, ['--api', 'http://localhost:1', 'snapshot_catalog', '--to', join(dir, 'x.gz')])).err).toMatch(/talks to DynamoDB directly/);
  });
});
