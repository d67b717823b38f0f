import { errorOf } from '../support/rejection.ts';
import { execFile, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { promisify } from 'node:util';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ConflictError, NotFoundError, ValidationError } from '../../src/lib/errors.ts';
import {
  EndOfMediumError,
  NoTapeError,
  PositionError,
  TapeBusyError,
  TapeIOError,
  WriteProtectedError,
  isTapeChanger,
  isTapeError,
  type TapeDrive,
} from '../../src/lib/tape/drive.ts';
import { VirtualTapeLibrary, type VirtualTapeDrive } from '../../src/lib/tape/virtual-library.ts';

const execFileP = promisify(execFile);
const REPO = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const BS = 4096;

let root: string;
let lib: VirtualTapeLibrary;
let drive: VirtualTapeDrive;

beforeEach(async () => {
  root = await mkdtemp(join(tmpdir(), 'vtl-test-'));
  lib = new VirtualTapeLibrary(root, { blockSize: BS });
  drive = lib.drive('vtl0');
});

afterEach(async () => {
  await rm(root, { recursive: true, force: true });
});

async function collect(it: AsyncIterable<Buffer>): Promise<Buffer[]> {
  const out: Buffer[] = [];
  for await (const b of it) out.push(b);
  return out;
}

async function readAll(d: TapeDrive): Promise<Buffer> {
  return Buffer.concat(await collect(d.readFile()));
}

async function writeFile_(d: TapeDrive, data: Buffer, chunk = 1000): Promise<{ bytes: number; tapeBytes: number }> {
  const w = await d.openWriter();
  for (let off = 0; off < data.length; off += chunk) await w.write(data.subarray(off, off + chunk));
  return w.close();
}

function padded(data: Buffer, bs = BS): Buffer {
  const out = Buffer.alloc(Math.ceil(data.length / bs) * bs);
  data.copy(out);
  return out;
}

async function newTape(name = 'TA0001', capacityBytes = 100 * BS): Promise<void> {
  await lib.createTape(name, { capacityBytes });
  await drive.load(name);
}

