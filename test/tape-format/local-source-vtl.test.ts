/**
 * The local directory source (scan warnings, vanished entries, small and large file paths)
 * and the whole format through the virtual tape library: label as file 0, targets as files
 * 1..N, read back through the drive and with plain `tar -xf <root>/tapes/<name>/file-000N`.
 */
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { mkdir, mkdtemp, rm, symlink, unlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ManifestEntry } from '../../src/lib/domain/manifest.ts';
import { VirtualTapeLibrary } from '../../src/lib/tape/virtual-library.ts';
import { FORMAT, readLabel, readTargetFile, writeLabel, writeTargetFile, type SourceEntry } from '../../src/lib/tape-format/index.ts';
import { localSource, scanLocalDirectory, type ScanWarning } from '../../src/lib/source/local-directory.ts';
import { makeSampleTree } from './helpers.ts';

let work: string;
beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'tape-format-src-'));
});
afterAll(async () => {
  if (work) await rm(work, { recursive: true, force: true });
});

async function collect<T>(it: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const x of it) out.push(x);
  return out;
}

describe('local source', () => {
  it('skips fifos with a warning and keeps symlinks whose target is not UTF-8, byte-exact', async () => {
    const root = join(work, 'special');
    await mkdir(root);
    await writeFile(join(root, 'ok.txt'), 'ok');
    execFileSync('mkfifo', [join(root, 'a-fifo')]);
    await symlink(Buffer.from([0x74, 0xff]), join(root, 'odd-link'));
    const warnings: ScanWarning[] = [];
    const m = await collect(scanLocalDirectory(root, { onWarning: (w) => warnings.push(w) }));
    expect(m.map((e) => e.path)).toEqual(['odd-link', 'ok.txt']);
    expect(m[0]).toMatchObject({ type: 'symlink', linkTarget: 't\u00ff', rawLinkTarget: Buffer.from([0x74, 0xff]).toString('base64') });
    expect(warnings).toEqual([{ path: 'a-fifo', reason: expect.stringMatching(/^skipped: a fifo \(special files are not archived/) }]);
  });

  it('a target path that is a symlink to the directory: the root is that directory', async () => {
    const real = join(work, 'real-root');
    await mkdir(real);
    await writeFile(join(real, 'f'), 'x');
    const viaLink = join(work, 'root-link');
    await symlink(real, viaLink);
    const m = await collect(scanLocalDirectory(viaLink));
    const [root, ...rest] = await collect(localSource(viaLink, m));
    expect(root!.entry).toMatchObject({ root: true, type: 'dir' });
    expect(rest.map((s) => s.entry.path)).toEqual(['f']);
  });

  it('yields manifest entries in order with current metadata; vanished entries are left out', async () => {
    const root = join(work, 'order');
    await mkdir(root);
    await makeSampleTree(root);
    const m = await collect(scanLocalDirectory(root));
    await unlink(join(root, 'empty-file'));
    const [rootEntry, ...got] = await collect(localSource(root, m, { smallFileMax: 64 * 1024, batchEntries: 3 }));
    expect(rootEntry!.entry).toMatchObject({ root: true, type: 'dir', path: '' });
    expect(got.map((s) => s.entry.path)).toEqual(m.filter((e) => e.path !== 'empty-file').map((e) => e.path));
    const big = got.find((s) => s.entry.path === 'big.bin')!;
    expect(big.entry).toMatchObject({ type: 'file', size: 3 * 1024 * 1024 });
  });

  it('small and large file paths give identical archives', async () => {
    const root = join(work, 'paths');
    await mkdir(root);
    await makeSampleTree(root);
    const m = await collect(scanLocalDirectory(root));
    const outputs: Buffer[] = [];
    for (const opts of [{}, { smallFileMax: 0 }, { smallFileMax: 16, batchBytes: 32, batchEntries: 1, batchesAhead: 1, chunkSize: 4096 }]) {
      const chunks: Buffer[] = [];
      await writeTargetFile({
        writer: { write: async (b) => void chunks.push(Buffer.from(b)) },
        header: {
          tapeName: 'T',
          fileNumber: 1,
          taskId: 'k',
          target: { id: 't', host: 'h', path: root },
          scanId: 's',
          writtenAt: '2024-01-01T00:00:00Z',
          manifest: m,
        },
        source: localSource(root, m, opts),
      });
      // the trailer member's mtime is the time of writing: compare everything before it
      const all = Buffer.concat(chunks);
      outputs.push(all.subarray(0, all.lastIndexOf('trailer.json\0')));
    }
    expect(outputs[1]!.equals(outputs[0]!)).toBe(true);
    expect(outputs[2]!.equals(outputs[0]!)).toBe(true);
  });

  it('a consumer that stops early releases the worker and files', async () => {
    const root = join(work, 'early');
    await mkdir(root);
    await makeSampleTree(root);
    const m = await collect(scanLocalDirectory(root));
    let n = 0;
    for await (const s of localSource(root, m) as AsyncGenerator<SourceEntry>) {
      if (++n === 3) break;
      void s;
    }
    expect(n).toBe(3);
  });
});

describe('through the virtual tape library', () => {
  it('label + two targets; read back through the drive and with plain tar', async () => {
    const libRoot = join(work, 'vtl');
    const lib = new VirtualTapeLibrary(libRoot);
    await lib.createTape('TA0001', { capacityBytes: 1024 ** 3 });
    const drive = lib.drive('vtl0');
    await drive.load('TA0001');
    const label = { format: FORMAT, tapeName: 'TA0001', barcode: 'TA0001L8', createdAt: '2024-05-06T07:08:09.000Z', blockSize: lib.blockSize };

    await drive.rewind();
    let w = await drive.openWriter();
    await writeLabel(w, label);
    await w.close();

    const manifests: ManifestEntry[][] = [];
    for (const t of ['one', 'two']) {
      const root = join(work, `target-${t}`);
      await mkdir(root);
      await makeSampleTree(root);
      await writeFile(join(root, 'which.txt'), t);
      const m = await collect(scanLocalDirectory(root));
      manifests.push(m);
      const fileNumber = await drive.seekEndOfData();
      w = await drive.openWriter();
      const { trailer } = await writeTargetFile({
        writer: w,
        header: {
          tapeName: 'TA0001',
          fileNumber,
          taskId: `task-${t}`,
          target: { id: t, host: 'h', path: root },
          scanId: 's',
          writtenAt: new Date().toISOString(),
          manifest: m,
        },
        source: localSource(root, m),
      });
      const closed = await w.close();
      expect(closed.tapeBytes % lib.blockSize).toBe(0);
      expect(trailer.targetId).toBe(t);
    }

    await drive.rewind();
    expect(await readLabel(drive.readFile())).toEqual(label);
    // readLabel consumed file 0: the drive is at file 1
    const r1 = await readTargetFile(drive.readFile(), { targetId: 'one', manifest: manifests[0] });
    expect(r1).toMatchObject({ ok: true, bad: [] });
    await drive.seekFile(2);
    const r2 = await readTargetFile(drive.readFile(), { targetId: 'two' });
    expect(r2).toMatchObject({ ok: true, bad: [] });
    await drive.seekFile(1);
    expect((await readTargetFile(drive.readFile(), { targetId: 'two' })).ok).toBe(false);

    // The recovery recipe of docs/tape-format.md for the virtual library
    const dest = join(work, 'restore');
    await mkdir(dest);
    execFileSync('tar', ['-xf', join(libRoot, 'tapes/TA0001/file-0002'), '-C', dest, '--warning=no-unknown-keyword']);
    expect(readFileSync(join(dest, 'data/which.txt'), 'utf8')).toBe('two');
    expect(JSON.parse(execFileSync('tar', ['-xOf', join(libRoot, 'tapes/TA0001/file-0000'), 'TAPE-LABEL.json']).toString())).toEqual(label);
    expect(execFileSync('tar', ['-b', '512', '-tf', join(libRoot, 'tapes/TA0001/file-0001')], { stdio: ['ignore', 'pipe', 'ignore'] }).toString()).toMatch(
      /^header\.json\ndata\/\n[\s\S]*\ntrailer\.json\n$/,
    );
  });
});
