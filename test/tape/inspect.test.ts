/** `tape-agent inspect`: the label and every file header of a tape, read only. */
import { createHash } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { main } from '../../src/agent/main.ts';
import { inspectTape } from '../../src/agent/inspect.ts';
import { VirtualTapeLibrary } from '../../src/lib/tape/virtual-library.ts';
import { FORMAT, writeLabel, writeTargetFile } from '../../src/lib/tape-format/index.ts';

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'inspect-'));
  const lib = new VirtualTapeLibrary(join(dir, 'vtl'));
  await lib.createTape('T1', { capacityBytes: 100_000_000 });
  const drive = lib.drive('w');
  await drive.load('T1');
  let w = await drive.openWriter();
  await writeLabel(w, { format: FORMAT, tapeName: 'T1', barcode: 'TA0001L9', createdAt: '2026-01-01T00:00:00.000Z', blockSize: lib.blockSize });
  await w.close();
  const sha = createHash('sha256').update('hi').digest('hex');
  const manifest = [{ path: 'a', type: 'file' as const, size: 2, mtimeMs: 0, mode: 0o644, sha256: sha }];
  w = await drive.openWriter();
  await writeTargetFile({
    writer: w,
    header: {
      tapeName: 'T1',
      fileNumber: 1,
      taskId: 'task-1',
      target: { id: 't-1', host: 'h', path: '/data/one' },
      scanId: 's',
      writtenAt: '2026-01-02T00:00:00.000Z',
      manifest,
    },
    source: [{ entry: { path: 'a', type: 'file', size: 2, mode: 0o644, mtimeMs: 0 }, content: [Buffer.from('hi')] }],
  });
  await w.close();
  w = await drive.openWriter(); // a file that is not a target file
  await w.write(Buffer.alloc(lib.blockSize, 0x41));
  await w.close();
  await drive.unload();
});
afterAll(async () => {
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe('tape-agent inspect', () => {
  it('reads the label and each header without changing the tape', async () => {
    const lib = new VirtualTapeLibrary(join(dir, 'vtl'));
    const before = await lib.listFiles('T1');
    const drive = lib.drive('r');
    await drive.load('T1');
    const r = await inspectTape(drive);
    await drive.unload();
    expect(r.label).toMatchObject({ tapeName: 'T1', barcode: 'TA0001L9' });
    expect(r.filesOnTape).toBe(3);
    expect(r.files[0]).toMatchObject({ fileNumber: 1, target: { id: 't-1', path: '/data/one' }, fileCount: 1, totalBytes: 2, taskId: 'task-1' });
    expect(r.files[1]).toMatchObject({ fileNumber: 2, error: expect.stringMatching(/not a tape-archive target file/) });
    expect(await lib.listFiles('T1')).toEqual(before);
  });

  it('prints it on the command line (exit 0 with a label)', async () => {
    const out: string[] = [];
    const spy = vi.spyOn(console, 'log').mockImplementation((s: string) => void out.push(s));
    try {
      expect(await main(['inspect', '--vtl', join(dir, 'vtl'), '--tape', 'T1'])).toBe(0);
    } finally {
      spy.mockRestore();
    }
    const text = out.join('\n');
    expect(text).toMatch(/^file 0: label T1 \(barcode TA0001L9/m);
    expect(text).toMatch(/^file 1: t-1 h:\/data\/one, 1 file\(s\), 2 bytes/m);
    expect(text).toMatch(/^file 2: NOT A TARGET FILE/m);
    expect(text).toMatch(/3 complete file\(s\) on tape/);
  });
});
