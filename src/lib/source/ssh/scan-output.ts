/** Parsing the two outputs of a remote scan (find -printf listing, sha256sum list) into a manifest. */
import { linkTargetFields, pathFields, skipReason, type ManifestEntry } from '../../domain/manifest.ts';
import type { ScanOptions } from '../data-source.ts';
import { firstLines } from './channel.ts';

const HEX64 = /^[0-9a-f]{64}$/;

/** Sort key that orders paths like the local scan: depth first, each directory by name bytes. */
const sortKey = (latin1Name: string) => (latin1Name.includes('/') ? latin1Name.replaceAll('/', '\0') : latin1Name);

const ASCII = /^[\x01-\x7f]*$/;

/** Path fields from a latin1 string of the name bytes (the common all-ASCII case without copies). */
export function pathFieldsLatin1(name: string): { path: string; rawPath?: string } {
  return ASCII.test(name) ? { path: name } : pathFields(Buffer.from(name, 'latin1'));
}

/** Unsigned decimal integer in buf[a, b), or -1. */
function decAt(buf: Buffer, a: number, b: number): number {
  if (a >= b) return -1;
  let v = 0;
  for (let i = a; i < b; i++) {
    const c = buf[i]! - 0x30;
    if (c < 0 || c > 9) return -1;
    v = v * 10 + c;
  }
  return v;
}

/** Octal integer in buf[a, b), or -1. */
function octAt(buf: Buffer, a: number, b: number): number {
  if (a >= b) return -1;
  let v = 0;
  for (let i = a; i < b; i++) {
    const c = buf[i]! - 0x30;
    if (c < 0 || c > 7) return -1;
    v = v * 8 + c;
  }
  return v;
}

/** find's %T@ ("1700000000.1234567890", maybe negative) in buf[a, b) -> ms like stat's mtimeMs; NaN if malformed. */
function findTimeAt(buf: Buffer, a: number, b: number): number {
  let i = a;
  const neg = buf[i] === 0x2d;
  if (neg) i++;
  let sec = 0;
  let digits = 0;
  for (; i < b && buf[i] !== 0x2e; i++, digits++) {
    const c = buf[i]! - 0x30;
    if (c < 0 || c > 9) return NaN;
    sec = sec * 10 + c;
  }
  if (!digits) return NaN;
  let nsec = 0;
  let f = 0;
  if (i < b) i++; // the '.'
  for (; i < b; i++) {
    const c = buf[i]! - 0x30;
    if (c < 0 || c > 9) return NaN;
    if (f < 9) {
      nsec = nsec * 10 + c;
      f++;
    }
  }
  for (; f < 9; f++) nsec *= 10;
  const ms = sec * 1e3 + nsec / 1e6;
  return neg ? -ms : ms;
}

interface ScanRecord {
  key: string;
  name: string;
  /** find's %y character code. */
  y: number;
  size: number;
  mtimeMs: number;
  mode: number;
  link: string;
  /** "dev:ino" of a regular file with several names. */
  inode?: string;
  /** Owner and group (since release 0.5; a listing without them gives none). */
  uid?: number;
  gid?: number;
}

/** Exit statuses and error output of the two scan commands. */
export interface ScanStatus {
  listStatus: number;
  listStderr: string;
  hashStatus: number;
  hashStderr: string;
}

const Y_FILE = 0x66; // f
const Y_DIR = 0x64; // d
const Y_LINK = 0x6c; // l
const SPECIAL_KINDS: Record<string, string> = { p: 'fifo', s: 'socket', b: 'block device', c: 'character device', D: 'door' };

/**
 * Incremental parser of the two scan outputs (LIST_SCRIPT and HASH_SCRIPT, fed in any
 * interleaving, split anywhere). Works on the bytes: only names (and link targets) become
 * strings (latin1, one char per byte). `finish()` returns the entries sorted like the local
 * scan, or throws an Error saying what is wrong.
 */
export class ScanOutputParser {
  private readonly records: ScanRecord[] = [];
  private readonly hashes = new Map<string, string>();
  private error: string | null = null;
  private listCarry: Buffer | null = null;
  private hashCarry: Buffer | null = null;
  private listEnded = false;
  private hashEnded = false;

