/**
 * The verify's hashing on a second thread (hash-worker.ts): the same report as a verify on one
 * thread, whether the worker takes many files or few and whether the blocks are in shared
 * memory (the virtual drive) or not (copied); a flipped byte in a file the worker hashed is
 * named; a block goes back to its source only once the worker is past it; a worker that dies
 * fails the verify (never a good report; the verify task reports the file as not read) and
 * the next verify starts a new one; a session serves one read.
 */
import { createHash } from 'node:crypto';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ManifestEntry } from '../../src/lib/domain/manifest.ts';
import { listLocalDirectory, localSource, scanLocalDirectory } from '../../src/lib/source/local-directory.ts';
import { VirtualTapeLibrary } from '../../src/lib/tape/virtual-library.ts';
import { FORMAT, HashSession, HashWorkerError, readTargetFile, stopHashWorker, writeTargetFile } from '../../src/lib/tape-format/index.ts';
import { unreadResult, verifyBase } from '../../src/agent/tasks/verify.ts';
import type { VerifyTask } from '../../src/lib/protocol/tasks.ts';
import { content } from '../support/fixture-tree.ts';
import { fileBlocks } from './helpers.ts';

const MiB = 1024 * 1024;
let work: string;
let vtl: VirtualTapeLibrary;
let manifest: ManifestEntry[];
const TARGET = { id: 'tgt', host: 'localhost', path: '/data/tgt' };
/** Small settings: the worker starts at once, falls behind and holds blocks often. */
const tight = () => new HashSession({ startAfterBytes: 0, maxBacklogBytes: 256 * 1024, maxHeldBytes: 1 * MiB, batchBytes: 64 * 1024 });
const expected = () => ({ targetId: TARGET.id, manifest });

/** Reads tape `name`'s file 0 from a fresh drive. */
async function readTape(name: string, hashWorker: HashSession | false) {
  const drive = vtl.drive(`d-${name}-${Math.random().toString(36).slice(2)}`);
  await drive.load(name);
  await drive.seekFile(0);
  try {
    return await readTargetFile(drive.readFile(), expected(), { hashWorker });
  } finally {
    await drive.unload();
  }
}

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'hash-worker-'));
  const data = join(work, 'data');
  // 400 small files (0-70 KiB), then large ones of 1-5 MiB: ~30 MiB, both kinds in tape order.
  await mkdir(join(data, 'a-small'), { recursive: true });
  await mkdir(join(data, 'b-large'), { recursive: true });
  for (let i = 0; i < 400; i++) await writeFile(join(data, 'a-small', `f${String(i).padStart(3, '0')}`), content(`s${i}`, (i * 7919) % (70 * 1024)));
  for (let i = 0; i < 5; i++) await writeFile(join(data, 'b-large', `L${i}`), content(`l${i}`, (1 + i) * MiB + i * 4099));
  manifest = [];
  for await (const e of scanLocalDirectory(data)) manifest.push(e);
  vtl = new VirtualTapeLibrary(join(work, 'vtl'));
  for (const name of ['good', 'flipped']) {
    await vtl.createTape(name, { capacityBytes: 200 * MiB });
    const drive = vtl.drive(`w-${name}`);
    await drive.load(name);
    const writer = await drive.openWriter();
    await writeTargetFile({
      writer,
      header: { format: FORMAT, tapeName: name, fileNumber: 0, taskId: 't', target: TARGET, scanId: 's', writtenAt: '2026-12-04T00:00:00Z', manifest },
      source: localSource(data, manifest),
      listing: () => listLocalDirectory(data),
    });
    await writer.close();
    await drive.unload();
  }
  // One byte in the third large file and one in a small file near the start.
  await vtl.injectFault('flipped', { kind: 'flip-byte', fileNumber: 0, offset: 20 * MiB });
  await vtl.injectFault('flipped', { kind: 'flip-byte', fileNumber: 0, offset: 300_000 });
}, 120_000);
afterAll(async () => {
  await rm(work, { recursive: true, force: true });
});

