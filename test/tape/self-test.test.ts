import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { runDriveSelfTest } from '../../src/lib/tape/self-test.ts';
import { VirtualTapeLibrary, type VirtualTapeDrive } from '../../src/lib/tape/virtual-library.ts';

const BS = 64 * 1024;

let root: string;
let lib: VirtualTapeLibrary;
let drive: VirtualTapeDrive;

beforeEach(async () => {
  root = await mkdtemp(join(tmpdir(), 'selftest-'));
  lib = new VirtualTapeLibrary(root, { blockSize: BS });
  drive = lib.drive('vtl0');
  await lib.createTape('ST0001', { capacityBytes: 64 * 1024 * 1024 });
  await drive.load('ST0001');
});

afterEach(async () => {
  await rm(root, { recursive: true, force: true });
});

describe('runDriveSelfTest on the virtual library', () => {
  it('passes, reports throughput, and leaves a 2-file tape rewound (it erases the tape)', async () => {
    // something that the self-test must overwrite
    const w = await drive.openWriter();
    await w.write(Buffer.from('old label'));
    await w.close();

    const lines: string[] = [];
    const report = await runDriveSelfTest(drive, { files: 4, bytesPerFile: 3 * BS + 5000, chunkSize: 50_000, log: (l) => lines.push(l) });
    expect(report.checks.filter((c) => !c.passed)).toEqual([]);
    expect(report.passed).toBe(true);
    expect(report.error).toBeUndefined();
    const names = report.checks.map((c) => c.name);
    for (const n of [
      'status',
      'rewind',
      'write file 0',
      'write file 3',
      'end of data',
      'seek+read file 2',
      'sequential read file 1',
      'seek past end of data',
      'truncate on overwrite',
    ]) {
      expect(names).toContain(n);
    }
    expect(report.bytesWritten).toBeGreaterThan(4 * 3 * BS);
    expect(report.writeMBps).toBeGreaterThan(0);
    expect(report.readMBps).toBeGreaterThan(0);
    expect(lines.at(-1)).toMatch(/^PASSED: wrote .* MB\/s, read .* MB\/s/);
    expect(await drive.status()).toMatchObject({ fileNumber: 0 });
    expect(await drive.seekEndOfData()).toBe(2);
  });

  it('detects corrupted data (flip-byte fault) as a failed SHA-256 check', async () => {
    await lib.injectFault('ST0001', { kind: 'flip-byte', fileNumber: 2, offset: 100 });
    const report = await runDriveSelfTest(drive, { files: 3, bytesPerFile: BS + 10 });
    expect(report.passed).toBe(false);
    const failed = report.checks.filter((c) => !c.passed);
    expect(failed).toHaveLength(1);
    expect(failed[0]!.detail).toMatch(/file 2: SHA-256/);
  });

  it('reports a drive error (read-error fault) with its code', async () => {
    await lib.injectFault('ST0001', { kind: 'read-error', fileNumber: 1, afterBytes: 0 });
    const report = await runDriveSelfTest(drive, { files: 3, bytesPerFile: BS });
    expect(report.passed).toBe(false);
    expect(report.error).toMatchObject({ name: 'TapeIOError', code: 'TAPE_IO' });
  });

  it('reports end of medium when the tape is too small', async () => {
    await lib.injectFault('ST0001', { kind: 'end-of-medium', afterBytes: 4 * BS });
    const report = await runDriveSelfTest(drive, { files: 3, bytesPerFile: 2 * BS });
    expect(report.passed).toBe(false);
    expect(report.error?.code).toBe('TAPE_END_OF_MEDIUM');
  });

  it('fails early without a tape or with a write-protected tape', async () => {
    await lib.setWriteProtected('ST0001', true);
    const wp = await runDriveSelfTest(drive, { files: 3, bytesPerFile: 10 });
    expect(wp.passed).toBe(false);
    expect(wp.checks).toEqual([{ name: 'status', passed: false, detail: 'the tape is write protected' }]);
    await drive.unload();
    const none = await runDriveSelfTest(drive, { files: 3, bytesPerFile: 10 });
    expect(none.checks[0]).toMatchObject({ name: 'status', passed: false, detail: 'no tape loaded' });
  });

  it('rejects nonsense options', async () => {
    await expect(runDriveSelfTest(drive, { files: 2 })).rejects.toThrow(RangeError);
    await expect(runDriveSelfTest(drive, { bytesPerFile: 0 })).rejects.toThrow(RangeError);
  });
});
