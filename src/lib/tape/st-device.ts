/**
 * The Linux st driver below the drive: the I/O seam (`StDeviceIo`: open/read/write/close of
 * the device node and running `mt`, with a fake for tests), `mt status` parsing, and the
 * mapping of errno values and mt failures to tape errors.
 */
import { execFile } from 'node:child_process';
import { close as fsClose, constants as fsConstants, open as fsOpen, read as fsRead, write as fsWrite } from 'node:fs';
import { EndOfMediumError, NoTapeError, TapeBusyError, TapeError, TapeIOError, WriteProtectedError, type TapeErrorContext } from './drive.ts';
import { errorMessage } from '../errors.ts';
import { errnoCode } from '../errors.ts';

// ---------------------------------------------------------------------------------------------
// The seam

export interface StRunResult {
  stdout: string;
  stderr: string;
  /** Exit code (mt-st: 0 ok, 1 usage/open failure, 2 operation failed). */
  code: number;
}

/** Everything the st drive does to the system. Errors from open/read/write/close carry `code` (errno name). */
export interface StDeviceIo {
  run(cmd: string, args: string[]): Promise<StRunResult>;
  open(path: string, flags: number): Promise<number>;
  /** One read(2) into buf; resolves with the byte count (0 = filemark). */
  read(fd: number, buf: Buffer): Promise<number>;
  /** One write(2) of all of buf; resolves with the byte count the driver accepted. */
  write(fd: number, buf: Buffer): Promise<number>;
  close(fd: number): Promise<void>;
}

export const O_RDONLY = fsConstants.O_RDONLY;
export const O_WRONLY = fsConstants.O_WRONLY;

/** The real seam: child_process.execFile for mt, node:fs for the device file. */
export function createNodeStDeviceIo(): StDeviceIo {
  return {
    run(cmd, args) {
      return new Promise((resolve, reject) => {
        execFile(cmd, args, { encoding: 'utf8', maxBuffer: 1024 * 1024 }, (err, stdout, stderr) => {
          if (!err) return resolve({ stdout, stderr, code: 0 });
          const code = (err as NodeJS.ErrnoException & { code?: unknown }).code;
          if (typeof code === 'number') return resolve({ stdout, stderr, code });
          reject(err); // could not run at all (ENOENT: mt not installed)
        });
      });
    },
    open(path, flags) {
      return new Promise((resolve, reject) => fsOpen(path, flags, (err, fd) => (err ? reject(err) : resolve(fd))));
    },
    read(fd, buf) {
      return new Promise((resolve, reject) => fsRead(fd, buf, 0, buf.length, null, (err, n) => (err ? reject(err) : resolve(n))));
    },
    write(fd, buf) {
      return new Promise((resolve, reject) => fsWrite(fd, buf, 0, buf.length, null, (err, n) => (err ? reject(err) : resolve(n))));
    },
    close(fd) {
      return new Promise((resolve, reject) => fsClose(fd, (err) => (err ? reject(err) : resolve())));
    },
  };
}

// ---------------------------------------------------------------------------------------------
// mt status parsing

/** General status bits of the st driver (linux/mtio.h GMT_*), as mt-st prints them. */
export const GMT_BITS: Record<string, number> = {
  EOF: 0x80000000,
  BOT: 0x40000000,
  EOT: 0x20000000,
  SM: 0x10000000,
  EOD: 0x08000000,
  WR_PROT: 0x04000000,
  ONLINE: 0x01000000,
  D_6250: 0x00800000,
  D_1600: 0x00400000,
  D_800: 0x00200000,
  DR_OPEN: 0x00040000,
  IM_REP_EN: 0x00010000,
  CLN: 0x00008000,
};

export interface MtStatus {
  /** -1 in the output (unknown / no tape) becomes null. */
  fileNumber: number | null;
  blockNumber: number | null;
  partition: number | null;
  /** "Tape block size N bytes"; 0 = variable block mode. */
  blockSize: number | null;
  densityCode: string | null;
  densityName: string | null;
  /** Raw general status bits (hex in the output), when printed. */
  statusBits: number | null;
  /** Names of the general status bits that are on: "BOT", "ONLINE", "WR_PROT", "EOD", ... */
  flags: string[];
  online: boolean;
  bot: boolean;
  eod: boolean;
  eof: boolean;
  writeProtected: boolean;
  doorOpen: boolean;
  /** A tape is in the drive and ready: ONLINE and not DR_OPEN. */
  loaded: boolean;
}

export class MtStatusParseError extends Error {
  override readonly name = 'MtStatusParseError';
}

function intOrNull(s: string | undefined): number | null {
  if (s === undefined) return null;
  const n = Number(s);
  return Number.isInteger(n) && n >= 0 ? n : null;
}

/**
 * Parse the output of mt-st's `mt -f DEV status`, e.g.
 *
 *   SCSI 2 tape drive:
 *   File number=0, block number=0, partition=0.
 *   Tape block size 262144 bytes. Density code 0x5a (LTO-6).
 *   Soft error count since last status=0
 *   General status bits on (41010000):
 *    BOT ONLINE IM_REP_EN
 *
 * Throws MtStatusParseError when the position or the status bits are missing (GNU cpio's mt
 * prints neither status bits nor their names: install mt-st).
 */
