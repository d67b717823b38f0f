/**
 * Data written by the previous release (0.1) keeps working: a tape file and its manifest as
 * release 0.1 wrote them (test/fixtures/release-0.1, made with that release's own writer and
 * scan: a hard link stored as two copies, data/ with mode 0755 and the time of writing, no
 * trailer `root`), and a target item of its catalog (no skipped entries).
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { summarize, type ManifestEntry } from '../../src/lib/domain/manifest.ts';
import { targetCodec } from '../../src/lib/catalog/items.ts';
import { readTargetFile } from '../../src/lib/tape-format/index.ts';
import { fileBlocks } from './helpers.ts';

const dir = join(import.meta.dirname, '..', 'fixtures', 'release-0.1');
const manifest = JSON.parse(readFileSync(join(dir, 'manifest.json'), 'utf8')) as ManifestEntry[];

describe('data written by release 0.1', () => {
  it('its tape file verifies with this release, and its manifest digest is unchanged', async () => {
    const report = await readTargetFile(fileBlocks(join(dir, 'file-0001')), { targetId: 't-old', manifest });
    expect(report.bad).toEqual([]);
    expect(report.ok).toBe(true);
    // both names of the old hard link are files with data (the old layout), and count as such
    expect(report.fileCount).toBe(4);
    expect(report.header?.manifestDigest).toBe(summarize(manifest).digest);
    expect(report.trailer?.root).toBeUndefined();
  });

  it('a damaged byte in the old tape file is still found', async () => {
    const bytes = readFileSync(join(dir, 'file-0001'));
    const at = bytes.indexOf('alpha\n');
    bytes[at] = 0x41;
    async function* one() {
      yield bytes;
    }
    const report = await readTargetFile(one(), { targetId: 't-old', manifest });
    expect(report.ok).toBe(false);
    expect(report.bad.map((b) => b.path)).toContain('a.txt');
  });

  it('its target items parse without the fields added since', () => {
    const item = {
      pk: 'TARGET#t-old',
      sk: 'TARGET',
      type: 'target',
      gsi1pk: 'PLACE#scanned',
      gsi1sk: '2026-06-01T00:00:00.000Z#t-old',
      id: 't-old',
      host: 'localhost',
      path: '/srv/old',
      scan: 'complete',
      scanId: 'scan-old',
      placement: 'unassigned',
      fileCount: 4,
      totalBytes: 15,
      manifestPages: 1,
      importedAt: '2026-06-01T00:00:00.000Z',
      updatedAt: '2026-06-01T00:00:00.000Z',
      version: 2,
    };
    const t = targetCodec.fromItem(item);
    expect(t).toMatchObject({ id: 't-old', scan: 'complete', fileCount: 4 });
    expect(t.skippedCount).toBeUndefined();
  });
});