// ------------------------------------------------------------------------------------------
describe('library and changer', () => {
  it('creates tapes as directories with meta.json and lists them', async () => {
    const info = await lib.createTape('TA0001', { capacityBytes: 1_000_000 });
    expect(info).toEqual({
      name: 'TA0001',
      capacityBytes: 1_000_000,
      writeProtected: false,
      blockMode: 'fixed',
      files: 0,
      usedBytes: 0,
      hasPartial: false,
      loadedIn: null,
    });
    const meta = JSON.parse(await readFile(join(root, 'tapes', 'TA0001', 'meta.json'), 'utf8'));
    expect(meta).toMatchObject({ version: 1, name: 'TA0001', capacityBytes: 1_000_000, writeProtected: false });
    await lib.createTape('TA0002', { capacityBytes: 5 * BS });
    await drive.load('TA0002');
    expect((await lib.listTapes()).map((t) => [t.name, t.loadedIn])).toEqual([
      ['TA0001', null],
      ['TA0002', 'vtl0'],
    ]);
    await expect(lib.createTape('TA0001', { capacityBytes: 1 })).rejects.toBeInstanceOf(ConflictError);
    await expect(lib.createTape('../evil', { capacityBytes: 1 })).rejects.toBeInstanceOf(ValidationError);
    await expect(lib.createTape('TA0003', { capacityBytes: 0 })).rejects.toBeInstanceOf(ValidationError);
    await expect(lib.setWriteProtected('NOPE', true)).rejects.toBeInstanceOf(NotFoundError);
    expect(await new VirtualTapeLibrary(join(root, 'empty')).listTapes()).toEqual([]);
  });

  it('load / unload / loadedTape, persisted at drives/<id>.json; a tape is in one drive at a time', async () => {
    await lib.createTape('TA0001', { capacityBytes: 10 * BS });
    await lib.createTape('TA0002', { capacityBytes: 10 * BS });
    expect(isTapeChanger(drive)).toBe(true);
    expect(await drive.loadedTape()).toBeNull();
    await drive.load('TA0001');
    expect(await drive.loadedTape()).toBe('TA0001');
    expect(JSON.parse(await readFile(join(root, 'drives', 'vtl0.json'), 'utf8'))).toMatchObject({ tape: 'TA0001', fileNumber: 0 });
    const other = lib.drive('vtl1');
    expect(await errorOf(other.load('TA0001'))).toBeInstanceOf(TapeBusyError);
    await other.load('TA0002');
    await drive.unload();
    expect(await drive.loadedTape()).toBeNull();
    await other.load('TA0001'); // swaps TA0002 out of vtl1
    expect(await other.loadedTape()).toBe('TA0001');
    const e = await errorOf(drive.load('NOPE'));
    expect(e).toBeInstanceOf(NoTapeError);
    expect(e.message).toMatch(/no such tape/);
  });

  it('every drive operation without a tape -> NoTapeError', async () => {
    expect(await drive.status()).toEqual({ loaded: false, writeProtected: false, fileNumber: null, blockSize: BS });
    // one at a time: promises made all at once could reject before their handler is attached
    const ops = [() => drive.rewind(), () => drive.seekFile(0), () => drive.seekEndOfData(), () => drive.openWriter(), () => collect(drive.readFile())];
    for (const op of ops) {
      const e = await errorOf(op());
      expect(e).toBeInstanceOf(NoTapeError);
      expect(e.code).toBe('TAPE_NO_TAPE');
      expect(e.name).toBe('NoTapeError');
      expect(e.message).toMatch(/vtl0.*load/);
    }
  });

  it('loading a tape positions at file 0', async () => {
    await newTape();
    await writeFile_(drive, Buffer.from('x'));
    await drive.unload();
    await drive.load('TA0001');
    expect((await drive.status()).fileNumber).toBe(0);
  });
});