describe('hashing on a second thread', () => {
  it('gives the report of a verify on one thread, with shared blocks (virtual drive) and copied ones', async () => {
    const single = await readTape('good', false);
    expect(single).toMatchObject({ ok: true, bad: [], fileCount: 405 });
    for (const session of [tight(), new HashSession()]) {
      expect(await readTape('good', session)).toEqual(single);
      expect(session.taken.files).toBeGreaterThan(0);
    }
    const copied = tight();
    const path = vtl.tapeFilePath('good', 0);
    expect(await readTargetFile(fileBlocks(path), expected(), { hashWorker: copied })).toEqual(single);
    expect(copied.taken.bytes).toBeGreaterThan(MiB);
  }, 60_000);

  it('names the files of flipped bytes that the worker hashed', async () => {
    const single = await readTape('flipped', false);
    // 300,000 bytes in: the eighth small file (after header.json and f000-f006).
    expect(single.bad.map((b) => b.path).sort()).toEqual(['a-small/f007', 'b-large/L2']);
    for (const b of single.bad) expect(b.reason).toMatch(/^checksum mismatch: SHA-256 read [0-9a-f]{64}, manifest /);
    // Everything on the worker: start at once, never too far behind.
    const all = new HashSession({ startAfterBytes: 0, maxBacklogBytes: 1024 * MiB, maxHeldBytes: 1024 * MiB });
    expect(await readTape('flipped', all)).toEqual(single);
    expect(all.taken.files).toBe(manifest.filter((e) => e.type === 'file' && e.size > 0).length);
  }, 60_000);

  it('gives a block back only once the worker is past it, and holds the reader while too many are held', async () => {
    const s = new HashSession({ startAfterBytes: 0, maxHeldBytes: 1 });
    const block = Buffer.from(new SharedArrayBuffer(4096));
    block.fill(7);
    const file = s.take(4096);
    expect(file).toBeGreaterThan(0);
    s.add(file, block.subarray(0, 1000));
    s.add(file, block.subarray(1000));
    let sha = '';
    s.end(file, (d) => (sha = d));
    let given = false;
    s.release(4096, () => (given = true));
    expect(given).toBe(false);
    const room = s.room();
    expect(room).toBeInstanceOf(Promise);
    await room;
    expect(given).toBe(true);
    await s.settle();
    expect(sha).toBe(createHash('sha256').update(block).digest('hex'));
    expect(s.room()).toBeUndefined();
    // A block the worker was given no view of goes back at once, even with batches out.
    const other = s.take(10);
    s.add(other, block.subarray(0, 10));
    s.release(4096, () => undefined);
    let untouched = false;
    s.release(4096, () => (untouched = true));
    expect(untouched).toBe(true);
    s.end(other, () => undefined);
    await s.settle();
    s.close();
  });

  it('serves one read: a session used before is refused', async () => {
    const once = tight();
    await readTape('good', once);
    await expect(readTape('good', once)).rejects.toThrow(/a HashSession serves one readTargetFile: make a new one for each read/);
  }, 60_000);

  it('fails the verify when the worker dies, and the next verify starts a new one', async () => {
    const drive = vtl.drive('d-kill');
    await drive.load('good');
    await drive.seekFile(0);
    const blocks = drive.readFile();
    let n = 0;
    const source = {
      async *[Symbol.asyncIterator]() {
        for await (const b of blocks) {
          if (++n === 40) await stopHashWorker();
          yield b;
        }
      },
      recycle: (b: Buffer) => blocks.recycle(b),
    };
    const died = await readTargetFile(source, expected(), { hashWorker: tight() }).then(
      () => null,
      (e: unknown) => e,
    );
    expect(died).toBeInstanceOf(HashWorkerError);
    expect(died).toMatchObject({ code: 'HASH_WORKER', message: expect.stringMatching(/hash worker thread exited .*read it again \(confirm or scrub\)/) });
    // The verify task reports such a file as not read (the copy stays as it was); a read error stays the copy's.
    const base = verifyBase({ taskId: 't', tapeName: 'good', fileNumber: 0, targetId: TARGET.id, updateCatalog: true } as VerifyTask);
    expect(unreadResult(base, died, true)).toMatchObject({ outcome: 'failed', notRead: true, error: (died as Error).message });
    expect(unreadResult(base, new Error('EIO'), true)).not.toHaveProperty('notRead');
    await drive.unload();
    const again = tight();
    expect(await readTape('good', again)).toMatchObject({ ok: true, bad: [] });
    expect(again.taken.files).toBeGreaterThan(0);
  }, 60_000);
});