  private fail(why: string): void {
    this.error ??= why;
  }

  pushListing(chunk: Buffer): void {
    if (this.error || !chunk.length) return;
    const buf = this.listCarry ? Buffer.concat([this.listCarry, chunk]) : chunk;
    let pos = 0;
    const n = buf.length;
    while (pos < n) {
      if (this.listEnded) {
        this.fail('output after the end of the listing');
        return;
      }
      if (buf[pos] === 0x3d && pos + 1 < n && buf[pos + 1] === 0) {
        this.listEnded = true;
        pos += 2;
        continue;
      }
      // one record: 6 NUL-terminated fields (a byte loop: most fields are a few bytes long,
      // shorter than the cost of a native indexOf call)
      let z1 = -1;
      let z2 = -1;
      let z3 = -1;
      let z4 = -1;
      let z5 = -1;
      let i = pos;
      while (i < n && buf[i] !== 0) i++;
      if (i < n) z1 = i++;
      while (i < n && buf[i] !== 0) i++;
      if (i < n && z1 >= 0) z2 = i++;
      while (i < n && buf[i] !== 0) i++;
      if (i < n && z2 >= 0) z3 = i++;
      while (i < n && buf[i] !== 0) i++;
      if (i < n && z3 >= 0) z4 = i++;
      if (z4 < 0) break;
      z5 = buf.indexOf(0, z4 + 1); // the name: may be long
      if (z5 < 0) break;
      i = z5 + 1;
      while (i < n && buf[i] !== 0) i++;
      if (i >= n) break;
      const z6 = i++;
      while (i < n && buf[i] !== 0) i++;
      if (i >= n) break;
      const z7 = i;
      const name = buf.toString('latin1', z4 + 1, z5);
      const size = decAt(buf, z1 + 1, z2);
      const mtimeMs = findTimeAt(buf, z2 + 1, z3);
      const mode = octAt(buf, z3 + 1, z4);
      if (z1 !== pos + 1 || size < 0 || !Number.isFinite(mtimeMs) || mode < 0 || !name) {
        this.fail(`malformed listing record for ${JSON.stringify(name)}`);
        return;
      }
      const link = z6 > z5 + 1 ? buf.toString('latin1', z5 + 1, z6) : '';
      const colon = buf.indexOf(0x3a, z6 + 1);
      const nlink = colon > z6 && colon < z7 ? decAt(buf, z6 + 1, colon) : -1;
      if (nlink < 0) {
        this.fail(`malformed listing record for ${JSON.stringify(name)} (link count)`);
        return;
      }
      // dev:ino[:uid:gid]
      const [dev, ino, uid, gid] = buf.toString('latin1', colon + 1, z7).split(':');
      const inode = nlink > 1 && buf[pos] === Y_FILE ? `${dev}:${ino}` : undefined;
      const owner = uid !== undefined && gid !== undefined && /^\d+$/.test(uid) && /^\d+$/.test(gid) ? { uid: Number(uid), gid: Number(gid) } : {};
      this.records.push({ key: sortKey(name), name, y: buf[pos]!, size, mtimeMs, mode, link, ...(inode ? { inode } : {}), ...owner });
      pos = z7 + 1;
    }
    this.listCarry = pos < n ? Buffer.from(buf.subarray(pos)) : null;
  }

  pushHashes(chunk: Buffer): void {
    if (this.error || !chunk.length) return;
    const buf = this.hashCarry ? Buffer.concat([this.hashCarry, chunk]) : chunk;
    let pos = 0;
    const n = buf.length;
    while (pos < n) {
      const z = buf.indexOf(0, pos);
      if (z < 0) break;
      if (this.hashEnded) {
        this.fail('output after the end of the checksum list');
        return;
      }
      if (z === pos + 1 && buf[pos] === 0x3d) {
        this.hashEnded = true;
        pos = z + 1;
        continue;
      }
      // "<64 hex><space><space|*>./<name>"
      const hex = z >= pos + 69 ? buf.toString('latin1', pos, pos + 64) : '';
      if (
        !HEX64.test(hex) ||
        buf[pos + 64] !== 0x20 ||
        (buf[pos + 65] !== 0x20 && buf[pos + 65] !== 0x2a) ||
        buf[pos + 66] !== 0x2e ||
        buf[pos + 67] !== 0x2f
      ) {
        this.fail(`malformed sha256sum line ${JSON.stringify(buf.toString('latin1', pos, Math.min(z, pos + 200)))}`);
        return;
      }
      this.hashes.set(buf.toString('latin1', pos + 68, z), hex);
      pos = z + 1;
    }
    this.hashCarry = pos < n ? Buffer.from(buf.subarray(pos)) : null;
  }

