import { describe, expect, it } from 'vitest';
import { BlockSizeError, DEFAULT_MAX_BLOCK_BYTES, PositionError, TapeIOError } from '../../src/lib/tape/drive.ts';
import { StTapeDrive } from '../../src/lib/tape/st-drive.ts';
import { FakeStDevice } from './fake-st-device.ts';

// Variable-block reads on the st driver (tapetown tapes), through the fake st device.

const BS = 4096;
const DEV = '/dev/nst0';

function setup(opts: { stBlockSize?: number; setBlockSize?: boolean } = {}) {
  const dev = new FakeStDevice(DEV);
  dev.stBlockSize = opts.stBlockSize ?? BS;
  const drive = new StTapeDrive(DEV, { blockSize: BS, io: dev, ...(opts.setBlockSize !== undefined ? { setBlockSize: opts.setBlockSize } : {}) });
  return { dev, drive };
}

function pattern(n: number, seed = 1): Buffer {
  const b = Buffer.alloc(n);
  for (let i = 0; i < n; i++) b[i] = (i * 31 + seed) & 0xff;
  return b;
}

async function collect(it: AsyncIterable<Buffer>): Promise<Buffer[]> {
  const out: Buffer[] = [];
  for await (const b of it) out.push(b);
  return out;
}

/** Blocks yielded before the read failed, and the error. */
async function readUntilError(it: AsyncIterable<Buffer>): Promise<{ got: Buffer[]; err: any }> {
  const got: Buffer[] = [];
  try {
    for await (const b of it) got.push(b);
  } catch (err) {
    return { got, err };
  }
  throw new Error('expected the read to fail');
}

const TAPETOWN_FILE = [pattern(10240, 1), pattern(10240, 2), pattern(777, 3), pattern(1, 4)];

