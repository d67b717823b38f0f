/**
 * Variable-block tapes in the virtual tape library: a tapetown emulator directory imported
 * as a read-only tape and read back through the drive with variable blocks.
 */
import { errorOf } from '../support/rejection.ts';
import { execFile, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdir, mkdtemp, readFile, readdir, rm, stat, symlink, truncate, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { main } from '../../src/agent/main.ts';
import { ConflictError, NotFoundError, ValidationError } from '../../src/lib/errors.ts';
import { BlockSizeError, PositionError, TapeIOError, WriteProtectedError } from '../../src/lib/tape/drive.ts';
import { TAPETOWN_RECORD_BYTES, VirtualTapeLibrary, type VirtualTapeDrive } from '../../src/lib/tape/virtual-library.ts';
import { metaSchema } from '../../src/lib/tape/vtl-state.ts';

const execFileP = promisify(execFile);
const BS = 4096;
const R = TAPETOWN_RECORD_BYTES;

let work: string;
let emu: string;
let lib: VirtualTapeLibrary;
let drive: VirtualTapeDrive;

const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');

/** `tar -c` of an absolute path, as tapetown ran it over ssh: GNU format, names without the leading '/'. */
async function tapetownTar(target: string, out: string): Promise<void> {
  await execFileP('tar', ['-c', '--format=gnu', '-f', out, target]);
}

/** GNU tar's listing of a tar stream fed on stdin (`tar -tf -`). */
function listStream(bytes: Buffer): Promise<string[]> {
  return new Promise((resolve, reject) => {
    const p = spawn('tar', ['-tf', '-'], { stdio: ['pipe', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    p.stdout.on('data', (d) => (out += d));
    p.stderr.on('data', (d) => (err += d));
    p.on('error', reject);
    p.on('close', (code) => (code === 0 ? resolve(out.split('\n').filter(Boolean)) : reject(new Error(`tar -tf - exited ${code}: ${err}`))));
    p.stdin.end(bytes);
  });
}

async function listFile(path: string): Promise<string[]> {
  return (await execFileP('tar', ['-tf', path])).stdout.split('\n').filter(Boolean);
}

/** Every entry of a directory with its size, mtime and sha256: to prove it was not touched. */
async function fingerprint(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const name of (await readdir(dir)).sort()) {
    const st = await stat(join(dir, name));
    out.push(`${name} ${st.size} ${st.mtimeMs} ${st.mode} ${sha256(await readFile(join(dir, name)))}`);
  }
  return out;
}

async function collect(it: AsyncIterable<Buffer>): Promise<Buffer[]> {
  const out: Buffer[] = [];
  for await (const b of it) out.push(b);
  return out;
}

beforeEach(async () => {
  work = await mkdtemp(join(tmpdir(), 'vtl-variable-'));
  // Two targets as absolute paths, as tapetown archived them.
  const t1 = join(work, 'data', 'act6', 'season4');
  await mkdir(join(t1, 'obs1', 'x'.repeat(120)), { recursive: true }); // > 100 chars: a GNU ././@LongLink entry
  await writeFile(join(t1, 'obs1', 'f.dat'), Buffer.alloc(12_345, 7));
  await writeFile(join(t1, 'obs1', 'x'.repeat(120), 'deep.txt'), 'deep\n');
  await writeFile(join(t1, 'odd.bin'), Buffer.from('odd size'));
  await symlink('obs1/f.dat', join(t1, 'link'));
  const t2 = join(work, 'data', 'other');
  await mkdir(t2, { recursive: true });
  await writeFile(join(t2, 'big.bin'), Buffer.alloc(50_000, 3));
  emu = join(work, 'emulator');
  await mkdir(emu);
  await tapetownTar(t1, join(emu, 'file00000.tar'));
  await tapetownTar(t2, join(emu, 'file00001.tar'));
  lib = new VirtualTapeLibrary(join(work, 'vtl'), { blockSize: BS });
  drive = lib.drive('vtl0');
});

afterEach(async () => {
  vi.restoreAllMocks();
  await rm(work, { recursive: true, force: true });
});

describe('importing a tapetown emulator directory', () => {
  it('copies file00000.tar.. as tape files; variable blocks of 10240 bytes; GNU tar lists the same members; bytes identical', async () => {
    const before = await fingerprint(emu);
    const { tape, ignored } = await lib.importTapetownTape('TT0001', emu);
    const sizes = [(await stat(join(emu, 'file00000.tar'))).size, (await stat(join(emu, 'file00001.tar'))).size];
    expect(tape).toMatchObject({ name: 'TT0001', files: 2, blockMode: 'variable', writeProtected: true, usedBytes: sizes[0]! + sizes[1]!, hasPartial: false });
    expect(ignored).toEqual([]);

    await drive.load('TT0001');
    expect(await drive.seekEndOfData()).toBe(2);
    expect(await drive.status()).toMatchObject({ loaded: true, writeProtected: true, fileNumber: 2 });
    await drive.rewind();
    for (const n of [0, 1]) {
      const src = join(emu, `file0000${n}.tar`);
      const blocks = await collect(drive.readFile({ variable: {} }));
      // GNU tar wrote whole 10240-byte records
      expect(blocks.every((b) => b.length === R)).toBe(true);
      expect(blocks).toHaveLength(sizes[n]! / R);
      const bytes = Buffer.concat(blocks);
      expect(sha256(bytes)).toBe(sha256(await readFile(src)));
      const members = await listStream(bytes);
      expect(members).toEqual(await listFile(src));
      // member names: the absolute target path without the leading '/'
      const target = join(work, 'data', n === 0 ? 'act6/season4' : 'other').slice(1);
      expect(members.every((m) => m.startsWith(`${target}/`))).toBe(true);
      if (n === 0)
        expect(members).toContain(`${target}/obs1/${'x'.repeat(120)}/deep.txt`); // a GNU long name
      else expect(members).toContain(`${target}/big.bin`);
    }
    expect((await drive.status()).fileNumber).toBe(2);
    expect(await fingerprint(emu)).toEqual(before);
  });

  it('meta.json marks the tape variable-block with its block sizes as runs, write protected, with its origin', async () => {
    await writeFile(join(emu, 'file00002.tar'), Buffer.alloc(2 * R + 1234, 1)); // a partial trailing tar
    await lib.importTapetownTape('TT0001', emu);
    const meta = JSON.parse(await readFile(join(lib.tapeDir('TT0001'), 'meta.json'), 'utf8'));
    const s0 = (await stat(join(emu, 'file00000.tar'))).size;
    expect(meta).toMatchObject({
      version: 1,
      name: 'TT0001',
      writeProtected: true,
      blockMode: 'variable',
      origin: { kind: 'tapetown-emulator', dir: emu, recordBytes: R },
    });
    expect(meta.blockSizes[0]).toEqual([[R, s0 / R]]);
    expect(meta.blockSizes[2]).toEqual([
      [R, 2],
      [1234, 1],
    ]);
    await drive.load('TT0001');
    await drive.seekFile(2);
    expect((await collect(drive.readFile({ variable: {} }))).map((b) => b.length)).toEqual([R, R, 1234]);
  });

  it('stops at the first gap and reports the files after it; the files keep the VTL layout', async () => {
    await writeFile(join(emu, 'file00003.tar'), 'after a gap');
    await writeFile(join(emu, 'notes.txt'), 'not a tape file');
    const { tape, ignored } = await lib.importTapetownTape('TT0001', emu);
    expect(tape.files).toBe(2);
    expect(ignored).toEqual(['file00003.tar']);
    expect((await readdir(lib.tapeDir('TT0001'))).sort()).toEqual(['file-0000', 'file-0001', 'meta.json']);
    expect(await lib.tapeFiles('TT0001')).toEqual([
      { fileNumber: 0, tapeBytes: (await stat(join(emu, 'file00000.tar'))).size },
      { fileNumber: 1, tapeBytes: (await stat(join(emu, 'file00001.tar'))).size },
    ]);
  });

  it('refuses a missing, an empty or a foreign directory and a name in use, saying what to do; leaves nothing behind', async () => {
    let e = await errorOf(lib.importTapetownTape('TT0001', join(work, 'nope')));
    expect(e).toBeInstanceOf(NotFoundError);
    expect(e.message).toMatch(/does not exist; give the emulator_dir from tapetown's tape.conf/);
    await mkdir(join(work, 'empty'));
    e = await errorOf(lib.importTapetownTape('TT0001', join(work, 'empty')));
    expect(e).toBeInstanceOf(ValidationError);
    expect(e.message).toMatch(/no file00000.tar in .*the directory is empty/);
    await mkdir(join(work, 'foreign'));
    await writeFile(join(work, 'foreign', 'file00001.tar'), 'x');
    e = await errorOf(lib.importTapetownTape('TT0001', join(work, 'foreign')));
    expect(e).toBeInstanceOf(ValidationError);
    expect(e.message).toMatch(/no file00000.tar/);
    expect(await lib.listTapes()).toEqual([]);

    await lib.createTape('TT0001', { capacityBytes: 1_000_000 });
    e = await errorOf(lib.importTapetownTape('TT0001', emu));
    expect(e).toBeInstanceOf(ConflictError);
    expect(e.message).toMatch(/tape TT0001 already exists .*pick another name/);
    expect((await lib.tapeInfo('TT0001')).blockMode).toBe('fixed'); // untouched
    await expect(lib.importTapetownTape('../evil', emu)).rejects.toBeInstanceOf(ValidationError);
  });
});

describe('reading and writing an adopted tape', () => {
  beforeEach(async () => {
    await lib.importTapetownTape('TT0001', emu);
    await drive.load('TT0001');
  });

  it('writing is refused (WriteProtectedError), also after clearing the flag is attempted', async () => {
    const e = await errorOf(drive.openWriter());
    expect(e).toBeInstanceOf(WriteProtectedError);
    expect(e.message).toMatch(/adopted variable-block tape .* never written to/);
    await drive.seekEndOfData();
    await expect(drive.openWriter()).rejects.toBeInstanceOf(WriteProtectedError);
    const c = await errorOf(lib.setWriteProtected('TT0001', false));
    expect(c).toBeInstanceOf(ConflictError);
    expect(c.message).toMatch(/stays write protected/);
    expect((await lib.tapeInfo('TT0001')).writeProtected).toBe(true);
    expect(await lib.countFiles('TT0001')).toBe(2);
  });

  it('a fixed-block read is refused with the message to read variable blocks; the position stays', async () => {
    const e = await errorOf(collect(drive.readFile()));
    expect(e).toBeInstanceOf(BlockSizeError);
    expect(e.message).toMatch(/this tape was written in variable-block mode .*; read it with variable blocks: readFile\(\{ variable: \{\} \}\)/);
    expect(await drive.status()).toMatchObject({ fileNumber: 0 });
    expect((await collect(drive.readFile({ variable: {} }))).length).toBeGreaterThan(0);
  });

  it('a block larger than maxBlockBytes -> BlockSizeError naming the buffer and the option; a seek and a larger buffer read it', async () => {
    const e = await errorOf(collect(drive.readFile({ variable: { maxBlockBytes: 8192 } })));
    expect(e).toBeInstanceOf(BlockSizeError);
    expect(e.message).toContain(`${R} bytes, larger than the read buffer of 8192 bytes`);
    expect(e.message).toContain(`seekFile(0) and read the file again with a larger buffer: readFile({ variable: { maxBlockBytes: 16384 } })`);
    await expect(collect(drive.readFile({ variable: {} }))).rejects.toBeInstanceOf(PositionError); // inside the file
    await drive.seekFile(0);
    expect((await collect(drive.readFile({ variable: { maxBlockBytes: R } }))).every((b) => b.length === R)).toBe(true);
  });

  it('injected read faults act on variable reads too', async () => {
    const src = await readFile(join(emu, 'file00000.tar'));
    await lib.injectFault('TT0001', { kind: 'flip-byte', fileNumber: 0, offset: R + 5, once: true });
    const bytes = Buffer.concat(await collect(drive.readFile({ variable: {} })));
    expect(bytes[R + 5]).toBe(src[R + 5]! ^ 0xff);
    expect(bytes.subarray(0, R + 5)).toEqual(src.subarray(0, R + 5));
    await lib.injectFault('TT0001', { kind: 'read-error', fileNumber: 1, afterBytes: R });
    const got: Buffer[] = [];
    const err = await (async () => {
      for await (const b of drive.readFile({ variable: {} })) got.push(b);
    })().catch((x) => x);
    expect(err).toBeInstanceOf(TapeIOError);
    expect(got).toHaveLength(1);
  });

  it('a tape file that does not match meta.json fails clearly', async () => {
    await writeFile(lib.tapeFilePath('TT0001', 0), 'changed');
    const e = await errorOf(collect(drive.readFile({ variable: {} })));
    expect(e).toBeInstanceOf(TapeIOError);
    expect(e.message).toMatch(/meta.json lists \d+ bytes of blocks but the file holds 7 bytes.*Import the tape again/);
  });
});

describe('fixed-block tapes and meta.json compatibility', () => {
  it('a fixed-block tape read with the variable option yields blocks of the block size', async () => {
    await lib.createTape('TA0001', { capacityBytes: 100 * BS });
    await drive.load('TA0001');
    const data = Buffer.alloc(3 * BS + 100, 9);
    const w = await drive.openWriter();
    await w.write(data);
    await w.close();
    await drive.rewind();
    const blocks = await collect(drive.readFile({ variable: {} }));
    expect(blocks.map((b) => b.length)).toEqual([BS, BS, BS, BS]);
    expect(Buffer.concat(blocks).subarray(0, data.length)).toEqual(data);
    await drive.rewind();
    const e = await errorOf(collect(drive.readFile({ variable: { maxBlockBytes: BS - 1 } })));
    expect(e).toBeInstanceOf(BlockSizeError);
  });

  it('an older meta.json without blockMode is a fixed-block tape; blockMode and blockSizes go together', async () => {
    const old = { version: 1, name: 'OLD', capacityBytes: 10, writeProtected: false, createdAt: '2024-01-01T00:00:00.000Z' };
    expect(metaSchema.parse(old)).toEqual(old);
    await mkdir(lib.tapeDir('OLD'), { recursive: true });
    await writeFile(join(lib.tapeDir('OLD'), 'meta.json'), JSON.stringify(old));
    expect((await lib.tapeInfo('OLD')).blockMode).toBe('fixed');
    await lib.setWriteProtected('OLD', true);
    await lib.setWriteProtected('OLD', false);
    expect(metaSchema.safeParse({ ...old, blockMode: 'variable' }).success).toBe(false);
    expect(metaSchema.safeParse({ ...old, blockSizes: [] }).success).toBe(false);
    expect(metaSchema.safeParse({ ...old, blockMode: 'variable', blockSizes: [[[R, 0]]] }).success).toBe(false);
  });
});

describe('tape-agent vtl import-tapetown', () => {
  it('imports and says what it did; a gap is a warning', async () => {
    await writeFile(join(emu, 'file00005.tar'), 'x');
    const log = vi.spyOn(console, 'log').mockImplementation(() => undefined);
    const err = vi.spyOn(console, 'error').mockImplementation(() => undefined);
    const root = join(work, 'vtl');
    expect(await main(['vtl', 'import-tapetown', root, 'TT0009', emu])).toBe(0);
    expect(log.mock.calls.flat().join('\n')).toMatch(/virtual tape TT0009 imported from .*: 2 file\(s\), \d+ bytes, variable blocks, write protected/);
    expect(err.mock.calls.flat().join('\n')).toMatch(/not imported .*file00005.tar/);
    expect((await new VirtualTapeLibrary(root).tapeInfo('TT0009')).blockMode).toBe('variable');
    expect(await main(['vtl', 'import-tapetown', root, 'TT0009', emu])).toBe(1);
    expect(err.mock.calls.flat().join('\n')).toMatch(/already exists/);
  });
});

describe('the source directory', () => {
  it('is never modified: an import, reads and a failed second import leave it as it was', async () => {
    await truncate(join(emu, 'file00001.tar'), R + 3); // odd size
    const before = await fingerprint(emu);
    await lib.importTapetownTape('TT0001', emu);
    await drive.load('TT0001');
    await drive.seekFile(1);
    expect((await collect(drive.readFile({ variable: {} }))).map((b) => b.length)).toEqual([R, 3]);
    await expect(lib.importTapetownTape('TT0001', emu)).rejects.toBeInstanceOf(ConflictError);
    expect(await fingerprint(emu)).toEqual(before);
  });
});
