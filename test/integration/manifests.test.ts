import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { summarize, type ManifestEntry } from '../../src/lib/domain/manifest.ts';
import { createTestStack, type TestStack } from '../support/test-stack.ts';

let stack: TestStack;
beforeAll(async () => {
  stack = await createTestStack();
});
afterAll(async () => stack?.close());

function* entries(n: number): Generator<ManifestEntry> {
  for (let i = 0; i < n; i++) {
    yield {
      path: `night-${Math.floor(i / 1000)}/frame-${String(i).padStart(7, '0')}.fits`,
      type: 'file',
      size: 4096 + i,
      mtimeMs: 1_790_000_000_000 + i,
      mode: 0o644,
      sha256: i.toString(16).padStart(64, '0'),
    };
  }
}

describe('manifest pages', () => {
  it('store a manifest of a million files in pages under the item limit and read it back in order', async () => {
    const n = 1_000_000;
    const pages = await stack.ctx.manifests.write('t-big', 'scan-1', entries(n));
    expect(pages).toBeGreaterThan(150); // many pages, many BatchWriteItem batches
    const back = await stack.ctx.manifests.readAll('t-big', 'scan-1', pages);
    expect(back).toHaveLength(n);
    expect(summarize(back)).toEqual(summarize(entries(n)));
  }, 120_000);

  it('refuse a manifest with a missing page rather than return it short', async () => {
    const pages = await stack.ctx.manifests.write('t-short', 'scan-1', entries(12_000));
    await expect(stack.ctx.manifests.readAll('t-short', 'scan-1', pages + 1)).rejects.toThrow(/has \d+ pages, expected/);
    // A different scan id of the same target is a different manifest.
    expect(await stack.ctx.manifests.readAll('t-short', 'scan-2', 0)).toEqual([]);
  });
});
