/**
 * Minimal POSIX pax / ustar codec, written for this format rather than taken from a library
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

export const RECORD = 512;
export const ZERO_RECORD: Buffer = Buffer.alloc(RECORD);
/** Two zero records end a tar archive. */
export const END_OF_ARCHIVE: Buffer = Buffer.alloc(2 * RECORD);

const OCTAL11_MAX = 8 ** 11 - 1; // 8 GiB - 1 for size, year 2242 for mtime
const NAME_MAX = 100;
const LINK_MAX = 100;

const utf8Strict = new TextDecoder('utf-8', { fatal: true });

export function isUtf8(b: Buffer): boolean {
  try {
    utf8Strict.decode(b);
    return true;
  } catch {
    return false;
  }
}

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

function ustarHeader(name: Buffer, typeflag: number, mode: number, mtime: number, size: number, linkname?: Buffer): Buffer {
  const h = Buffer.alloc(RECORD);
  name.copy(h, 0, 0, Math.min(name.length, NAME_MAX));
  writeOctal(h, 100, 8, mode & 0o7777);
  writeOctal(h, 108, 8, 0);
  writeOctal(h, 116, 8, 0);
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
  if (mtime < 0 || mtime > OCTAL11_MAX) {
    records.push(paxRecord('mtime', Buffer.from(String(mtime))));
    mtime = mtime < 0 ? 0 : OCTAL11_MAX;
  }
  const main = ustarHeader(e.name, TYPEFLAG[e.type], e.mode, mtime, size, e.linkname);
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

// ---------------------------------------------------------------------------------------------
// Parsing

export interface TarMember {
  /** Archive offset of the member's first header record (its pax header when it has one). */
  offset: number;
  name: Buffer;
  /** The raw typeflag character ('0', '5', '2', ...); '\0' is normalized to '0'. */
  typeflag: string;
  size: number;
  mode: number;
  /** Seconds since the epoch (may be fractional when a pax mtime says so). */
  mtime: number;
  linkname: Buffer;
}

export interface TarSink {
  member(m: TarMember): void;
  /** Data of the current member, in order; the chunk is a view into the input. */
  data(chunk: Buffer): void;
  memberEnd(): void;
  /** A damaged header or extended header at `offset`; the parser skips ahead to the next valid header. */
  problem(offset: number, reason: string): void;
  /** The end-of-archive marker (two zero records) at `offset`. */
  end(offset: number): void;
}

export type TarFinish = { state: 'end' } | { state: 'truncated'; inMember: boolean; offset: number } | { state: 'no-end-marker'; offset: number };

enum S {
  Header,
  Data,
  Pad,
  Collect,
  Skip,
  End,
}

const MAX_EXT_HEADER = 16 * 1024 * 1024;

function parseNumeric(b: Buffer): number | null {
  if (b.length && b[0]! & 0x80) {
    // GNU base-256: positive only
    if (b[0] === 0xff) return null;
    let v = b[0]! & 0x7f;
    for (let i = 1; i < b.length; i++) v = v * 256 + b[i]!;
    return Number.isSafeInteger(v) ? v : null;
  }
  let i = 0;
  while (i < b.length && (b[i] === 0x20 || b[i] === 0)) i++;
  let v = 0;
  let any = false;
  for (; i < b.length; i++) {
    const c = b[i]!;
    if (c === 0 || c === 0x20) break;
    if (c < 0x30 || c > 0x37) return null;
    v = v * 8 + (c - 0x30);
    any = true;
  }
  for (; i < b.length; i++) if (b[i] !== 0 && b[i] !== 0x20) return null;
  return any ? v : 0;
}

function cstr(b: Buffer): Buffer {
  const z = b.indexOf(0);
  return z === -1 ? b : b.subarray(0, z);
}

function isZero(b: Buffer): boolean {
  for (let i = 0; i < b.length; i += 8) if (b.readBigUInt64LE(i) !== 0n) return false;
  return true;
}

function checksumOk(h: Buffer): boolean {
  const stored = parseNumeric(h.subarray(148, 156));
  if (stored === null) return false;
  let u = 0;
  let s = 0;
  for (let i = 0; i < RECORD; i++) {
    const c = i >= 148 && i < 156 ? 0x20 : h[i]!;
    u += c;
    s += c > 127 ? c - 256 : c;
  }
  return stored === u || stored === s;
}

function parsePax(data: Buffer): Map<string, Buffer> | string {
  const out = new Map<string, Buffer>();
  let pos = 0;
  while (pos < data.length) {
    if (data[pos] === 0) break; // trailing NULs
    const sp = data.indexOf(0x20, pos);
    if (sp === -1 || sp - pos > 20) return 'malformed pax record (no length)';
    const len = Number(data.toString('latin1', pos, sp));
    if (!Number.isSafeInteger(len) || len < 5 || pos + len > data.length) return 'malformed pax record (bad length)';
    const rec = data.subarray(sp + 1, pos + len);
    if (rec[rec.length - 1] !== 0x0a) return 'malformed pax record (no newline)';
    const eq = rec.indexOf(0x3d);
    if (eq <= 0) return 'malformed pax record (no "=")';
    out.set(rec.toString('utf8', 0, eq), rec.subarray(eq + 1, rec.length - 1));
    pos += len;
  }
  return out;
}

/**
 * Push parser: feed the archive with `push()` in chunks of any size, then call `finish()`.
 * It never throws on damaged input; it reports through the sink and resynchronizes on the
 * next record with a valid header checksum.
 */
export class TarParser {
  /** Bytes consumed so far. */
  offset = 0;
  private state = S.Header;
  private readonly hbuf = Buffer.alloc(RECORD);
  private hlen = 0;
  private remaining = 0;
  private collectKind: 'pax' | 'global' | 'longname' | 'longlink' = 'pax';
  private collected: Buffer[] = [];
  private pax: Map<string, Buffer> | null = null;
  private longname: Buffer | null = null;
  private longlink: Buffer | null = null;
  private memberOffset = -1;
  private zeroPending = -1;
  private resyncing = false;
  private inMember = false;
  /** Data size of the current member (for its padding). */
  private dataSize = 0;
  /** Padding after the extended header being read. */
  private pad = 0;

  constructor(private readonly sink: TarSink) {}

  push(chunk: Buffer): void {
    let pos = 0;
    const len = chunk.length;
    while (pos < len) {
      switch (this.state) {
        case S.End:
          this.offset += len - pos;
          return;
        case S.Data: {
          const n = Math.min(this.remaining, len - pos);
          this.sink.data(chunk.subarray(pos, pos + n));
          pos += n;
          this.offset += n;
          this.remaining -= n;
          if (this.remaining === 0) this.endMember();
          break;
        }
        case S.Collect:
        case S.Skip: {
          const n = Math.min(this.remaining, len - pos);
          if (this.state === S.Collect) this.collected.push(chunk.subarray(pos, pos + n));
          pos += n;
          this.offset += n;
          this.remaining -= n;
          if (this.remaining === 0) this.endExtended();
          break;
        }
        case S.Pad: {
          const n = Math.min(this.remaining, len - pos);
          pos += n;
          this.offset += n;
          this.remaining -= n;
          if (this.remaining === 0) this.state = S.Header;
          break;
        }
        case S.Header: {
          let block: Buffer;
          if (this.hlen === 0 && len - pos >= RECORD) {
            block = chunk.subarray(pos, pos + RECORD);
            pos += RECORD;
          } else {
            const n = Math.min(RECORD - this.hlen, len - pos);
            chunk.copy(this.hbuf, this.hlen, pos, pos + n);
            this.hlen += n;
            pos += n;
            if (this.hlen < RECORD) {
              this.offset += n;
              break;
            }
            this.offset += n - RECORD; // rewind to the record start for the accounting below
            block = this.hbuf;
            this.hlen = 0;
          }
          const at = this.offset;
          this.offset += RECORD;
          this.header(block, at);
          break;
        }
      }
    }
  }

  finish(): TarFinish {
    if (this.state === S.End) return { state: 'end' };
    if (this.state === S.Header && this.hlen === 0 && !this.pax && !this.longname && !this.longlink) {
      return { state: 'no-end-marker', offset: this.offset };
    }
    return { state: 'truncated', inMember: this.inMember, offset: this.offset };
  }

  private header(block: Buffer, at: number): void {
    if (isZero(block)) {
      if (this.zeroPending >= 0) {
        this.state = S.End;
        this.sink.end(this.zeroPending);
        return;
      }
      this.zeroPending = at;
      return;
    }
    if (this.zeroPending >= 0) {
      this.sink.problem(this.zeroPending, 'a lone zero record inside the archive');
      this.zeroPending = -1;
    }
    if (!checksumOk(block)) {
      if (!this.resyncing) {
        this.sink.problem(at, 'damaged tar header (checksum mismatch); skipping to the next valid header');
        this.resyncing = true;
        this.pax = this.longname = this.longlink = null;
        this.memberOffset = -1;
      }
      return;
    }
    this.resyncing = false;
    const size0 = parseNumeric(block.subarray(124, 136));
    const mode = parseNumeric(block.subarray(100, 108));
    const mtime0 = parseNumeric(block.subarray(136, 148));
    if (size0 === null || mode === null || mtime0 === null) {
      this.sink.problem(at, 'damaged tar header (bad numeric field); skipping to the next valid header');
      this.resyncing = true;
      return;
    }
    if (this.memberOffset < 0) this.memberOffset = at;
    let tf = String.fromCharCode(block[156]!);
    if (tf === '\0') tf = '0';
    if (tf === 'x' || tf === 'g' || tf === 'L' || tf === 'K') {
      if (size0 > MAX_EXT_HEADER) {
        this.sink.problem(at, `extended header of ${size0} bytes is implausibly large`);
        this.collectKind = 'global';
        this.remaining = size0;
        this.state = size0 ? S.Skip : S.Header;
        this.pad = padding(size0);
        if (!size0) this.afterExtended();
        return;
      }
      this.collectKind = tf === 'x' ? 'pax' : tf === 'g' ? 'global' : tf === 'L' ? 'longname' : 'longlink';
      this.collected = [];
      this.remaining = size0;
      this.pad = padding(size0);
      this.state = S.Collect;
      if (size0 === 0) this.endExtended();
      return;
    }
    let name: Buffer;
    const px = this.pax;
    const magic = block.toString('latin1', 257, 263);
    if (px?.has('path')) name = Buffer.from(px.get('path')!);
    else if (this.longname) name = this.longname;
    else {
      const base = cstr(block.subarray(0, 100));
      const prefix = magic === 'ustar\0' ? cstr(block.subarray(345, 500)) : Buffer.alloc(0);
      name = prefix.length ? Buffer.concat([prefix, Buffer.from('/'), base]) : Buffer.from(base);
    }
    let linkname: Buffer;
    if (px?.has('linkpath')) linkname = Buffer.from(px.get('linkpath')!);
    else if (this.longlink) linkname = this.longlink;
    else linkname = Buffer.from(cstr(block.subarray(157, 257)));
    let size = size0;
    let mtime = mtime0;
    if (px?.has('size')) {
      const v = Number(px.get('size')!.toString('latin1'));
      if (!Number.isSafeInteger(v) || v < 0) {
        this.sink.problem(at, 'bad pax size');
        this.resyncing = true;
        this.reset();
        return;
      }
      size = v;
    }
    if (px?.has('mtime')) {
      const v = Number(px.get('mtime')!.toString('latin1'));
      if (Number.isFinite(v)) mtime = v;
    }
    const offset = this.memberOffset;
    this.reset();
    // Only regular files (and unknown types, conservatively) carry data; dirs, links and
    // devices do not, whatever their size field says (as GNU tar does).
    const hasData = tf === '0' || tf === '7' || !'123456'.includes(tf);
    const dataSize = hasData ? size : 0;
    this.inMember = true;
    this.dataSize = dataSize;
    this.sink.member({ offset, name, typeflag: tf, size: dataSize, mode, mtime, linkname });
    if (dataSize > 0) {
      this.remaining = dataSize;
      this.state = S.Data;
    } else {
      this.endMember();
    }
  }

  private reset(): void {
    this.pax = this.longname = this.longlink = null;
    this.memberOffset = -1;
  }

  private endMember(): void {
    this.inMember = false;
    this.sink.memberEnd();
    this.remaining = padding(this.dataSize);
    this.state = this.remaining ? S.Pad : S.Header;
  }

  private endExtended(): void {
    const data = this.collected.length === 1 ? this.collected[0]! : Buffer.concat(this.collected);
    this.collected = [];
    if (this.collectKind === 'pax') {
      const parsed = parsePax(data);
      if (typeof parsed === 'string') {
        this.sink.problem(this.memberOffset, parsed);
        this.pax = null;
      } else {
        this.pax = parsed;
      }
    } else if (this.collectKind === 'longname') {
      this.longname = Buffer.from(cstr(data));
    } else if (this.collectKind === 'longlink') {
      this.longlink = Buffer.from(cstr(data));
    } else {
      // global header: applies to the rest of the archive; we write none and ignore them
      this.memberOffset = -1;
    }
    this.afterExtended();
  }

  private afterExtended(): void {
    this.remaining = this.pad;
    this.state = this.pad ? S.Pad : S.Header;
  }
}
