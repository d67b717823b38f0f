/**
 * Drive self-test in the spirit of Bareos' `btape test`: write several files of random data,
 * check end of data, read every file back (SHA-256 and size), check that writing at file 1
 * cuts off the later files, and report throughput.
 *
 * IT ERASES THE TAPE (file 0, the label, included). The caller must have the operator's
 * confirmation (`tape-agent selftest --yes-erase`); this function does not prompt.
 */
import { createHash, randomFillSync } from 'node:crypto';
import { formatBytes } from '../domain/units.ts';
import { PositionError, isTapeError, type TapeDrive } from './drive.ts';

export interface SelfTestOptions {
  /** Files to write (>= 3 so the truncation check has files to lose; default 4). */
  files?: number;
  /** Bytes per file (default 64 MiB). Later files are a little shorter, so padding is exercised. */
  bytesPerFile?: number;
  /** Size of each write() call (default 1 MiB). */
  chunkSize?: number;
  log?: (line: string) => void;
  signal?: AbortSignal;
}

export interface SelfTestCheck {
  name: string;
  passed: boolean;
  detail: string;
}

export interface SelfTestReport {
  drive: string;
  passed: boolean;
  checks: SelfTestCheck[];
  bytesWritten: number;
  bytesRead: number;
  /** MB/s (10^6 bytes per second) over the time spent in write()/close() and in reads. */
  writeMBps: number;
  readMBps: number;
  /** The first error that stopped the test, if any. */
  error?: { name: string; code?: string; message: string };
}

interface WrittenFile {
  fileNumber: number;
  bytes: number;
  sha256: string;
}

class CheckFailed extends Error {}

const MB = 1_000_000;

