/**
 * Test and benchmark helpers: a TapeFileWriter over a plain file (pads to whole blocks on
 * close, like a tape), a block reader over a file, and a hostile sample tree.
 */
import { createReadStream } from 'node:fs';
import { mkdir, open, symlink, utimes, writeFile, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import type { TapeFileWriter } from '../../src/lib/tape/drive.ts';

export const BLOCK_SIZE = 256 * 1024;

/** A TapeFileWriter that writes to a plain file, padding the last block with zeros on close. */
export class PlainFileWriter implements TapeFileWriter {
  readonly fileNumber: number;
  private payload = 0;
  private pos = 0;
  private constructor(
    private readonly fh: FileHandle,
    readonly blockSize: number,
    fileNumber: number,
  ) {
    this.fileNumber = fileNumber;
  }

  static async create(path: string, blockSize = BLOCK_SIZE, fileNumber = 1): Promise<PlainFileWriter> {
    return new PlainFileWriter(await open(path, 'w'), blockSize, fileNumber);
  }

  async write(chunk: Buffer): Promise<void> {
    let off = 0;
    while (off < chunk.length) {
      const { bytesWritten } = await this.fh.write(chunk, off, chunk.length - off, this.pos);
      off += bytesWritten;
      this.pos += bytesWritten;
    }
    this.payload += chunk.length;
  }

  async close(): Promise<{ bytes: number; tapeBytes: number }> {
    const pad = (this.blockSize - (this.pos % this.blockSize)) % this.blockSize;
    if (pad) await this.write(Buffer.alloc(pad));
    this.payload -= pad;
    await this.fh.close();
    return { bytes: this.payload, tapeBytes: this.pos };
  }

  async abort(): Promise<void> {
    await this.fh.close();
  }
}

/** Reads a file as fixed-size blocks (like TapeDrive.readFile); the last one may be short. */
export async function* fileBlocks(path: string, blockSize = BLOCK_SIZE): AsyncGenerator<Buffer> {
  let carry: Buffer = Buffer.alloc(0);
  for await (const chunk of createReadStream(path, { highWaterMark: blockSize })) {
    let buf: Buffer = carry.length ? Buffer.concat([carry, chunk as Buffer]) : (chunk as Buffer);
    while (buf.length >= blockSize) {
      yield Buffer.from(buf.subarray(0, blockSize));
      buf = buf.subarray(blockSize);
    }
    carry = buf;
  }
  if (carry.length) yield Buffer.from(carry);
}

export const bytes = (s: string) => Buffer.from(s, 'utf8');

/** Hostile names (as bytes, relative to the tree root) used by the tests. */
export const HOSTILE = {
  space: bytes('with space.txt'),
  quotes: bytes(`quo"te's.txt`),
  dollar: bytes('$HOME and $(rm -rf).txt'),
  newline: bytes('new\nline.txt'),
  dash: bytes('-rf'),
  ff: Buffer.from([0x6e, 0x6f, 0x74, 0xff, 0x75, 0x74, 0x66, 0x38]), // "not\xffutf8"
  long: Buffer.from('L'.repeat(150)),
  longBinary: Buffer.concat([Buffer.from('B'.repeat(120)), Buffer.from([0xfe, 0xfd]), Buffer.from('.bin')]),
  utf8: bytes('café-日本.txt'),
  backslashTab: bytes('back\\slash\tand tab'),
  glob: bytes('star*?[x]{a,b}~'),
};

function pathOf(root: string, rel: Buffer): Buffer {
  return Buffer.concat([Buffer.from(root + '/'), rel]);
}

/** Builds the sample tree: nested dirs, an empty dir, a symlink, an empty file, a 3 MiB file, hostile names. */
export async function makeSampleTree(root: string): Promise<void> {
  await mkdir(join(root, 'sub/deeper/deepest'), { recursive: true });
  await mkdir(join(root, 'empty-dir'));
  await writeFile(join(root, 'sub/file.txt'), 'hello\n');
  await writeFile(join(root, 'sub/deeper/deepest/leaf.txt'), 'leaf\n'.repeat(1000));
  await writeFile(join(root, 'empty-file'), '');
  const big = Buffer.alloc(3 * 1024 * 1024);
  for (let i = 0; i < big.length; i += 4) big.writeUInt32LE((i * 2654435761) >>> 0, i);
  await writeFile(join(root, 'big.bin'), big);
  await symlink('sub/file.txt', join(root, 'link-to-file'));
  await symlink('does/not/exist', join(root, 'dangling-link'));
  for (const [k, name] of Object.entries(HOSTILE)) {
    await writeFile(pathOf(root, name), `content of ${k}\n`);
  }
  // a hostile directory name with a file inside
  const hd = Buffer.concat([bytes('dir with $ and '), Buffer.from([0xff])]);
  await mkdir(pathOf(root, hd));
  await writeFile(pathOf(root, Buffer.concat([hd, bytes('/inner -n.txt')])), 'inner\n');
  await writeFile(join(root, 'sub/exec.sh'), '#!/bin/sh\necho hi\n', { mode: 0o750 });
  await utimes(join(root, 'sub/file.txt'), new Date('2001-02-03T04:05:06Z'), new Date('2001-02-03T04:05:06Z'));
}
