/** Catalog snapshot tape files (docs/tape-format.md): written, read back, and refused when damaged or not a snapshot. */
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { gzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readSnapshotFile, writeSnapshotFile } from '../../src/lib/tape-format/snapshot-file.ts';
import { encodeSmallMember, END_OF_ARCHIVE } from '../../src/lib/tar/encode.ts';

const run = promisify(execFile);
let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'snapshot-file-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** A tape file in memory, read back in 256 KiB blocks as a drive yields them. */
async function tapeFileOf(snapshot: Buffer): Promise<Buffer> {
  const path = join(dir, `in-${Math.random()}.gz`);
  await writeFile(path, snapshot);
  const chunks: Buffer[] = [];
  await writeSnapshotFile(
    { write: async (c) => void chunks.push(Buffer.from(c)) },
    { tapeName: 't1', fileNumber: 3, taskId: 'task-1', writtenAt: '2026-12-03T00:00:00.000Z', snapshotFormat: 'tape-archive-catalog/1' },
    { path, bytes: snapshot.length, items: { catalog: 2, manifests: 1 } },
  );
  return Buffer.concat(chunks);
}
async function* blocks(b: Buffer, size = 256 * 1024): AsyncGenerator<Buffer> {
  for (let i = 0; i < b.length; i += size) yield b.subarray(i, i + size);
}

describe('catalog snapshot files', () => {
  const snapshot = gzipSync(Buffer.from('{"format":"tape-archive-catalog/1"}\n'.repeat(20_000)));

  it('reads back what was written, and GNU tar extracts the same member', async () => {
    const file = await tapeFileOf(snapshot);
    const out = join(dir, 'out.gz');
    const { header, trailer } = await readSnapshotFile(blocks(file), out);
    expect(header).toMatchObject({ kind: 'catalog-snapshot', tapeName: 't1', fileNumber: 3, taskId: 'task-1' });
    expect(trailer).toMatchObject({ complete: true, bytes: snapshot.length, items: { catalog: 2, manifests: 1 } });
    expect(await readFile(out)).toEqual(snapshot);
    const tarFile = join(dir, 'file.tar');
    await writeFile(tarFile, file);
    const { stdout } = await run('tar', ['-tf', tarFile]);
    expect(stdout.trim().split('\n')).toEqual(['header.json', 'catalog.jsonl.gz', 'trailer.json']);
  });

  it('refuses a flipped byte, a file cut short, and a target file', async () => {
    const file = await tapeFileOf(snapshot);
    const flipped = Buffer.from(file);
    flipped[2048 + 100] = (flipped[2048 + 100] ?? 0) ^ 0xff;
    await expect(readSnapshotFile(blocks(flipped), join(dir, 'f.gz'))).rejects.toThrow(/its trailer says/);
    await expect(readSnapshotFile(blocks(file.subarray(0, 4096)), join(dir, 'c.gz'))).rejects.toThrow(/has no trailer/);
    const target = Buffer.concat([encodeSmallMember('header.json', Buffer.from('{"format":"tape-archive/1","target":{}}'), 0), END_OF_ARCHIVE]);
    await expect(readSnapshotFile(blocks(target), join(dir, 't.gz'))).rejects.toThrow(/not a catalog snapshot file/);
  });

  it('never overwrites the file it reads into', async () => {
    const file = await tapeFileOf(snapshot);
    const out = join(dir, 'exists.gz');
    await writeFile(out, 'keep me');
    await expect(readSnapshotFile(blocks(file), out)).rejects.toThrow(/EEXIST/);
    expect(await readFile(out, 'utf8')).toBe('keep me');
  });
});