// ------------------------------------------------------------------------------------------
describe('writing and reading', () => {
  it('round-trips files in fixed blocks with zero padding; files are plain files on disk', async () => {
    await newTape();
    const a = randomBytes(BS * 2 + 17);
    const b = randomBytes(5);
    expect(await writeFile_(drive, a, 777)).toEqual({ bytes: a.length, tapeBytes: BS * 3 });
    expect(await drive.status()).toEqual({ loaded: true, writeProtected: false, fileNumber: 1, blockSize: BS });
    await writeFile_(drive, b);
    expect(await readFile(lib.tapeFilePath('TA0001', 0))).toEqual(padded(a));
    expect(lib.tapeFilePath('TA0001', 1)).toBe(join(root, 'tapes', 'TA0001', 'file-0001'));
    expect((await stat(lib.tapeFilePath('TA0001', 1))).size).toBe(BS);

    await drive.rewind();
    const blocks = await collect(drive.readFile());
    expect(blocks.map((x) => x.length)).toEqual([BS, BS, BS]);
    expect(Buffer.concat(blocks)).toEqual(padded(a));
    expect((await drive.status()).fileNumber).toBe(1); // the next file, without a seek
    expect(await readAll(drive)).toEqual(padded(b));
    expect(await drive.seekEndOfData()).toBe(2);
  });

  it('accepts any chunking, including chunks larger than many blocks and writes not awaited one by one', async () => {
    await newTape();
    const data = randomBytes(BS * 7 + 1234);
    const w = await drive.openWriter();
    const parts = [data.subarray(0, 1), data.subarray(1, BS * 5 + 3), data.subarray(BS * 5 + 3, BS * 5 + 4), data.subarray(BS * 5 + 4)];
    await Promise.all(parts.map((p) => w.write(p)));
    expect((await w.close()).bytes).toBe(data.length);
    await drive.rewind();
    expect(await readAll(drive)).toEqual(padded(data));
  });

  it('random chunk sizes across the internal staging buffer round-trip exactly', async () => {
    await newTape('TA0001', 4096 * BS);
    const data = randomBytes(10 * 1024 * 1024 + 333);
    const w = await drive.openWriter();
    let seed = 12345;
    const rnd = (n: number) => ((seed = (seed * 1103515245 + 12345) & 0x7fffffff) % n) + 1;
    for (let off = 0; off < data.length; ) {
      const n = Math.min(data.length - off, [rnd(100), rnd(BS * 3), rnd(6 * 1024 * 1024)][rnd(3) - 1]!);
      await w.write(data.subarray(off, off + n));
      off += n;
    }
    expect(await w.close()).toEqual({ bytes: data.length, tapeBytes: Math.ceil(data.length / BS) * BS });
    await drive.rewind();
    const back = await readAll(drive);
    expect(back.length).toBe(Math.ceil(data.length / BS) * BS);
    expect(back.subarray(0, data.length).equals(data)).toBe(true);
    expect(back.subarray(data.length).every((b) => b === 0)).toBe(true);
  });

  it('an empty file is an empty tape file', async () => {
    await newTape();
    expect(await writeFile_(drive, Buffer.alloc(0))).toEqual({ bytes: 0, tapeBytes: 0 });
    await drive.rewind();
    expect(await collect(drive.readFile())).toEqual([]);
    expect(await drive.seekEndOfData()).toBe(1);
  });

  it('seekFile: any file up to end of data; past it -> PositionError; reading at EOD -> PositionError', async () => {
    await newTape();
    for (let i = 0; i < 3; i++) await writeFile_(drive, Buffer.from(`file ${i}`));
    await drive.seekFile(2);
    expect((await readAll(drive)).subarray(0, 6).toString()).toBe('file 2');
    await drive.seekFile(0);
    expect((await readAll(drive)).subarray(0, 6).toString()).toBe('file 0');
    await drive.seekFile(3); // = end of data
    const eod = await errorOf(collect(drive.readFile()));
    expect(eod).toBeInstanceOf(PositionError);
    expect(eod.message).toMatch(/end of data/);
    const past = await errorOf(drive.seekFile(4));
    expect(past).toBeInstanceOf(PositionError);
    expect(past.code).toBe('TAPE_POSITION');
    expect(past.message).toMatch(/3 file\(s\).*past end of data/);
    await expect(drive.seekFile(-1)).rejects.toBeInstanceOf(PositionError);
    await expect(drive.seekFile(1.5)).rejects.toBeInstanceOf(PositionError);
  });

  it('writing at file N removes files >= N (tape semantics)', async () => {
    await newTape();
    for (let i = 0; i < 4; i++) await writeFile_(drive, Buffer.from(`file ${i}`));
    await drive.seekFile(1);
    await writeFile_(drive, Buffer.from('new 1'));
    expect((await readdir(join(root, 'tapes', 'TA0001'))).filter((f) => f.startsWith('file-')).sort()).toEqual(['file-0000', 'file-0001']);
    expect(await drive.seekEndOfData()).toBe(2);
    await drive.seekFile(0);
    expect((await readAll(drive)).subarray(0, 6).toString()).toBe('file 0');
    expect((await readAll(drive)).subarray(0, 5).toString()).toBe('new 1');
  });

  it('abort leaves a .partial (no filemark); end of data excludes it; the next write replaces it', async () => {
    await newTape();
    await writeFile_(drive, Buffer.from('label'));
    const w = await drive.openWriter();
    await w.write(randomBytes(BS * 2 + 5));
    await w.abort();
    await w.abort(); // idempotent
    const partial = join(root, 'tapes', 'TA0001', 'file-0001.partial');
    expect((await stat(partial)).size).toBe(BS * 2); // the whole blocks that reached tape
    expect(existsSync(lib.tapeFilePath('TA0001', 1))).toBe(false);
    expect(await lib.tapeInfo('TA0001')).toMatchObject({ files: 1, hasPartial: true, usedBytes: BS * 3 });
    expect((await drive.status()).fileNumber).toBe(1);
    expect(await drive.seekEndOfData()).toBe(1);
    await expect(drive.seekFile(2)).rejects.toBeInstanceOf(PositionError);
    await expect(w.write(Buffer.from('x'))).rejects.toThrow(/already aborted/);
    await writeFile_(drive, Buffer.from('again'));
    expect(existsSync(partial)).toBe(false);
    expect(await drive.seekEndOfData()).toBe(2);
  });

  it('a writer that never closes (crash) leaves the .partial, seen by another library instance', async () => {
    await newTape();
    const w = await drive.openWriter();
    await w.write(randomBytes(BS));
    const other = new VirtualTapeLibrary(root, { blockSize: BS });
    expect(await other.tapeInfo('TA0001')).toMatchObject({ files: 0, hasPartial: true });
    expect(await other.drive('vtl0').seekEndOfData()).toBe(0);
    await w.abort();
  });

  it('one thing at a time per drive: TapeBusyError while a writer is open or a read is running', async () => {
    await newTape();
    const w = await drive.openWriter();
    const ops = [
      () => drive.openWriter(),
      () => drive.rewind(),
      () => drive.seekFile(0),
      () => drive.seekEndOfData(),
      () => drive.unload(),
      () => collect(drive.readFile()),
    ];
    for (const op of ops) expect(await errorOf(op())).toBeInstanceOf(TapeBusyError);
    await w.write(Buffer.from('data'));
    await w.close();
    await expect(w.close()).rejects.toThrow(/already closed/);
    await drive.rewind();
    const it = drive.readFile()[Symbol.asyncIterator]();
    await it.next();
    expect(await errorOf(drive.seekFile(0))).toBeInstanceOf(TapeBusyError);
    await it.return!();
    await drive.seekFile(0);
  });

  it('a read stopped early leaves the drive inside the file: readFile/openWriter want a seek first', async () => {
    await newTape();
    await writeFile_(drive, randomBytes(BS * 3));
    await drive.rewind();
    for await (const _ of drive.readFile()) break;
    expect((await drive.status()).fileNumber).toBe(0);
    await expect(collect(drive.readFile())).rejects.toBeInstanceOf(PositionError);
    await expect(drive.openWriter()).rejects.toBeInstanceOf(PositionError);
    await drive.seekFile(0);
    expect((await collect(drive.readFile())).length).toBe(3);
  });

  it('readFile honours an AbortSignal', async () => {
    await newTape();
    await writeFile_(drive, randomBytes(BS * 3));
    await drive.rewind();
    const ac = new AbortController();
    const got: Buffer[] = [];
    const err = await errorOf(
      (async () => {
        for await (const b of drive.readFile({ signal: ac.signal })) {
          got.push(b);
          ac.abort();
        }
      })(),
    );
    expect(err.name).toBe('AbortError');
    expect(got).toHaveLength(1);
  });
});

