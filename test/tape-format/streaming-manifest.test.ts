/**
 * A target whose header.json is far above the size read whole (json-member.ts STREAM_ABOVE):
 * the writer takes its manifest as a reader (read again for each pass, as the catalog's pages
 * are) and the verify reads header.json and trailer.json line by line and the manifest
 * alongside. GNU tar lists every member; the verify passes, and names a flipped byte's file
 * and a tampered trailer list. jsonWithListSize matches the encoder byte for byte.
 */
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ManifestEntry } from '../../src/lib/domain/manifest.ts';
import { encodeJsonWithList, jsonBytes, jsonWithListSize } from '../../src/lib/tape-format/format.ts';
import { STREAM_ABOVE } from '../../src/lib/tape-format/json-member.ts';
import { readTargetFile, writeTargetFile, type SourceEntry } from '../../src/lib/tape-format/index.ts';
import { fileBlocks, PlainFileWriter } from './helpers.ts';

const run = promisify(execFile);
const N = 70_000; // about 10 MB of header.json
const TARGET = { id: 't-big', host: 'h', path: '/data/big' };
let work: string;
let path: string;
let reads = 0;

const content = (i: number) => Buffer.from(`file ${i}\n`);
function entry(i: number): ManifestEntry {
  if (i % 10 === 0) return { path: `d${Math.floor(i / 1000)}/sub-${i}`, type: 'dir', size: 0, mtimeMs: 1_700_000_000_000, mode: 0o755 };
  const c = content(i);
  return {
    path: `d${Math.floor(i / 1000)}/observation-frame-${String(i).padStart(7, '0')}.fits`,
    type: 'file',
    size: c.length,
    mtimeMs: 1_700_000_000_000 + i,
    mode: 0o644,
    sha256: createHash('sha256').update(c).digest('hex'),
  };
}
/** The manifest as the catalog gives it: a reader, read again for every pass. */
const manifest = () => {
  reads++;
  return (async function* () {
    for (let i = 0; i < N; i++) yield entry(i);
  })();
};
async function* source(): AsyncGenerator<SourceEntry> {
  yield { entry: { path: '', type: 'dir', size: 0, mode: 0o755, mtimeMs: 1_700_000_000_000, root: true } };
  for (let i = 0; i < N; i++) {
    const e = entry(i);
    yield { entry: { path: e.path, type: e.type, size: e.size, mode: e.mode, mtimeMs: e.mtimeMs }, ...(e.type === 'file' ? { content: [content(i)] } : {}) };
  }
}

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'tape-stream-'));
  path = join(work, 'file-1');
  const w = await PlainFileWriter.create(path);
  const r = await writeTargetFile({
    writer: w,
    header: { tapeName: 'T1', fileNumber: 1, taskId: 'task-big', target: TARGET, scanId: 'scan-1', writtenAt: '2026-12-02T00:00:00Z', manifest },
    source: source(),
  });
  await w.close();
  expect(r.trailer).toMatchObject({ fileCount: N - N / 10, complete: true });
}, 120_000);
afterAll(async () => {
  await rm(work, { recursive: true, force: true });
});

describe('a manifest too large to hold whole', () => {
  it('is written in four reads of the manifest, header.json above the whole-read size, and GNU tar lists every member', async () => {
    expect(reads).toBe(4);
    const { stdout } = await run('tar', ['-tvf', path, '-b', '512'], { maxBuffer: 64 * 1024 * 1024 });
    const lines = stdout.trim().split('\n');
    expect(lines).toHaveLength(N + 3); // header.json, data/, the entries, trailer.json
    const headerSize = Number(lines[0]!.split(/\s+/)[2]);
    expect(headerSize).toBeGreaterThan(STREAM_ABOVE);
  });

  it('verifies against the manifest read alongside, and against its own header', async () => {
    const withCatalog = await readTargetFile(fileBlocks(path), { targetId: TARGET.id, manifest });
    expect(withCatalog.bad).toEqual([]);
    expect(withCatalog).toMatchObject({ ok: true, fileCount: N - N / 10 });
    // Streamed: the report holds the head, not the list.
    expect(withCatalog.header?.manifest).toBeUndefined();
    expect(withCatalog.trailer?.files).toBeUndefined();
    const alone = await readTargetFile(fileBlocks(path), { targetId: TARGET.id });
    expect(alone).toMatchObject({ ok: true, bad: [] });
  }, 60_000);

  it('names the file of a flipped byte, and a trailer whose list was changed', async () => {
    const buf = await readFile(path);
    const flipped = Buffer.from(buf);
    const at = flipped.indexOf('file 43217\n');
    flipped[at] = flipped[at]! ^ 0x20;
    await writeFile(join(work, 'flipped'), flipped);
    const r1 = await readTargetFile(fileBlocks(join(work, 'flipped')), { targetId: TARGET.id, manifest });
    expect(r1.bad).toEqual([{ path: entry(43217).path, reason: expect.stringMatching(/^checksum mismatch: SHA-256 read/) }]);

    const tampered = Buffer.from(buf);
    const trailerAt = tampered.lastIndexOf(entry(5).sha256!);
    expect(trailerAt).toBeGreaterThan(tampered.indexOf('trailer.json'));
    tampered.write('0'.repeat(64), trailerAt);
    await writeFile(join(work, 'tampered'), tampered);
    const r2 = await readTargetFile(fileBlocks(join(work, 'tampered')), { targetId: TARGET.id, manifest });
    expect(r2.ok).toBe(false);
    expect(r2.bad).toEqual([{ path: 'trailer.json', reason: 'inconsistent: its digest does not match its file list' }]);
  }, 60_000);
});

describe('jsonWithListSize', () => {
  it('is the byte length of encodeJsonWithList for empty, one and many items, non-ASCII included', () => {
    const heads = [{}, { a: 1 }, { name: 'é ☃', n: [1, 2] }];
    const lists = [[], [{ x: 1 }], Array.from({ length: 500 }, (_, i) => ({ p: `ü/${i}`, s: i }))];
    for (const head of heads) {
      for (const list of lists) {
        const bytes = Buffer.concat(encodeJsonWithList(head, 'manifest', list)).length;
        expect(
          jsonWithListSize(
            head,
            'manifest',
            list.length,
            list.reduce((n, x) => n + jsonBytes(x), 0),
          ),
        ).toBe(bytes);
      }
    }
  });
});