  /**
   * The manifest, sorted. Files that vanished between the listing and the hashing (one
   * "No such file or directory" line each from sha256sum) are left out, as the local scan
   * does; any other gap or error is an Error.
   */
  finish(st: ScanStatus, onSkipped?: ScanOptions['onSkipped']): ManifestEntry[] {
    if (this.error) throw new Error(this.error);
    if (st.listStatus !== 0) {
      throw new Error(
        `find exited with status ${st.listStatus} while listing the target: ${firstLines(st.listStderr) || '(no message)'}. ` +
          'Entries it could not read would be missing, so the scan is refused; make them readable by the SSH user (or move them out of the target) and scan again.',
      );
    }
    if (!this.listEnded || this.listCarry) throw new Error('the listing is truncated (no end marker)');
    if (!this.hashEnded || this.hashCarry) throw new Error('the checksum list is truncated (no end marker)');
    const errLines = st.hashStderr.split('\n').filter(Boolean);
    const missing = this.records.filter((r) => r.y === Y_FILE && !this.hashes.has(r.name));
    const vanishedOnly = errLines.length === missing.length && errLines.every((l) => /: No such file or directory$/.test(l));
    if (st.hashStatus !== 0 && !(missing.length > 0 && vanishedOnly)) {
      throw new Error(
        `sha256sum failed (xargs exit status ${st.hashStatus}): ${firstLines(st.hashStderr) || '(no message)'}. ` +
          'Files that cannot be read would have no checksum, so the scan is refused; make them readable by the SSH user and scan again.',
      );
    }
    if (missing.length && !vanishedOnly) {
      throw new Error(
        `${missing.length} files were listed but not hashed (e.g. ${JSON.stringify(missing[0]!.name)}; created during the scan?): ` +
          `${firstLines(st.hashStderr) || 'no error reported'}. Scan again.`,
      );
    }
    const dropped = new Set(missing.map((r) => r.name));
    this.records.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
    const out: ManifestEntry[] = [];
    const groups = new Map<string, number>(); // "dev:ino" -> link group, numbered in manifest order
    for (const r of this.records) {
      const pf = pathFieldsLatin1(r.name);
      let e: ManifestEntry;
      if (r.y === Y_FILE) {
        if (dropped.has(r.name)) continue; // vanished during the scan
        e = { path: pf.path, mtimeMs: r.mtimeMs, mode: r.mode & 0o7777, type: 'file', size: r.size, sha256: this.hashes.get(r.name)! };
        if (r.inode !== undefined) {
          let g = groups.get(r.inode);
          if (g === undefined) groups.set(r.inode, (g = groups.size + 1));
          e.linkGroup = g;
        }
      } else if (r.y === Y_DIR) {
        e = { path: pf.path, mtimeMs: r.mtimeMs, mode: r.mode & 0o7777, type: 'dir', size: 0 };
      } else if (r.y === Y_LINK) {
        e = { path: pf.path, mtimeMs: r.mtimeMs, mode: r.mode & 0o7777, type: 'symlink', size: 0, ...linkTargetFields(Buffer.from(r.link, 'latin1')) };
      } else {
        const y = String.fromCharCode(r.y);
        onSkipped?.({ ...pf, reason: skipReason(SPECIAL_KINDS[y] ?? `special file (${y})`) });
        continue;
      }
      if (pf.rawPath !== undefined) {
        const { path, ...rest } = e;
        e = { path, rawPath: pf.rawPath, ...rest };
      }
      if (r.uid !== undefined && r.gid !== undefined) {
        e.uid = r.uid;
        e.gid = r.gid;
      }
      out.push(e);
    }
    return out;
  }
}