// ------------------------------------------------------------------------------------------
describe('capacity, write protection', () => {
  it('crossing capacity -> EndOfMediumError from write(); whole blocks that fit stay in the .partial', async () => {
    await newTape('TA0001', 5 * BS);
    await writeFile_(drive, randomBytes(2 * BS)); // file 0: 2 blocks
    const w = await drive.openWriter();
    await w.write(randomBytes(BS)); // 3 blocks used
    const err = await errorOf(w.write(randomBytes(3 * BS)));
    expect(err).toBeInstanceOf(EndOfMediumError);
    expect(err.code).toBe('TAPE_END_OF_MEDIUM');
    expect(err.context).toMatchObject({ drive: 'vtl0', tape: 'TA0001', fileNumber: 1 });
    expect(err.message).toMatch(/another tape/);
    expect(isTapeError(err)).toBe(true);
    await expect(w.write(Buffer.from('x'))).rejects.toBe(err);
    await expect(w.close()).rejects.toBe(err);
    await w.abort();
    expect((await stat(lib.partialFilePath('TA0001', 1))).size).toBe(3 * BS);
    expect(await drive.seekEndOfData()).toBe(1);
  });

  it('EOM on a large file written in small chunks: the .partial holds exactly the blocks that fit', async () => {
    await newTape('TA0001', 1500 * BS);
    const data = randomBytes(2000 * BS);
    const w = await drive.openWriter();
    let err: unknown;
    let accepted = 0;
    for (let off = 0; off < data.length; off += 100_000) {
      try {
        await w.write(data.subarray(off, off + 100_000));
        accepted = off + 100_000;
      } catch (e) {
        err = e;
        break;
      }
    }
    expect(err).toBeInstanceOf(EndOfMediumError);
    expect(accepted).toBeLessThanOrEqual(1500 * BS);
    await w.abort();
    const partial = await readFile(lib.partialFilePath('TA0001', 0));
    expect(partial.length).toBe(1500 * BS);
    expect(partial.equals(data.subarray(0, 1500 * BS))).toBe(true);
  });

  it('exactly filling the tape works; padding that crosses capacity fails at close()', async () => {
    await newTape('TA0001', 3 * BS);
    await writeFile_(drive, randomBytes(3 * BS));
    await drive.rewind();
    const w = await drive.openWriter();
    await w.write(randomBytes(3 * BS)); // overwrite from file 0: fits exactly
    await w.write(Buffer.from('one byte too many, once padded'));
    await expect(w.close()).rejects.toBeInstanceOf(EndOfMediumError);
    await w.abort();
  });

  it('a write-protected tape: WriteProtectedError from openWriter(), reads still work', async () => {
    await newTape();
    await writeFile_(drive, Buffer.from('keep me'));
    await lib.setWriteProtected('TA0001', true);
    expect((await drive.status()).writeProtected).toBe(true);
    await drive.rewind();
    const e = await errorOf(drive.openWriter());
    expect(e).toBeInstanceOf(WriteProtectedError);
    expect(e.code).toBe('TAPE_WRITE_PROTECTED');
    expect(e.message).toMatch(/setWriteProtected/);
    expect((await readAll(drive)).subarray(0, 7).toString()).toBe('keep me');
    expect(await drive.seekEndOfData()).toBe(1); // nothing was truncated
    await lib.setWriteProtected('TA0001', false);
    await writeFile_(drive, Buffer.from('more'));
    expect(await drive.seekEndOfData()).toBe(2);
  });
});