export function parseMtStatus(text: string): MtStatus {
  const file = /file number\s*=\s*(-?\d+)/i.exec(text);
  const gen = /General status bits on\s*\(([0-9a-f]+)\)\s*:?[ \t]*\r?\n?([^\n]*)/i.exec(text);
  if (!file || !gen) {
    throw new MtStatusParseError(`unrecognised \`mt status\` output (need "File number=" and "General status bits on"; is mt-st installed?):\n${text.trim()}`);
  }
  const block = /block number\s*=\s*(-?\d+)/i.exec(text);
  const partition = /partition\s*=\s*(-?\d+)/i.exec(text);
  const bs = /Tape block size\s+(\d+)\s+bytes/i.exec(text);
  const density = /Density code\s+(0x[0-9a-f]+)(?:\s*\(([^)]*)\))?/i.exec(text);
  const statusBits = parseInt(gen[1]!, 16);
  const flags = new Set(
    (gen[2] ?? '')
      .trim()
      .split(/\s+/)
      .filter((w) => /^[A-Z][A-Z0-9_]*$/.test(w)),
  );
  // The hex value is authoritative; names are printed from it, but be lenient if they differ.
  for (const [name, bit] of Object.entries(GMT_BITS)) if ((statusBits & bit) >>> 0 === bit) flags.add(name);
  const has = (f: string) => flags.has(f);
  const online = has('ONLINE');
  const doorOpen = has('DR_OPEN');
  const loaded = online && !doorOpen;
  return {
    fileNumber: intOrNull(file[1]),
    blockNumber: intOrNull(block?.[1]),
    partition: intOrNull(partition?.[1]),
    blockSize: intOrNull(bs?.[1]),
    densityCode: density?.[1] ?? null,
    densityName: density?.[2] ?? null,
    statusBits,
    flags: [...flags],
    online,
    bot: has('BOT'),
    eod: has('EOD'),
    eof: has('EOF'),
    writeProtected: loaded && has('WR_PROT'),
    doorOpen,
    loaded,
  };
}

// ---------------------------------------------------------------------------------------------
// Error mapping

/** The errno code of a device call's error (errors.ts errnoCode). */
export const errnoOf = errnoCode;

/** Map an errno from the device file to a tape error. `op` says what was being done. */
export function mapDeviceError(e: unknown, dev: string, op: 'open-read' | 'open-write' | 'read' | 'write' | 'close', ctx: TapeErrorContext = {}): Error {
  if (e instanceof TapeError) return e;
  const errno = errnoOf(e);
  const context = { ...ctx, drive: dev, errno };
  const where = ctx.fileNumber !== undefined ? `, file ${ctx.fileNumber}` : '';
  const cause = { cause: e };
  switch (errno) {
    case 'ENOSPC':
      return new EndOfMediumError(
        `end of medium on ${dev}${where} (ENOSPC on ${op}): the tape is full; abort this file and continue on another tape.`,
        context,
        cause,
      );
    case 'ENOMEDIUM':
      return new NoTapeError(`no tape in ${dev} (ENOMEDIUM on ${op}); load a tape and retry.`, context, cause);
    case 'EROFS':
      return new WriteProtectedError(
        `the tape in ${dev} is write protected (EROFS on ${op}); slide the write-protect tab or use another tape.`,
        context,
        cause,
      );
    case 'EACCES':
      if (op === 'open-write' || op === 'write') {
        return new WriteProtectedError(
          `cannot write to ${dev} (EACCES on ${op}): the tape is write protected, or this user may not write the device (check the tab and that the user is in the 'tape' group).`,
          context,
          cause,
        );
      }
      return new TapeIOError(`permission denied on ${dev} (EACCES on ${op}): run as a user in the 'tape' group.`, context, cause);
    case 'EBUSY':
      return new TapeBusyError(`${dev} is busy (EBUSY on ${op}): another process has it open; wait for it or stop it.`, context, cause);
    case 'ENOMEM':
      return new TapeIOError(
        `a block on the tape in ${dev}${where} is larger than the read buffer (ENOMEM on ${op}): the tape was written with a larger block size; read it with that block size, or, if it was written in variable-block mode (e.g. a tapetown tape), with variable blocks: readFile({ variable: {} }).`,
        context,
        cause,
      );
    case 'ENOENT':
    case 'ENXIO':
    case 'ENODEV':
      return new TapeIOError(
        `tape device ${dev} is not available (${errno} on ${op}); check the device path and that the st module sees the drive (lsscsi -g).`,
        context,
        cause,
      );
    case 'EIO':
      return new TapeIOError(
        `I/O error on ${dev}${where} (EIO on ${op}); check the drive's kernel log (dmesg), clean the drive or retry with another tape.`,
        context,
        cause,
      );
    default:
      return new TapeIOError(`${op} on ${dev}${where} failed: ${errorMessage(e)}`, context, cause);
  }
}

/** Map a failed mt command (non-zero exit) by the text it printed. */
export function mapMtFailure(dev: string, args: string[], res: StRunResult, ctx: TapeErrorContext = {}): Error {
  const text = `${res.stderr}\n${res.stdout}`.trim();
  const cmd = `mt -f ${dev} ${args.join(' ')}`;
  const context = { ...ctx, drive: dev, mtExitCode: res.code };
  if (/no medium found/i.test(text)) return new NoTapeError(`no tape in ${dev} (\`${cmd}\`: ${text}); load a tape and retry.`, context);
  if (/read-only file system|write.protect/i.test(text)) {
    return new WriteProtectedError(`the tape in ${dev} is write protected (\`${cmd}\`: ${text}); use another tape.`, context);
  }
  if (/device or resource busy/i.test(text)) return new TapeBusyError(`${dev} is busy (\`${cmd}\`: ${text}); another process has it open.`, context);
  if (/no such file or directory|no such device/i.test(text)) {
    return new TapeIOError(`tape device ${dev} is not available (\`${cmd}\`: ${text}); check the device path.`, context);
  }
  return new TapeIOError(`\`${cmd}\` failed with exit code ${res.code}: ${text || '(no output)'}`, context);
}