describe('st drive: variable-block reads', () => {
  it('setblk 0 before open, one maxBlockBytes read(2) per block, blocks at their own sizes, setblk <blockSize> after close', async () => {
    const { dev, drive } = setup();
    dev.files = [TAPETOWN_FILE, [pattern(512, 9)]];
    await drive.rewind();
    dev.clearOps();
    const blocks = await collect(drive.readFile({ variable: {} }));
    expect(blocks.map((b) => b.length)).toEqual([10240, 10240, 777, 1]);
    expect(blocks).toEqual(TAPETOWN_FILE);
    const read = `read ${DEFAULT_MAX_BLOCK_BYTES}`;
    expect(dev.trace()).toEqual([
      `mt -f ${DEV} status`,
      `mt -f ${DEV} setblk 0`,
      `open ${DEV} O_RDONLY`,
      read,
      read,
      read,
      read,
      read,
      'close',
      `mt -f ${DEV} setblk ${BS}`,
    ]);
    expect(dev.stBlockSize).toBe(BS);
    expect((await drive.status()).fileNumber).toBe(1);
    // each block is its own buffer, not a view of the 1 MiB read buffer
    expect(blocks.every((b) => b.buffer.byteLength < DEFAULT_MAX_BLOCK_BYTES)).toBe(true);

    // writing afterwards needs no mode change: st is back in fixed-block mode
    await drive.seekEndOfData();
    dev.clearOps();
    const w = await drive.openWriter();
    await w.write(pattern(100));
    await w.close();
    expect(dev.trace()).toEqual([`mt -f ${DEV} status`, `open ${DEV} O_WRONLY`, `write ${BS}`, 'close', `mt -f ${DEV} status`]);
  });

  it('reads with the buffer size asked for', async () => {
    const { dev, drive } = setup();
    dev.files = [[pattern(600), pattern(3)]];
    await drive.rewind();
    dev.clearOps();
    expect((await collect(drive.readFile({ variable: { maxBlockBytes: 600 } }))).map((b) => b.length)).toEqual([600, 3]);
    expect(dev.trace().filter((t) => t.startsWith('read'))).toEqual(['read 600', 'read 600', 'read 600']);
  });

  it('a block larger than the buffer (ENOMEM) -> BlockSizeError naming the buffer and the option; the fixed size is set again', async () => {
    const { dev, drive } = setup();
    dev.files = [[pattern(4096, 1), pattern(10240, 2), pattern(100, 3)]];
    await drive.rewind();
    dev.clearOps();
    const { got, err } = await readUntilError(drive.readFile({ variable: { maxBlockBytes: 8192 } }));
    expect(got.map((b) => b.length)).toEqual([4096]);
    expect(err).toBeInstanceOf(BlockSizeError);
    expect(err.code).toBe('TAPE_BLOCK_SIZE');
    expect(err.message).toContain('larger than the read buffer of 8192 bytes');
    expect(err.message).toContain('ENOMEM');
    expect(err.message).toContain('readFile({ variable: { maxBlockBytes: 16384 } })');
    expect(err.context).toMatchObject({ drive: DEV, fileNumber: 0, maxBlockBytes: 8192 });
    expect(dev.trace().slice(-2)).toEqual(['close', `mt -f ${DEV} setblk ${BS}`]);
    expect(dev.stBlockSize).toBe(BS);
    // st skipped the block it could not return: the drive is inside the file, a seek is needed
    expect(dev.pos).toEqual({ file: 0, block: 2 });
    await expect(collect(drive.readFile({ variable: {} }))).rejects.toBeInstanceOf(PositionError);
    await drive.seekFile(0);
    expect((await collect(drive.readFile({ variable: { maxBlockBytes: 16384 } }))).map((b) => b.length)).toEqual([4096, 10240, 100]);
  });

  it('a buffer st cannot take (EOVERFLOW) -> BlockSizeError that says to use a smaller one', async () => {
    const { dev, drive } = setup();
    dev.files = [TAPETOWN_FILE];
    await drive.rewind();
    dev.inject('read', { errno: 'EOVERFLOW' });
    const { err } = await readUntilError(drive.readFile({ variable: { maxBlockBytes: 4 * 1024 * 1024 } }));
    expect(err).toBeInstanceOf(BlockSizeError);
    expect(err.message).toContain('cannot take a read buffer of 4194304 bytes');
    expect(err.message).toContain('maxBlockBytes: 524288');
    expect(dev.stBlockSize).toBe(BS);
  });

  it('the fixed size is set again after an abort and after the consumer stops early', async () => {
    const { dev, drive } = setup();
    dev.files = [TAPETOWN_FILE];
    await drive.rewind();
    const ac = new AbortController();
    dev.clearOps();
    const { got, err } = await readUntilError(
      (async function* () {
        for await (const b of drive.readFile({ signal: ac.signal, variable: {} })) {
          ac.abort();
          yield b;
        }
      })(),
    );
    expect(got).toHaveLength(1);
    expect(err.name).toBe('AbortError');
    expect(dev.trace().slice(-2)).toEqual(['close', `mt -f ${DEV} setblk ${BS}`]);
    expect(dev.stBlockSize).toBe(BS);

    await drive.rewind();
    dev.clearOps();
    for await (const _ of drive.readFile({ variable: {} })) break;
    expect(dev.trace().slice(-2)).toEqual(['close', `mt -f ${DEV} setblk ${BS}`]);
    expect(dev.stBlockSize).toBe(BS);
  });

  it('at end of data: PositionError, st is asked only once the device is closed, and the fixed size is set again', async () => {
    const { dev, drive } = setup();
    dev.files = [TAPETOWN_FILE];
    await drive.seekFile(1); // end of data, st does not know yet
    dev.clearOps();
    await expect(collect(drive.readFile({ variable: {} }))).rejects.toThrow(/end of data/);
    expect(dev.trace()).toEqual([
      `mt -f ${DEV} status`,
      `mt -f ${DEV} setblk 0`,
      `open ${DEV} O_RDONLY`,
      `read ${DEFAULT_MAX_BLOCK_BYTES}`,
      'close',
      `mt -f ${DEV} status`,
      `mt -f ${DEV} setblk ${BS}`,
    ]);
    expect(dev.stBlockSize).toBe(BS);
  });

  it('st already in variable-block mode: no setblk; a later write sets the fixed size', async () => {
    const { dev, drive } = setup({ stBlockSize: 0 });
    dev.files = [TAPETOWN_FILE];
    await drive.rewind();
    dev.clearOps();
    expect(await collect(drive.readFile({ variable: {} }))).toEqual(TAPETOWN_FILE);
    expect(dev.trace().filter((t) => t.includes('setblk'))).toEqual([]);
    const w = await drive.openWriter();
    await w.write(pattern(10));
    await w.close();
    expect(dev.trace()).toContain(`mt -f ${DEV} setblk ${BS}`);
  });

  it('setBlockSize: false with st in fixed-block mode -> BlockSizeError that says to run setblk 0; nothing opened', async () => {
    const { dev, drive } = setup({ setBlockSize: false });
    dev.files = [TAPETOWN_FILE];
    await drive.rewind();
    dev.clearOps();
    const err = await collect(drive.readFile({ variable: {} })).catch((e) => e);
    expect(err).toBeInstanceOf(BlockSizeError);
    expect(err.message).toContain(`mt -f ${DEV} setblk 0`);
    expect(dev.trace()).toEqual([`mt -f ${DEV} status`]);
    dev.stBlockSize = 0; // the operator did it
    expect(await collect(drive.readFile({ variable: {} }))).toEqual(TAPETOWN_FILE);
    expect(dev.stBlockSize).toBe(0);
  });

  it('a fixed-block read of a variable-block tape fails (EIO, "Incorrect block size") with the hint to read variable blocks', async () => {
    const { dev, drive } = setup();
    dev.files = [TAPETOWN_FILE];
    await drive.rewind();
    const err = await collect(drive.readFile()).catch((e) => e);
    expect(err).toBeInstanceOf(TapeIOError);
    expect(err.message).toContain('written in variable-block mode');
    expect(err.message).toContain('readFile({ variable: {} })');
  });

  it('an invalid maxBlockBytes -> RangeError before the drive is touched', async () => {
    const { dev, drive } = setup();
    dev.clearOps();
    for (const maxBlockBytes of [0, 1.5, 64 * 1024 * 1024]) {
      await expect(collect(drive.readFile({ variable: { maxBlockBytes } }))).rejects.toThrow(/invalid maxBlockBytes/);
    }
    expect(dev.ops).toEqual([]);
  });
});
