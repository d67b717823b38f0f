import { describe, expect, it } from 'vitest';
import { EndOfMediumError, NoTapeError, PositionError, TapeBusyError, TapeIOError, WriteProtectedError, isTapeError } from '../../src/lib/tape/drive.ts';
import { runDriveSelfTest } from '../../src/lib/tape/self-test.ts';
import { MtStatusParseError, mapDeviceError, parseMtStatus, type StDeviceIo } from '../../src/lib/tape/st-device.ts';
import { StTapeDrive } from '../../src/lib/tape/st-drive.ts';
import { FakeStDevice, errnoError } from './fake-st-device.ts';

const BS = 4096;

function setup(opts: { stBlockSize?: number } = {}) {
  const dev = new FakeStDevice('/dev/nst0');
  dev.stBlockSize = opts.stBlockSize ?? BS;
  const drive = new StTapeDrive('/dev/nst0', { blockSize: BS, io: dev });
  return { dev, drive };
}

async function collect(it: AsyncIterable<Buffer>): Promise<Buffer[]> {
  const out: Buffer[] = [];
  for await (const b of it) out.push(b);
  return out;
}

function pattern(n: number, seed = 1): Buffer {
  const b = Buffer.alloc(n);
  for (let i = 0; i < n; i++) b[i] = (i * 31 + seed) & 0xff;
  return b;
}

