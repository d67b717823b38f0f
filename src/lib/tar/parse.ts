/**
 * Push parser of POSIX pax / ustar / GNU tar archives: members, their data, and every damaged
 * header reported (then skipped to the next valid one) instead of thrown, so a verify can
 * list each damaged member. Names and link names are bytes.
 */
import { padding, RECORD } from './encode.ts';
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

/** What a member is, from its typeflag ('7', contiguous, is a regular file). */
export type MemberKind = 'file' | 'dir' | 'symlink' | 'hardlink' | 'other';

const KIND_OF_TYPEFLAG: Record<string, MemberKind> = { '0': 'file', '7': 'file', '5': 'dir', '2': 'symlink', '1': 'hardlink' };

export function memberKind(typeflag: string): MemberKind {
  return KIND_OF_TYPEFLAG[typeflag] ?? 'other';
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
  // The sum of the bytes, the checksum field counted as spaces; unsigned, or (old tars) signed.
  let u = 8 * 0x20;
  let high = 0;
  for (let i = 0; i < 148; i++) {
    const c = h[i]!;
    u += c;
    high += c >>> 7;
  }
  for (let i = 156; i < RECORD; i++) {
    const c = h[i]!;
    u += c;
    high += c >>> 7;
  }
  return stored === u || stored === u - 256 * high;
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
          // A copy: the input's buffers may be reused once push() returns.
          if (this.state === S.Collect) this.collected.push(Buffer.from(chunk.subarray(pos, pos + n)));
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