export async function runDriveSelfTest(drive: TapeDrive, opts: SelfTestOptions = {}): Promise<SelfTestReport> {
  const files = opts.files ?? 4;
  const bytesPerFile = opts.bytesPerFile ?? 64 * 1024 * 1024;
  const chunkSize = opts.chunkSize ?? 1024 * 1024;
  const log = opts.log ?? (() => undefined);
  if (!Number.isInteger(files) || files < 3) throw new RangeError(`self-test needs files >= 3 (got ${files})`);
  if (!Number.isInteger(bytesPerFile) || bytesPerFile < 1) throw new RangeError(`self-test needs bytesPerFile >= 1 (got ${bytesPerFile})`);
  if (!Number.isInteger(chunkSize) || chunkSize < 1) throw new RangeError(`self-test needs chunkSize >= 1 (got ${chunkSize})`);

  const report: SelfTestReport = {
    drive: drive.id,
    passed: false,
    checks: [],
    bytesWritten: 0,
    bytesRead: 0,
    writeMBps: 0,
    readMBps: 0,
  };
  let bs = 0; // the drive's block size, from the first status
  let writeNs = 0n;
  let readNs = 0n;
  const pass = (name: string, detail: string) => {
    report.checks.push({ name, passed: true, detail });
    log(`ok   ${name}: ${detail}`);
  };
  const fail = (name: string, detail: string): never => {
    report.checks.push({ name, passed: false, detail });
    log(`FAIL ${name}: ${detail}`);
    throw new CheckFailed(detail);
  };

  /** Write one file of pseudo-random data at the current position. */
  const writeRandomFile = async (fileNumber: number, bytes: number): Promise<WrittenFile> => {
    const writer = await drive.openWriter();
    if (writer.fileNumber !== fileNumber) fail(`write file ${fileNumber}`, `writer opened at file ${writer.fileNumber}, expected ${fileNumber}`);
    const hash = createHash('sha256');
    const chunk = Buffer.allocUnsafe(Math.min(chunkSize, bytes));
    let left = bytes;
    try {
      while (left > 0) {
        opts.signal?.throwIfAborted();
        const piece = left >= chunk.length ? chunk : chunk.subarray(0, left);
        randomFillSync(piece);
        hash.update(piece);
        const t0 = process.hrtime.bigint();
        await writer.write(piece);
        writeNs += process.hrtime.bigint() - t0;
        left -= piece.length;
      }
      const t0 = process.hrtime.bigint();
      const res = await writer.close();
      writeNs += process.hrtime.bigint() - t0;
      if (res.bytes !== bytes) fail(`write file ${fileNumber}`, `close() reported ${res.bytes} bytes, wrote ${bytes}`);
      report.bytesWritten += res.tapeBytes;
    } catch (e) {
      await writer.abort().catch(() => undefined);
      throw e;
    }
    return { fileNumber, bytes, sha256: hash.digest('hex') };
  };

  /** Read the file at the current position and compare it with what was written. */
  const verifyFile = async (f: WrittenFile, name: string): Promise<void> => {
    const hash = createHash('sha256');
    let total = 0;
    let paddingOk = true;
    let blocks = 0;
    let shortBlock = false;
    const it = drive.readFile(opts.signal ? { signal: opts.signal } : {})[Symbol.asyncIterator]();
    for (;;) {
      const t0 = process.hrtime.bigint();
      const r = await it.next();
      readNs += process.hrtime.bigint() - t0;
      if (r.done) break;
      const block = r.value;
      blocks++;
      if (block.length !== bs) shortBlock = true;
      const payloadLeft = Math.max(0, f.bytes - total);
      if (payloadLeft >= block.length) hash.update(block);
      else {
        hash.update(block.subarray(0, payloadLeft));
        if (!isZero(block.subarray(payloadLeft))) paddingOk = false;
      }
      total += block.length;
    }
    report.bytesRead += total;
    const expectedTape = Math.ceil(f.bytes / bs) * bs;
    if (shortBlock) fail(name, `file ${f.fileNumber}: read a block that is not ${bs} bytes (${blocks} blocks)`);
    if (total !== expectedTape) fail(name, `file ${f.fileNumber}: read ${total} bytes, expected ${expectedTape} (${f.bytes} + padding to ${bs}-byte blocks)`);
    if (!paddingOk) fail(name, `file ${f.fileNumber}: padding after the data is not zeros`);
    const sha = hash.digest('hex');
    if (sha !== f.sha256) fail(name, `file ${f.fileNumber}: SHA-256 ${sha} differs from the written ${f.sha256}`);
    const st = await drive.status();
    if (st.fileNumber !== f.fileNumber + 1)
      fail(name, `after reading file ${f.fileNumber} the drive is at file ${st.fileNumber}, expected ${f.fileNumber + 1}`);
    pass(name, `file ${f.fileNumber}: ${formatBytes(f.bytes)} in ${blocks} blocks, SHA-256 ok`);
  };

  try {
    log(`self-test of ${drive.id}: ${files} files of ~${formatBytes(bytesPerFile)}; this ERASES the tape`);

    const st0 = await drive.status();
    if (!st0.loaded) fail('status', 'no tape loaded');
    if (st0.writeProtected) fail('status', 'the tape is write protected');
    bs = st0.blockSize;
    pass('status', `tape loaded, writable, block size ${formatBytes(st0.blockSize)}`);

    await drive.rewind();
    const st1 = await drive.status();
    if (st1.fileNumber !== 0) fail('rewind', `drive reports file ${st1.fileNumber} after rewind, expected 0`);
    pass('rewind', 'at file 0');

    // Sizes: the first file is exactly bytesPerFile, later ones a little shorter and not
    // block aligned, so zero padding of the last block is checked too.
    const sizes = Array.from({ length: files }, (_, i) => Math.max(1, bytesPerFile - i * 1000 - (i > 0 ? 1 : 0)));
    const written: WrittenFile[] = [];
    for (let i = 0; i < files; i++) {
      const f = await writeRandomFile(i, sizes[i]!);
      written.push(f);
      const st = await drive.status();
      if (st.fileNumber !== i + 1) fail(`write file ${i}`, `after close the drive is at file ${st.fileNumber}, expected ${i + 1}`);
      pass(`write file ${i}`, `${formatBytes(f.bytes)}, sha256 ${f.sha256.slice(0, 16)}…`);
    }

    await drive.rewind();
    const eod = await drive.seekEndOfData();
    if (eod !== files) fail('end of data', `seekEndOfData() returned ${eod}, expected ${files}`);
    pass('end of data', `${eod} files`);

    // Read back in a scrambled order so every read needs a real seek.
    const order = [...written.keys()].reverse();
    if (order.length > 2) [order[0], order[1]] = [order[1]!, order[0]!];
    for (const i of order) {
      await drive.seekFile(i);
      await verifyFile(written[i]!, `seek+read file ${i}`);
    }

    // Sequential: after a read the drive is at the next file without a seek.
    await drive.rewind();
    await verifyFile(written[0]!, 'sequential read file 0');
    await verifyFile(written[1]!, 'sequential read file 1');

    // Seeking past end of data must be refused.
    try {
      await drive.seekFile(files + 1);
      fail('seek past end of data', `seekFile(${files + 1}) succeeded on a tape with ${files} files`);
    } catch (e) {
      if (e instanceof CheckFailed) throw e;
      if (!(e instanceof PositionError)) throw e;
      pass('seek past end of data', `seekFile(${files + 1}) refused: PositionError`);
    }

    // Overwrite at file 1: files 2.. are lost, file 0 stays.
    await drive.seekFile(1);
    const replacement = await writeRandomFile(1, Math.max(1, Math.min(bytesPerFile, 1024 * 1024) - 7));
    const eod2 = await drive.seekEndOfData();
    if (eod2 !== 2) fail('truncate on overwrite', `after writing at file 1, seekEndOfData() returned ${eod2}, expected 2`);
    await drive.seekFile(0);
    await verifyFile(written[0]!, 'file 0 intact after overwrite');
    await verifyFile(replacement, 'replacement file 1');
    pass('truncate on overwrite', 'writing at file 1 removed files 2.. and kept file 0');

    await drive.rewind();
    report.passed = true;
  } catch (e) {
    if (!(e instanceof CheckFailed)) {
      const err = e as Error & { code?: string };
      report.error = { name: err.name, message: err.message, ...(isTapeError(e) ? { code: e.code } : {}) };
      report.checks.push({ name: 'error', passed: false, detail: `${err.name}: ${err.message}` });
      log(`FAIL ${err.name}: ${err.message}`);
    }
    report.passed = false;
  }
  report.writeMBps = rate(report.bytesWritten, writeNs);
  report.readMBps = rate(report.bytesRead, readNs);
  log(
    `${report.passed ? 'PASSED' : 'FAILED'}: wrote ${formatBytes(report.bytesWritten)} at ${report.writeMBps.toFixed(1)} MB/s, read ${formatBytes(report.bytesRead)} at ${report.readMBps.toFixed(1)} MB/s`,
  );
  return report;
}

function rate(bytes: number, ns: bigint): number {
  if (ns <= 0n) return 0;
  return bytes / MB / (Number(ns) / 1e9);
}

function isZero(buf: Buffer): boolean {
  for (let i = 0; i < buf.length; i++) if (buf[i] !== 0) return false;
  return true;
}