// ------------------------------------------------------------------------------------------
describe('parseMtStatus', () => {
  it('parses a loaded LTO drive at BOT', () => {
    const s = parseMtStatus(
      [
        'SCSI 2 tape drive:',
        'File number=0, block number=0, partition=0.',
        'Tape block size 262144 bytes. Density code 0x5a (LTO-6).',
        'Soft error count since last status=0',
        'General status bits on (41010000):',
        ' BOT ONLINE IM_REP_EN',
        '',
      ].join('\n'),
    );
    expect(s).toMatchObject({
      fileNumber: 0,
      blockNumber: 0,
      partition: 0,
      blockSize: 262144,
      densityCode: '0x5a',
      densityName: 'LTO-6',
      statusBits: 0x41010000,
      online: true,
      loaded: true,
      bot: true,
      eod: false,
      writeProtected: false,
      doorOpen: false,
    });
    expect(s.flags.sort()).toEqual(['BOT', 'IM_REP_EN', 'ONLINE']);
  });

  it('parses WR_PROT', () => {
    const s = parseMtStatus(
      'SCSI 2 tape drive:\nFile number=0, block number=0, partition=0.\nTape block size 0 bytes. Density code 0x25 (DDS-3).\nSoft error count since last status=0\nGeneral status bits on (45010000):\n  BOT WR_PROT ONLINE IM_REP_EN\n',
    );
    expect(s.writeProtected).toBe(true);
    expect(s.loaded).toBe(true);
    expect(s.blockSize).toBe(0);
  });

  it('parses EOD after `mt eod`: the file number is the next file to write', () => {
    const s = parseMtStatus(
      'SCSI 2 tape drive:\nFile number=3, block number=0, partition=0.\nTape block size 262144 bytes. Density code 0x5c (LTO-8).\nSoft error count since last status=0\nGeneral status bits on (9010000):\n EOD ONLINE IM_REP_EN\n',
    );
    expect(s).toMatchObject({ fileNumber: 3, blockNumber: 0, eod: true, bot: false, loaded: true });
  });

  it('parses EOF after crossing a filemark, and a position inside a file', () => {
    const s = parseMtStatus(
      'SCSI 2 tape drive:\nFile number=6, block number=0, partition=0.\nTape block size 0 bytes. Density code 0x1b (DLT 35GB).\nSoft error count since last status=0\nGeneral status bits on (85010000):\n EOF WR_PROT ONLINE IM_REP_EN\n',
    );
    expect(s).toMatchObject({ fileNumber: 6, eof: true, writeProtected: true, densityName: 'DLT 35GB' });
    const mid = parseMtStatus(
      'SCSI 2 tape drive:\nFile number=2, block number=17, partition=0.\nTape block size 262144 bytes. Density code 0x5a (LTO-6).\nSoft error count since last status=0\nGeneral status bits on (1010000):\n ONLINE IM_REP_EN\n',
    );
    expect(mid).toMatchObject({ fileNumber: 2, blockNumber: 17, bot: false, eod: false, loaded: true });
  });

  it('parses an empty drive (DR_OPEN, file -1), even when WR_PROT is shown', () => {
    const empty = parseMtStatus(
      'SCSI 2 tape drive:\nFile number=-1, block number=-1, partition=0.\nTape block size 0 bytes. Density code 0x0 (default).\nSoft error count since last status=0\nGeneral status bits on (50000):\n DR_OPEN IM_REP_EN\n',
    );
    expect(empty).toMatchObject({ fileNumber: null, blockNumber: null, loaded: false, doorOpen: true, online: false });
    const ejected = parseMtStatus(
      'SCSI 2 tape drive:\nFile number=-1, block number=-1, partition=0.\nTape block size 0 bytes. Density code 0x0 (default).\nSoft error count since last status=0\nGeneral status bits on (4050000):\n WR_PROT DR_OPEN IM_REP_EN\n',
    );
    expect(ejected).toMatchObject({ loaded: false, writeProtected: false, doorOpen: true });
    // no tape, drive not ready: only IM_REP_EN
    const notReady = parseMtStatus(
      'SCSI 2 tape drive:\nFile number=-1, block number=-1, partition=0.\nTape block size 0 bytes. Density code 0x0 (default).\nSoft error count since last status=0\nGeneral status bits on (10000):\n IM_REP_EN\n',
    );
    expect(notReady.loaded).toBe(false);
  });

  it('accepts the vendor-named header and the "file number = N" spelling, and derives flags from the hex', () => {
    const s = parseMtStatus(
      [
        'drive type = Generic SCSI-2 tape',
        'drive status = 1191182848',
        'sense key error = 0',
        'residue count = 0',
        'file number = 1',
        'block number = 0',
        'Tape block size 512 bytes. Density code 0x47 (unknown).',
        'Soft error count since last status=0',
        'General status bits on (81010000):',
        '',
      ].join('\n'),
    );
    expect(s).toMatchObject({ fileNumber: 1, blockNumber: 0, eof: true, online: true, loaded: true, blockSize: 512 });
    const stk = parseMtStatus(
      'STK 9840 tape drive:\nFile number=0, block number=0, partition=0\nTape block size 0 bytes. Density code 0x46 (LTO-4).\nSoft error count since last status=0\nGeneral status bits on (410b0000):\n BOT ONLINE IM_REP_EN\n',
    );
    expect(stk).toMatchObject({ fileNumber: 0, partition: 0, bot: true, loaded: true });
  });

  it('rejects output without position or status bits (e.g. GNU cpio mt)', () => {
    expect(() =>
      parseMtStatus('drive type = 114\ndrive status = 1627389952\nsense key error = 0\nresidue count = 0\nfile number = 0\nblock number = 0\n'),
    ).toThrow(MtStatusParseError);
    expect(() => parseMtStatus('')).toThrow(/mt-st/);
  });
});

