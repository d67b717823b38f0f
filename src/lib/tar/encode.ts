/**
 * Minimal POSIX pax / ustar codec (encoding; parsing is in parse.ts), written for this format rather than taken from a library
 * because names are bytes: a member name is written exactly as given (including bytes that
 * are not UTF-8), and the parser reports corruption instead of throwing so a verify can list
 * every damaged member.
 *
 * Encoding rules (see docs/tape-format.md):
 * - Every member gets a ustar header (magic "ustar\0", version "00"); uid/gid 0, no user or
 *   group names, mode = permission bits, mtime = whole seconds.
 * - Names of at most 100 bytes go in the ustar `name` field as raw bytes (GNU tar never
 *   converts those). Longer names go in a pax `x` header as `path`; so do link targets over
 *   100 bytes (`linkpath`), sizes >= 8 GiB (`size`) and times outside the 11-digit octal
 *   range (`mtime`). A pax value that is not valid UTF-8 is marked with `hdrcharset=BINARY`
 *   (POSIX); GNU tar 1.34 does not know that keyword, prints "Ignoring unknown extended header
 *   keyword 'hdrcharset'" and uses the raw bytes, which is what we want.
 */

import { isUtf8 } from 'node:buffer';

export const RECORD = 512;
export const ZERO_RECORD: Buffer = Buffer.alloc(RECORD);
/** Two zero records end a tar archive. */
export const END_OF_ARCHIVE: Buffer = Buffer.alloc(2 * RECORD);

const OCTAL11_MAX = 8 ** 11 - 1; // 8 GiB - 1 for size, year 2242 for mtime
const NAME_MAX = 100;
const LINK_MAX = 100;

/** `hardlink`: typeflag 1, a second name of a file archived earlier in the same archive (linkname). */
export type TarType = 'file' | 'dir' | 'symlink' | 'hardlink';

export interface TarHeaderInit {
  /** Full member name bytes; directories end with '/'. */
  name: Buffer;
  type: TarType;
  /** Permission bits (masked with 07777). */
  mode: number;
  /** Seconds since the epoch (integer). */
  mtime: number;
  /** Data bytes that follow (files only; 0 otherwise). */
  size: number;
  linkname?: Buffer;
  /** Owner and group (default 0; the tape writer leaves them out, a restore to a data host sets them). */
  uid?: number;
  gid?: number;
  /** Write a fractional mtime exactly (a pax `mtime` record), for a restore. */
  exactMtime?: boolean;
}

const TYPEFLAG: Record<TarType, number> = { file: 0x30, dir: 0x35, symlink: 0x32, hardlink: 0x31 };

/** Number of padding bytes after `size` data bytes. */
export function padding(size: number): number {
  const r = size % RECORD;
  return r === 0 ? 0 : RECORD - r;
}

function writeOctal(buf: Buffer, off: number, len: number, value: number): void {
  const digits = Math.trunc(value)
    .toString(8)
    .padStart(len - 1, '0');
  buf.write(digits, off, len - 1, 'latin1');
  buf[off + len - 1] = 0;
}

function finishChecksum(h: Buffer): void {
  h.fill(0x20, 148, 156);
  let sum = 0;
  for (let i = 0; i < RECORD; i++) sum += h[i]!;
  h.write(sum.toString(8).padStart(6, '0'), 148, 6, 'latin1');
  h[154] = 0;
  h[155] = 0x20;
}

const ID_MAX = 8 ** 7 - 1;

function ustarHeader(name: Buffer, typeflag: number, mode: number, mtime: number, size: number, linkname?: Buffer, uid = 0, gid = 0): Buffer {
  const h = Buffer.alloc(RECORD);
  name.copy(h, 0, 0, Math.min(name.length, NAME_MAX));
  writeOctal(h, 100, 8, mode & 0o7777);
  writeOctal(h, 108, 8, Math.min(uid, ID_MAX));
  writeOctal(h, 116, 8, Math.min(gid, ID_MAX));
  writeOctal(h, 124, 12, size);
  writeOctal(h, 136, 12, mtime);
  h[156] = typeflag;
  if (linkname) linkname.copy(h, 157, 0, Math.min(linkname.length, LINK_MAX));
  h.write('ustar\u000000', 257, 8, 'latin1');
  writeOctal(h, 329, 8, 0);
  writeOctal(h, 337, 8, 0);
  finishChecksum(h);
  return h;
}

/** One pax record: "<len> <key>=<value>\n", where <len> counts the whole record. */
function paxRecord(key: string, value: Buffer): Buffer {
  const base = Buffer.byteLength(key) + value.length + 3;
  let len = base + String(base).length;
  if (String(len).length !== String(base).length) len = base + String(len).length;
  return Buffer.concat([Buffer.from(`${len} ${key}=`, 'latin1'), value, Buffer.from('\n')]);
}

/**
 * The header record(s) for one member: a pax `x` header with its data when needed, then the
 * ustar header. The caller writes the member data and `padding(size)` zero bytes after it.
 */
export function encodeHeader(e: TarHeaderInit): Buffer {
  const records: Buffer[] = [];
  let binary = false;
  if (e.name.length > NAME_MAX) {
    records.push(paxRecord('path', e.name));
    if (!isUtf8(e.name)) binary = true;
  }
  if (e.linkname && e.linkname.length > LINK_MAX) {
    records.push(paxRecord('linkpath', e.linkname));
    if (!isUtf8(e.linkname)) binary = true;
  }
  let size = e.size;
  if (size > OCTAL11_MAX) {
    records.push(paxRecord('size', Buffer.from(String(size))));
    size = 0;
  }
  let mtime = Math.floor(e.mtime);
  if (!Number.isFinite(mtime)) mtime = 0;
  if (mtime < 0 || mtime > OCTAL11_MAX || (e.exactMtime && mtime !== e.mtime)) {
    records.push(paxRecord('mtime', Buffer.from(e.exactMtime && Number.isFinite(e.mtime) ? e.mtime.toFixed(3) : String(mtime))));
    mtime = mtime < 0 ? 0 : Math.min(mtime, OCTAL11_MAX);
  }
  for (const [key, v] of [
    ['uid', e.uid],
    ['gid', e.gid],
  ] as const)
    if (v !== undefined && v > ID_MAX) records.push(paxRecord(key, Buffer.from(String(v))));
  const main = ustarHeader(e.name, TYPEFLAG[e.type], e.mode, mtime, size, e.linkname, e.uid, e.gid);
  if (!records.length) return main;
  if (binary) records.unshift(paxRecord('hdrcharset', Buffer.from('BINARY')));
  const data = Buffer.concat(records);
  const x = ustarHeader(Buffer.from('././@PaxHeader'), 0x78, 0o644, mtime, data.length);
  return Buffer.concat([x, data, Buffer.alloc(padding(data.length)), main]);
}

/** A whole small member (header, data, padding) in one buffer. */
export function encodeSmallMember(name: string, data: Buffer, mtime: number, mode = 0o644): Buffer {
  const h = encodeHeader({ name: Buffer.from(name), type: 'file', mode, mtime, size: data.length });
  return Buffer.concat([h, data, Buffer.alloc(padding(data.length))]);
}