// ------------------------------------------------------------------------------------------
describe('fault injection', () => {
  it('end-of-medium fault: the tape ends after afterBytes in total; once = gone after firing', async () => {
    await newTape('TA0001', 100 * BS);
    await writeFile_(drive, randomBytes(BS));
    await lib.injectFault('TA0001', { kind: 'end-of-medium', afterBytes: 3 * BS, once: true });
    const w = await drive.openWriter();
    await expect(w.write(randomBytes(4 * BS))).rejects.toBeInstanceOf(EndOfMediumError);
    await w.abort();
    expect((await stat(lib.partialFilePath('TA0001', 1))).size).toBe(2 * BS);
    expect(await lib.listFaults('TA0001')).toEqual([]);
    expect(existsSync(join(root, 'tapes', 'TA0001', 'faults.json'))).toBe(false);
    // retry succeeds
    await writeFile_(drive, randomBytes(4 * BS));
    expect(await drive.seekEndOfData()).toBe(2);
  });

  it('end-of-medium fault without once stays', async () => {
    await newTape();
    await lib.injectFault('TA0001', { kind: 'end-of-medium', afterBytes: BS });
    for (let i = 0; i < 2; i++) {
      await drive.rewind();
      const w = await drive.openWriter();
      await expect(w.write(randomBytes(2 * BS))).rejects.toBeInstanceOf(EndOfMediumError);
      await w.abort();
    }
    expect(await lib.listFaults('TA0001')).toHaveLength(1);
  });

  it('write-error fault on file N after afterBytes -> TapeIOError with fileNumber; other files unaffected', async () => {
    await newTape();
    const id = await lib.injectFault('TA0001', { kind: 'write-error', fileNumber: 1, afterBytes: BS });
    await writeFile_(drive, randomBytes(3 * BS)); // file 0 is fine
    const w = await drive.openWriter();
    await w.write(randomBytes(BS)); // within afterBytes
    const e = await errorOf(w.write(randomBytes(BS)));
    expect(e).toBeInstanceOf(TapeIOError);
    expect(e.code).toBe('TAPE_IO');
    expect(e.fileNumber).toBe(1);
    expect(e.message).toMatch(/file 1/);
    await w.abort();
    // persistent: fails again
    const w2 = await drive.openWriter();
    await expect(w2.write(randomBytes(2 * BS))).rejects.toBeInstanceOf(TapeIOError);
    await w2.abort();
    expect((await lib.listFaults('TA0001')).map((f) => f.id)).toEqual([id]);
    await lib.clearFaults('TA0001');
    await writeFile_(drive, randomBytes(2 * BS));
  });

  it('write-error fault with an unaligned afterBytes stops at the last whole block before it', async () => {
    await newTape();
    await lib.injectFault('TA0001', { kind: 'write-error', fileNumber: 0, afterBytes: 2 * BS + 10 });
    const w = await drive.openWriter();
    await w.write(randomBytes(2 * BS + 10)); // staged, nothing past the fault yet
    await expect(w.close()).rejects.toBeInstanceOf(TapeIOError); // padding crosses it
    await w.abort();
    expect((await stat(lib.partialFilePath('TA0001', 0))).size).toBe(2 * BS);
  });

  it('write-error fault with once: the retry succeeds', async () => {
    await newTape();
    await lib.injectFault('TA0001', { kind: 'write-error', fileNumber: 0, afterBytes: 0, once: true });
    const w = await drive.openWriter();
    await expect(w.write(randomBytes(BS))).rejects.toBeInstanceOf(TapeIOError);
    await w.abort();
    expect(await lib.listFaults('TA0001')).toEqual([]);
    const data = randomBytes(BS);
    await writeFile_(drive, data);
    await drive.rewind();
    expect(await readAll(drive)).toEqual(data);
  });

  it('read-error fault: blocks before afterBytes are yielded, then TapeIOError; persistent vs once', async () => {
    await newTape();
    await writeFile_(drive, randomBytes(BS));
    const data = randomBytes(4 * BS);
    await writeFile_(drive, data);
    await lib.injectFault('TA0001', { kind: 'read-error', fileNumber: 1, afterBytes: 2 * BS + 10 });
    await drive.rewind();
    await readAll(drive); // file 0 unaffected
    const got: Buffer[] = [];
    const e = await errorOf(
      (async () => {
        for await (const b of drive.readFile()) got.push(b);
      })(),
    );
    expect(e).toBeInstanceOf(TapeIOError);
    expect(e.fileNumber).toBe(1);
    expect(Buffer.concat(got)).toEqual(data.subarray(0, 2 * BS));
    // position is inside file 1 now
    await expect(collect(drive.readFile())).rejects.toBeInstanceOf(PositionError);
    await drive.seekFile(1);
    await expect(collect(drive.readFile())).rejects.toBeInstanceOf(TapeIOError); // persistent

    await lib.clearFaults('TA0001');
    await lib.injectFault('TA0001', { kind: 'read-error', fileNumber: 1, afterBytes: 0, once: true });
    await drive.seekFile(1);
    await expect(collect(drive.readFile())).rejects.toBeInstanceOf(TapeIOError);
    await drive.seekFile(1);
    expect(await readAll(drive)).toEqual(data); // the retry succeeds
  });

  it('flip-byte fault: that byte reads back XOR 0xff, nothing else; the file on disk is intact', async () => {
    await newTape();
    const data = randomBytes(3 * BS);
    await writeFile_(drive, data);
    const offset = BS + 123;
    await lib.injectFault('TA0001', { kind: 'flip-byte', fileNumber: 0, offset });
    const expected = Buffer.from(data);
    expected[offset] = expected[offset]! ^ 0xff;
    for (let i = 0; i < 2; i++) {
      await drive.seekFile(0);
      expect(await readAll(drive)).toEqual(expected);
    }
    expect(await readFile(lib.tapeFilePath('TA0001', 0))).toEqual(data);

    await lib.clearFaults('TA0001');
    await lib.injectFault('TA0001', { kind: 'flip-byte', fileNumber: 0, offset: 0, once: true });
    await drive.seekFile(0);
    const once = await readAll(drive);
    expect(once[0]).toBe(data[0]! ^ 0xff);
    await drive.seekFile(0);
    expect(await readAll(drive)).toEqual(data);
  });

  it('faults are validated and persisted in the tape directory', async () => {
    await newTape();
    await expect(lib.injectFault('TA0001', { kind: 'flip-byte', fileNumber: -1, offset: 0 })).rejects.toBeInstanceOf(ValidationError);
    await expect(lib.injectFault('TA0001', { kind: 'melt' } as never)).rejects.toBeInstanceOf(ValidationError);
    await expect(lib.injectFault('NOPE', { kind: 'end-of-medium', afterBytes: 1 })).rejects.toBeInstanceOf(NotFoundError);
    await lib.injectFault('TA0001', { kind: 'read-error', fileNumber: 2, afterBytes: 5 });
    const onDisk = JSON.parse(await readFile(join(root, 'tapes', 'TA0001', 'faults.json'), 'utf8'));
    expect(onDisk).toEqual([{ kind: 'read-error', fileNumber: 2, afterBytes: 5, id: expect.any(String) }]);
    await lib.clearFaults('TA0001');
    expect(await lib.listFaults('TA0001')).toEqual([]);
  });
});