// ------------------------------------------------------------------------------------------
describe('StTapeDrive operations', () => {
  it('append: eod, status, status, open O_WRONLY, one write(2) per block of exactly blockSize, close, status', async () => {
    const { dev, drive } = setup();
    // two files already on tape
    dev.files = [[pattern(BS)], [pattern(BS)]];
    expect(await drive.seekEndOfData()).toBe(2);
    const w = await drive.openWriter();
    expect(w.fileNumber).toBe(2);
    const data = pattern(BS * 2 + 100, 7);
    await w.write(data.subarray(0, 1000));
    await w.write(data.subarray(1000));
    expect(await w.close()).toEqual({ bytes: BS * 2 + 100, tapeBytes: BS * 3 });
    expect(dev.trace()).toEqual([
      'mt -f /dev/nst0 eod',
      'mt -f /dev/nst0 status',
      'mt -f /dev/nst0 status',
      'open /dev/nst0 O_WRONLY',
      `write ${BS}`,
      `write ${BS}`,
      `write ${BS}`,
      'close',
      'mt -f /dev/nst0 status',
    ]);
    const writes = dev.ops.filter((o) => o.op === 'write');
    expect(writes.every((o) => o.buf.length === BS)).toBe(true);
    // the last block is zero padded
    const last = (writes[2] as { buf: Buffer }).buf;
    expect(last.subarray(0, 100)).toEqual(data.subarray(BS * 2));
    expect(last.subarray(100).every((b) => b === 0)).toBe(true);
    expect(dev.files.length).toBe(3);
    expect(Buffer.concat(dev.files[2]!).subarray(0, data.length)).toEqual(data);
  });

  it('writes whole blocks straight from the caller buffer (no copy)', async () => {
    const { dev, drive } = setup();
    const w = await drive.openWriter();
    const chunk = pattern(BS * 3);
    await w.write(chunk);
    const writes = dev.ops.filter((o): o is Extract<typeof o, { op: 'write' }> => o.op === 'write');
    expect(writes).toHaveLength(3);
    for (const [i, o] of writes.entries()) {
      expect(o.buf.buffer).toBe(chunk.buffer);
      expect(o.buf.byteOffset).toBe(chunk.byteOffset + i * BS);
    }
    await w.close();
  });

  it('switches st to fixed-block mode with setblk when the drive reports another block size', async () => {
    const { dev, drive } = setup({ stBlockSize: 0 });
    const w = await drive.openWriter();
    await w.write(pattern(10));
    await w.close();
    expect(dev.trace()).toEqual([
      'mt -f /dev/nst0 status',
      `mt -f /dev/nst0 setblk ${BS}`,
      'open /dev/nst0 O_WRONLY',
      `write ${BS}`,
      'close',
      'mt -f /dev/nst0 status',
    ]);
    expect(dev.stBlockSize).toBe(BS);
  });

  it('an empty file gets its filemark from `mt weof 1` (st writes none when nothing was written)', async () => {
    const { dev, drive } = setup();
    const w = await drive.openWriter();
    expect(await w.close()).toEqual({ bytes: 0, tapeBytes: 0 });
    expect(dev.trace()).toEqual(['mt -f /dev/nst0 status', 'open /dev/nst0 O_WRONLY', 'close', 'mt -f /dev/nst0 weof 1', 'mt -f /dev/nst0 status']);
    expect(dev.files).toEqual([[]]);
  });

  it('read: status, open O_RDONLY, reads of blockSize until a 0-byte read (filemark), close', async () => {
    const { dev, drive } = setup();
    dev.files = [[pattern(BS, 1)], [pattern(BS, 2), pattern(BS, 3)], [pattern(BS, 4)]];
    await drive.seekFile(1);
    dev.clearOps();
    const blocks = await collect(drive.readFile());
    expect(blocks).toEqual([pattern(BS, 2), pattern(BS, 3)]);
    expect(dev.trace()).toEqual(['mt -f /dev/nst0 status', 'open /dev/nst0 O_RDONLY', `read ${BS}`, `read ${BS}`, `read ${BS}`, 'close']);
    expect((await drive.status()).fileNumber).toBe(2); // positioned at the next file
  });

  it('seekFile is `mt asf N`, rewind is `mt rewind`, status maps loaded/WR_PROT/file', async () => {
    const { dev, drive } = setup();
    dev.files = [[pattern(BS)], [pattern(BS)]];
    await drive.seekFile(1);
    await drive.rewind();
    expect(dev.trace()).toEqual(['mt -f /dev/nst0 asf 1', 'mt -f /dev/nst0 rewind']);
    expect(await drive.status()).toEqual({ loaded: true, writeProtected: false, fileNumber: 0, blockSize: BS });
    dev.loaded = false;
    expect(await drive.status()).toEqual({ loaded: false, writeProtected: false, fileNumber: null, blockSize: BS });
  });

  it('seekFile past end of data -> PositionError (mt asf fails with EIO)', async () => {
    const { dev, drive } = setup();
    dev.files = [[pattern(BS)]];
    await drive.seekFile(1); // = end of data, allowed
    await expect(drive.seekFile(3)).rejects.toBeInstanceOf(PositionError);
    await expect(drive.seekFile(-1)).rejects.toBeInstanceOf(PositionError);
  });

  it('reading at end of data -> PositionError, whether or not st already knows it is at EOD', async () => {
    const { dev, drive } = setup();
    dev.files = [[pattern(BS)]];
    await drive.seekEndOfData(); // EOD bit set
    await expect(collect(drive.readFile())).rejects.toBeInstanceOf(PositionError);
    await drive.seekFile(1); // at EOD but st does not know yet: the first read returns 0
    await expect(collect(drive.readFile())).rejects.toThrow(/end of data/);
  });

  it('an empty file reads as no blocks and moves to the next file', async () => {
    const { dev, drive } = setup();
    dev.files = [[], [pattern(BS)]];
    await drive.rewind();
    expect(await collect(drive.readFile())).toEqual([]);
    expect(await collect(drive.readFile())).toEqual([pattern(BS)]);
  });

  it('refuses to read or write inside a file or at an unknown position', async () => {
    const { dev, drive } = setup();
    dev.files = [[pattern(BS), pattern(BS)]];
    dev.pos = { file: 0, block: 1 };
    await expect(drive.openWriter()).rejects.toBeInstanceOf(PositionError);
    await expect(collect(drive.readFile())).rejects.toBeInstanceOf(PositionError);
    dev.pos = null;
    await expect(drive.openWriter()).rejects.toThrow(/unknown/);
  });

  it('at EOD the block number is not required to be 0 (st may report -1 after eod)', async () => {
    const { dev, drive } = setup();
    dev.files = [[pattern(BS)]];
    dev.mtOverride = (args) =>
      args[2] === 'status'
        ? {
            code: 0,
            stderr: '',
            stdout:
              'SCSI 2 tape drive:\nFile number=1, block number=-1, partition=0.\nTape block size 4096 bytes. Density code 0x5c (LTO-8).\nSoft error count since last status=0\nGeneral status bits on (9010000):\n EOD ONLINE IM_REP_EN\n',
          }
        : undefined;
    await drive.seekEndOfData();
    const w = await drive.openWriter();
    expect(w.fileNumber).toBe(1);
    await w.abort();
  });

  it('abort closes the fd (st writes a filemark) and goes back to the start of the file', async () => {
    const { dev, drive } = setup();
    dev.files = [[pattern(BS)]];
    await drive.seekEndOfData();
    const w = await drive.openWriter();
    await w.write(pattern(BS * 2));
    dev.clearOps();
    await w.abort();
    expect(dev.trace()).toEqual(['close', 'mt -f /dev/nst0 asf 1']);
    expect((await drive.status()).fileNumber).toBe(1);
    // the next write replaces the aborted file
    const w2 = await drive.openWriter();
    await w2.write(pattern(10));
    await w2.close();
    expect(dev.files.length).toBe(2);
  });

  it('one operation at a time: TapeBusyError while a writer is open', async () => {
    const { drive } = setup();
    const w = await drive.openWriter();
    await expect(drive.rewind()).rejects.toBeInstanceOf(TapeBusyError);
    await expect(drive.openWriter()).rejects.toBeInstanceOf(TapeBusyError);
    await w.close();
    await drive.rewind();
  });

  it('runs the whole self-test through the st seam', async () => {
    const { drive } = setup({ stBlockSize: 0 });
    const lines: string[] = [];
    const report = await runDriveSelfTest(drive, { files: 4, bytesPerFile: BS * 5 + 123, chunkSize: 3000, log: (l) => lines.push(l) });
    expect(report.checks.filter((c) => !c.passed)).toEqual([]);
    expect(report.passed).toBe(true);
    expect(lines.at(-1)).toMatch(/^PASSED/);
  });
});

// ------------------------------------------------------------------------------------------
describe('StTapeDrive error mapping', () => {
  it('no tape (DR_OPEN in status) -> NoTapeError before touching the device', async () => {
    const { dev, drive } = setup();
    dev.loaded = false;
    await expect(drive.openWriter()).rejects.toBeInstanceOf(NoTapeError);
    await expect(collect(drive.readFile())).rejects.toBeInstanceOf(NoTapeError);
    expect(dev.ops.some((o) => o.op === 'open')).toBe(false);
    // mt commands that need a tape: "No medium found"
    await expect(drive.rewind()).rejects.toBeInstanceOf(NoTapeError);
    await expect(drive.seekEndOfData()).rejects.toBeInstanceOf(NoTapeError);
    await expect(drive.seekFile(0)).rejects.toBeInstanceOf(NoTapeError);
  });

  it('WR_PROT in status -> WriteProtectedError without opening for write', async () => {
    const { dev, drive } = setup();
    dev.writeProtected = true;
    const err = await drive.openWriter().catch((e) => e);
    expect(err).toBeInstanceOf(WriteProtectedError);
    expect(err.code).toBe('TAPE_WRITE_PROTECTED');
    expect(dev.ops.some((o) => o.op === 'open')).toBe(false);
  });

  it('EROFS / EACCES on open for write -> WriteProtectedError; ENOMEDIUM -> NoTapeError; EBUSY -> TapeBusyError', async () => {
    for (const [errno, cls] of [
      ['EROFS', WriteProtectedError],
      ['EACCES', WriteProtectedError],
      ['ENOMEDIUM', NoTapeError],
      ['EBUSY', TapeBusyError],
      ['EIO', TapeIOError],
    ] as const) {
      const { dev, drive } = setup();
      dev.inject('open', { errno });
      const err = await drive.openWriter().catch((e) => e);
      expect(err, errno).toBeInstanceOf(cls);
      expect(err.context.errno).toBe(errno);
      await drive.rewind(); // not left busy
    }
  });

  it('ENOSPC on write -> EndOfMediumError; the writer is failed until aborted', async () => {
    const { dev, drive } = setup();
    const w = await drive.openWriter();
    dev.inject('write', { errno: 'ENOSPC', skip: 2 });
    const err = await w.write(pattern(BS * 4)).catch((e) => e);
    expect(err).toBeInstanceOf(EndOfMediumError);
    expect(err.code).toBe('TAPE_END_OF_MEDIUM');
    expect(err.context.fileNumber).toBe(0);
    await expect(w.write(pattern(10))).rejects.toBe(err);
    await expect(w.close()).rejects.toBe(err);
    await w.abort();
    expect(dev.trace().slice(-2)).toEqual(['close', 'mt -f /dev/nst0 asf 0']);
  });

  it('a short write (early warning) -> EndOfMediumError', async () => {
    const { dev, drive } = setup();
    const w = await drive.openWriter();
    dev.inject('write', { returns: 512 });
    await expect(w.write(pattern(BS))).rejects.toBeInstanceOf(EndOfMediumError);
    await w.abort();
  });

  it('EIO on write -> TapeIOError with the file number; EIO on close (filemark) -> TapeIOError', async () => {
    const { dev, drive } = setup();
    dev.files = [[pattern(BS)]];
    await drive.seekEndOfData();
    const w = await drive.openWriter();
    dev.inject('write', { errno: 'EIO' });
    const err = await w.write(pattern(BS)).catch((e) => e);
    expect(err).toBeInstanceOf(TapeIOError);
    expect(err.fileNumber).toBe(1);
    await w.abort();

    const w2 = await drive.openWriter();
    await w2.write(pattern(BS));
    dev.inject('close', { errno: 'EIO' });
    await expect(w2.close()).rejects.toBeInstanceOf(TapeIOError);
    await w2.abort();
  });

  it('EIO on read -> TapeIOError with the file number; ENOMEM (block larger than buffer) -> TapeIOError', async () => {
    const { dev, drive } = setup();
    dev.files = [[pattern(BS), pattern(BS)], [pattern(BS)]];
    await drive.rewind();
    dev.inject('read', { errno: 'EIO', skip: 1 });
    const got: Buffer[] = [];
    const err = await (async () => {
      for await (const b of drive.readFile()) got.push(b);
    })().catch((e) => e);
    expect(got).toHaveLength(1);
    expect(err).toBeInstanceOf(TapeIOError);
    expect(err.fileNumber).toBe(0);

    const big = setup();
    big.dev.files = [[pattern(BS * 2)]];
    await big.drive.rewind();
    await expect(collect(big.drive.readFile())).rejects.toThrow(/larger block size/);
  });

  it('the filemark must be confirmed by status after close', async () => {
    const { dev, drive } = setup();
    const w = await drive.openWriter();
    await w.write(pattern(BS));
    let calls = 0;
    dev.mtOverride = (args) => {
      if (args[2] !== 'status' || ++calls < 1) return undefined;
      return {
        code: 0,
        stderr: '',
        stdout:
          'SCSI 2 tape drive:\nFile number=0, block number=1, partition=0.\nTape block size 4096 bytes. Density code 0x5c (LTO-8).\nSoft error count since last status=0\nGeneral status bits on (1010000):\n ONLINE IM_REP_EN\n',
      };
    };
    await expect(w.close()).rejects.toThrow(/filemark is not confirmed/);
  });

  it('mt not installed -> TapeIOError that says to install mt-st; unrecognised status -> TapeIOError', async () => {
    const io: StDeviceIo = {
      run: async () => {
        throw errnoError('ENOENT');
      },
      open: async () => 3,
      read: async () => 0,
      write: async (_fd, b) => b.length,
      close: async () => undefined,
    };
    const drive = new StTapeDrive('/dev/nst0', { io, blockSize: BS });
    await expect(drive.status()).rejects.toThrow(/install mt-st/);
    const weird = new StTapeDrive('/dev/nst0', { io: { ...io, run: async () => ({ stdout: 'hello', stderr: '', code: 0 }) }, blockSize: BS });
    const err = await weird.status().catch((e) => e);
    expect(err).toBeInstanceOf(TapeIOError);
  });

  it('mapDeviceError maps errnos', () => {
    const m = (errno: string, op: Parameters<typeof mapDeviceError>[2]) => mapDeviceError(errnoError(errno), '/dev/nst0', op);
    expect(m('ENOSPC', 'write')).toBeInstanceOf(EndOfMediumError);
    expect(m('EIO', 'read')).toBeInstanceOf(TapeIOError);
    expect(m('EROFS', 'open-write')).toBeInstanceOf(WriteProtectedError);
    expect(m('EACCES', 'open-write')).toBeInstanceOf(WriteProtectedError);
    expect(m('EACCES', 'open-read')).toBeInstanceOf(TapeIOError);
    expect(m('ENOMEDIUM', 'open-read')).toBeInstanceOf(NoTapeError);
    expect(m('EBUSY', 'open-read')).toBeInstanceOf(TapeBusyError);
    expect(m('ENOENT', 'open-read').message).toMatch(/not available/);
    for (const e of [m('ENOSPC', 'write'), m('EIO', 'read')]) {
      expect(isTapeError(e)).toBe(true);
      expect(e.message).toMatch(/\/dev\/nst0/);
    }
  });
});