// ------------------------------------------------------------------------------------------
describe('state on disk (cross-process semantics)', () => {
  it('a second VirtualTapeLibrary on the same dir sees the same tapes, drives, positions, files and faults', async () => {
    await newTape();
    await writeFile_(drive, Buffer.from('from instance 1'));
    const lib2 = new VirtualTapeLibrary(root, { blockSize: BS });
    const d2 = lib2.drive('vtl0');
    expect(await d2.loadedTape()).toBe('TA0001');
    expect(await d2.status()).toMatchObject({ loaded: true, fileNumber: 1 });
    await lib2.injectFault('TA0001', { kind: 'flip-byte', fileNumber: 0, offset: 0, once: true });
    await d2.rewind();
    expect((await drive.status()).fileNumber).toBe(0); // instance 1 sees the rewind
    const got = await readAll(drive); // and the fault injected through instance 2
    expect(got[0]).toBe('f'.charCodeAt(0) ^ 0xff);
    expect(await lib2.listFaults('TA0001')).toEqual([]);
    await lib2.setWriteProtected('TA0001', true);
    await drive.seekEndOfData();
    await expect(drive.openWriter()).rejects.toBeInstanceOf(WriteProtectedError);
  });

  it('a separate OS process writes through the library and this process reads the result', async () => {
    await newTape();
    await writeFile_(drive, Buffer.from('label'));
    const script = join(root, 'child.mts');
    const modUrl = pathToFileURL(join(REPO, 'src/lib/tape/virtual-library.ts')).href;
    await writeFile(
      script,
      `import { VirtualTapeLibrary } from ${JSON.stringify(modUrl)};
const [dir, text] = process.argv.slice(2);
const d = new VirtualTapeLibrary(dir, { blockSize: ${BS} }).drive('vtl0');
const n = await d.seekEndOfData();
const w = await d.openWriter();
await w.write(Buffer.from(text));
const res = await w.close();
console.log(JSON.stringify({ n, ...res, status: await d.status() }));
`,
    );
    const { stdout } = await execFileP(process.execPath, ['--import', 'tsx', script, root, 'written by the child'], { cwd: REPO });
    expect(JSON.parse(stdout)).toEqual({ n: 1, bytes: 20, tapeBytes: BS, status: { loaded: true, writeProtected: false, fileNumber: 2, blockSize: BS } });
    expect((await drive.status()).fileNumber).toBe(2);
    await drive.seekFile(1);
    expect((await readAll(drive)).subarray(0, 20).toString()).toBe('written by the child');
  });
});

// ------------------------------------------------------------------------------------------
describe('GNU tar compatibility', () => {
  it('a tar stream written through the drive is a tape file GNU tar lists and extracts', async () => {
    const big = new VirtualTapeLibrary(root, { blockSize: 256 * 1024 });
    const d = big.drive('vtl1');
    await big.createTape('TAR001', { capacityBytes: 64 * 1024 * 1024 });
    await d.load('TAR001');
    // file 0: a label; the tar goes to file 1
    const lw = await d.openWriter();
    await lw.write(Buffer.from('VOL1TAR001'));
    await lw.close();

    const src = join(root, 'src');
    await mkdir(join(src, 'sub', 'deeper'), { recursive: true });
    const files: Record<string, Buffer> = {
      'a.txt': Buffer.from('hello tape\n'),
      'sub/b.bin': randomBytes(700_000),
      'sub/deeper/c.bin': randomBytes(3 * 256 * 1024 + 1),
      empty: Buffer.alloc(0),
    };
    for (const [rel, content] of Object.entries(files)) await writeFile(join(src, rel), content);

    const tar = spawn('tar', ['-cf', '-', '-C', src, '.'], { stdio: ['ignore', 'pipe', 'pipe'] });
    const exited = new Promise<number>((res, rej) => {
      tar.on('error', rej);
      tar.on('close', (code) => res(code ?? -1));
    });
    const w = await d.openWriter();
    for await (const chunk of tar.stdout) await w.write(chunk as Buffer);
    expect(await exited).toBe(0);
    const { bytes, tapeBytes } = await w.close();
    expect(tapeBytes % (256 * 1024)).toBe(0);
    expect(bytes).toBeGreaterThan(700_000 + 3 * 256 * 1024);

    const tapeFile = big.tapeFilePath('TAR001', 1);
    const { stdout: list } = await execFileP('tar', ['-tf', tapeFile]);
    const names = list
      .split('\n')
      .filter(Boolean)
      .map((n) => n.replace(/^\.\//, ''))
      .filter((n) => n && !n.endsWith('/'));
    expect(names.sort()).toEqual(Object.keys(files).sort());

    const out = join(root, 'out');
    await mkdir(out);
    await execFileP('tar', ['-xf', tapeFile, '-C', out]);
    for (const [rel, content] of Object.entries(files)) expect((await readFile(join(out, rel))).equals(content), rel).toBe(true);

    // and through the drive: readFile piped into `tar -x`
    const out2 = join(root, 'out2');
    await mkdir(out2);
    await d.seekFile(1);
    const untar = spawn('tar', ['-xf', '-', '-C', out2], { stdio: ['pipe', 'ignore', 'pipe'] });
    const untarDone = new Promise<number>((res, rej) => {
      untar.on('error', rej);
      untar.on('close', (code) => res(code ?? -1));
    });
    // tar stops reading at its end-of-archive marker, before the block padding: a write after
    // that fails with EPIPE, and a pending 'drain' never comes.
    untar.stdin.on('error', () => undefined);
    for await (const block of d.readFile()) {
      if (untar.exitCode !== null) break;
      if (!untar.stdin.write(block)) await Promise.race([new Promise((r) => untar.stdin.once('drain', r)), untarDone]);
    }
    untar.stdin.end();
    expect(await untarDone).toBe(0);
    for (const [rel, content] of Object.entries(files)) expect((await readFile(join(out2, rel))).equals(content), rel).toBe(true);
  });
});
