/**
 * The verify of a target's tape file (the confirm step): every checksum recomputed and
 * compared with the trailer and the manifest. A damaged tar never throws: every problem is
 * listed in the report. Errors of the block source (tape I/O) and aborts propagate. The label
 * and header readers are in read-header.ts.
 */
import { createHash, type Hash } from 'node:crypto';
import { hardLinkFollowers, linkTargetBytes, pathFields, summarize, type ManifestEntry } from '../domain/manifest.ts';
import {
  DATA_DIR,
  dataRelativeName,
  HEADER_MEMBER,
  TRAILER_MEMBER,
  filesDigest,
  headerSchema,
  trailerSchema,
  type BadEntry,
  type TargetHeader,
  type Trailer,
  type VerifyReport,
} from './format.ts';
import { memberKind, TarParser, type MemberKind, type TarMember, type TarSink } from '../tar/parse.ts';
import { errorMessage } from '../errors.ts';
import { abortCheck, MAX_JSON_BYTES, parseJson, type Collect } from './read-header.ts';

const DATA_PREFIX = Buffer.from(DATA_DIR);

type Kind = MemberKind;

interface Streamed {
  name: Buffer;
  kind: Kind;
  typeflag: string;
  size: number;
  read: number;
  mode: number;
  mtime: number;
  linkname: Buffer;
  offset: number;
  sha256?: string;
}

export interface ReadTargetOptions {
  /** Called with the bytes read so far (per block). */
  onProgress?: (bytesDone: number) => void;
  signal?: AbortSignal;
}

class Verifier implements TarSink {
  members = 0;
  headerData: Collect | null = null;
  headerDone = false;
  trailerData: Collect | null = null;
  trailerDone = false;
  streamed: Streamed[] = [];
  /** The `data/` member (the target's root directory). */
  root: { mode: number; mtime: number } | null = null;
  structural: BadEntry[] = [];
  endSeen = false;
  private cur: { kind: 'header' | 'trailer' | 'data' | 'skip'; rec?: Streamed; hash?: Hash; collect?: Collect } = { kind: 'skip' };

  member(m: TarMember): void {
    this.members++;
    const first = this.members === 1;
    const nameStr = m.name.toString('utf8');
    if (first && !(nameStr === HEADER_MEMBER && m.typeflag === '0')) {
      this.structural.push({ path: HEADER_MEMBER, reason: `missing: the tape file begins with ${JSON.stringify(nameStr)}` });
    }
    if (this.trailerDone) {
      this.structural.push({ path: pathFields(m.name).path, reason: `member after ${TRAILER_MEMBER}` });
      this.cur = { kind: 'skip' };
      return;
    }
    if (first && nameStr === HEADER_MEMBER && m.typeflag === '0') {
      this.headerData = { chunks: [], size: 0, tooLarge: m.size > MAX_JSON_BYTES };
      this.cur = { kind: 'header', collect: this.headerData };
      return;
    }
    if (nameStr === TRAILER_MEMBER && m.typeflag === '0') {
      this.trailerData = { chunks: [], size: 0, tooLarge: m.size > MAX_JSON_BYTES };
      this.cur = { kind: 'trailer', collect: this.trailerData };
      return;
    }
    if (nameStr === HEADER_MEMBER) {
      this.structural.push({ path: HEADER_MEMBER, reason: 'a second header.json' });
      this.cur = { kind: 'skip' };
      return;
    }
    const rel = dataRelativeName(m.name);
    if (rel) {
      const kind = memberKind(m.typeflag);
      if (rel.length === 0) {
        if (kind !== 'dir') this.structural.push({ path: DATA_DIR, reason: 'the data/ member is not a directory' });
        else this.root = { mode: m.mode, mtime: m.mtime };
        this.cur = { kind: 'skip' };
        return;
      }
      const rec: Streamed = {
        name: Buffer.from(rel),
        kind,
        typeflag: m.typeflag,
        size: m.size,
        read: 0,
        mode: m.mode,
        mtime: m.mtime,
        linkname: m.linkname,
        offset: m.offset,
      };
      this.streamed.push(rec);
      this.cur = kind === 'file' ? { kind: 'data', rec, hash: createHash('sha256') } : { kind: 'data', rec };
      return;
    }
    this.structural.push({ path: pathFields(m.name).path, reason: 'unexpected member outside data/' });
    this.cur = { kind: 'skip' };
  }

  data(chunk: Buffer): void {
    const c = this.cur;
    if (c.kind === 'data') {
      c.rec!.read += chunk.length;
      c.hash?.update(chunk);
    } else if (c.collect) {
      const col = c.collect;
      if (!col.tooLarge) col.chunks.push(Buffer.from(chunk)); // a copy: block buffers may be reused by the source
      col.size += chunk.length;
    }
  }

  memberEnd(): void {
    const c = this.cur;
    if (c.kind === 'data' && c.hash) c.rec!.sha256 = c.hash.digest('hex');
    else if (c.kind === 'header') this.headerDone = true;
    else if (c.kind === 'trailer') this.trailerDone = true;
    this.cur = { kind: 'skip' };
  }

  problem(offset: number, reason: string): void {
    this.structural.push({ path: `(tar at byte ${offset})`, reason });
  }

  end(): void {
    this.endSeen = true;
  }

  /** At end of input inside a member: the member is truncated. */
  truncated(): void {
    const c = this.cur;
    if (c.kind === 'data') {
      // reported with the entry (read < size)
    } else if (c.kind === 'header') {
      this.structural.push({ path: HEADER_MEMBER, reason: 'truncated' });
    } else if (c.kind === 'trailer') {
      this.structural.push({ path: TRAILER_MEMBER, reason: 'truncated' });
    }
  }
}

const keyOf = (b: Buffer) => b.toString('base64');
const keyOfEntry = (e: { path: string; rawPath?: string }) =>
  e.rawPath !== undefined ? Buffer.from(e.rawPath, 'base64').toString('base64') : Buffer.from(e.path, 'utf8').toString('base64');

/**
 * Re-reads a target's tape file and checks it completely: the header names the expected
 * target, every data member matches the manifest (the header's, or `expected.manifest` when
 * given: type, size, SHA-256 recomputed from the data, link target, mode, mtime), nothing is
 * missing or extra, the trailer is there and agrees, and the archive ends properly.
 */
export async function readTargetFile(
  blocks: AsyncIterable<Buffer>,
  expected: { targetId: string; manifest?: Iterable<ManifestEntry> },
  opts: ReadTargetOptions = {},
): Promise<VerifyReport> {
  const v = new Verifier();
  const parser = new TarParser(v);
  let total = 0;
  let internal: string | null = null;
  for await (const block of blocks) {
    abortCheck(opts.signal);
    total += block.length;
    if (!internal) {
      try {
        parser.push(block);
      } catch (e) {
        internal = `cannot parse further: ${errorMessage(e)}`;
      }
    }
    opts.onProgress?.(total);
  }
  abortCheck(opts.signal);

  const bad = new Map<string, BadEntry>();
  const add = (who: { path: string; rawPath?: string }, reason: string) => {
    const k = `${who.path}\0${who.rawPath ?? ''}`;
    const b = bad.get(k);
    if (b) b.reason += `; ${reason}`;
    else bad.set(k, { path: who.path, reason });
  };
  if (internal) add({ path: '(tar)' }, internal);
  for (const s of v.structural) add(s, s.reason);

  const fin = parser.finish();
  if (total === 0) add({ path: '(tar)' }, 'the tape file is empty');
  else if (fin.state === 'truncated') {
    v.truncated();
    if (!fin.inMember) add({ path: '(tar)' }, `truncated inside a tar header at byte ${fin.offset}`);
  }

  // Header
  let header: TargetHeader | null = null;
  if (v.headerData && v.headerDone) {
    const h = parseJson<TargetHeader>(v.headerData, 'manifest', headerSchema);
    if (typeof h === 'string') add({ path: HEADER_MEMBER }, h);
    else header = h;
  }
  if (header) {
    if (header.target.id !== expected.targetId) {
      add({ path: HEADER_MEMBER }, `names target ${JSON.stringify(header.target.id)}, expected ${JSON.stringify(expected.targetId)}`);
    }
    const sum = summarize(header.manifest);
    if (
      header.entries !== header.manifest.length ||
      header.fileCount !== sum.fileCount ||
      header.totalBytes !== sum.totalBytes ||
      (header.manifestDigest !== undefined && header.manifestDigest !== sum.digest)
    ) {
      add({ path: HEADER_MEMBER }, 'inconsistent: its counts or digest do not match its manifest');
    }
  }

  // Manifest to check against
  let manifest: ManifestEntry[] | null = null;
  if (expected.manifest) {
    manifest = Array.from(expected.manifest);
    if (header && summarize(manifest).digest !== summarize(header.manifest).digest) {
      add({ path: HEADER_MEMBER }, 'its manifest differs from the expected manifest');
    }
  } else if (header) {
    manifest = header.manifest;
  } else {
    add({ path: HEADER_MEMBER }, 'no manifest to check the data against');
  }

  // Data members
  const index = new Map<string, { e: ManifestEntry; seen: boolean }>();
  for (const e of manifest ?? []) index.set(keyOfEntry(e), { e, seen: false });
  const followers = hardLinkFollowers(manifest ?? []);
  const seenNames = new Set<string>();
  let fileCount = 0;
  let dataBytes = 0;
  for (const r of v.streamed) {
    const who = pathFields(r.name);
    const k = keyOf(r.name);
    if (r.kind === 'file') {
      fileCount++;
      dataBytes += r.read;
    }
    if (r.kind === 'file' && r.read < r.size) add(who, `truncated: only ${r.read} of ${r.size} bytes on tape`);
    if (seenNames.has(k)) {
      add(who, 'appears twice in the tape file');
      continue;
    }
    seenNames.add(k);
    if (r.kind === 'other') add(who, `unexpected member type '${r.typeflag}'`);
    if (!manifest) continue;
    const slot = index.get(k);
    if (!slot) {
      add(who, 'not in the manifest');
      continue;
    }
    slot.seen = true;
    const m = slot.e;
    const leaderKey = followers.get(k);
    const expectedKind: Kind = leaderKey !== undefined ? 'hardlink' : m.type;
    if (r.kind !== expectedKind) {
      add(who, `is a ${r.kind} on tape, a ${expectedKind === 'hardlink' ? 'hard link' : expectedKind} in the manifest`);
      continue;
    }
    if (leaderKey !== undefined) {
      const want = Buffer.concat([DATA_PREFIX, Buffer.from(leaderKey, 'base64')]);
      if (!r.linkname.equals(want))
        add(who, `a hard link to ${JSON.stringify(pathFields(r.linkname).path)} on tape, to ${JSON.stringify(pathFields(want).path)} in the manifest`);
      else if (!seenNames.has(leaderKey)) add(who, 'a hard link to a file that is not before it on tape');
    }
    if (m.type === 'file' && leaderKey === undefined) {
      if (r.size !== m.size) add(who, `size ${r.size} on tape, ${m.size} in the manifest`);
      else if (r.read === r.size && r.sha256 !== m.sha256) add(who, `checksum mismatch: SHA-256 read ${r.sha256}, manifest ${m.sha256}`);
    }
    if (m.type === 'symlink' && !r.linkname.equals(linkTargetBytes(m))) {
      add(who, `link target ${JSON.stringify(pathFields(r.linkname).path)} on tape, ${JSON.stringify(m.linkTarget)} in the manifest`);
    }
    if ((m.mode & 0o7777) !== (r.mode & 0o7777)) add(who, `mode ${r.mode.toString(8)} on tape, ${(m.mode & 0o7777).toString(8)} in the manifest`);
    if (Math.floor(m.mtimeMs / 1000) !== Math.floor(r.mtime)) add(who, `mtime ${Math.floor(r.mtime)} on tape, ${Math.floor(m.mtimeMs / 1000)} in the manifest`);
  }
  for (const { e, seen } of index.values()) {
    if (!seen) add(e.rawPath !== undefined ? { path: e.path, rawPath: e.rawPath } : { path: e.path }, 'missing from the tape file');
  }

  // Trailer
  let trailer: Trailer | undefined;
  if (!v.trailerData || !v.trailerDone) {
    add({ path: TRAILER_MEMBER }, 'no trailer: the tape file is incomplete (truncated, or its write was interrupted)');
  } else {
    const t = parseJson<Trailer>(v.trailerData, 'files', trailerSchema);
    if (typeof t === 'string') add({ path: TRAILER_MEMBER }, t);
    else trailer = t;
  }
  if (trailer) {
    if (trailer.targetId !== expected.targetId) {
      add({ path: TRAILER_MEMBER }, `names target ${JSON.stringify(trailer.targetId)}, expected ${JSON.stringify(expected.targetId)}`);
    }
    if (header && trailer.taskId !== header.taskId) add({ path: TRAILER_MEMBER }, `task ${trailer.taskId} differs from the header's ${header.taskId}`);
    if (header && trailer.manifestDigest !== undefined && header.manifestDigest !== undefined && trailer.manifestDigest !== header.manifestDigest) {
      add({ path: TRAILER_MEMBER }, 'its manifest digest differs from the header');
    }
    const tfiles = new Map<string, { size: number; sha256: string; seen: boolean }>();
    let tbytes = 0;
    for (const f of trailer.files) {
      tfiles.set(keyOfEntry(f), { size: f.size, sha256: f.sha256, seen: false });
      tbytes += f.size;
    }
    if (trailer.fileCount !== trailer.files.length || trailer.dataBytes !== tbytes) {
      add({ path: TRAILER_MEMBER }, 'inconsistent: fileCount/dataBytes do not match its file list');
    }
    let fileMismatch = false;
    for (const r of v.streamed) {
      if (r.kind !== 'file') continue;
      const who = pathFields(r.name);
      const t = tfiles.get(keyOf(r.name));
      if (!t) {
        add(who, 'not listed in the trailer');
        fileMismatch = true;
        continue;
      }
      t.seen = true;
      if (r.read < r.size) {
        fileMismatch = true;
        continue;
      }
      if (t.size !== r.size) add(who, `size ${r.size} on tape, ${t.size} in the trailer`);
      else if (t.sha256 !== r.sha256) add(who, `checksum mismatch: SHA-256 read ${r.sha256}, trailer ${t.sha256}`);
      else continue;
      fileMismatch = true;
    }
    for (const f of trailer.files) {
      if (tfiles.get(keyOfEntry(f))!.seen) continue;
      add(f.rawPath !== undefined ? { path: f.path, rawPath: f.rawPath } : { path: f.path }, 'listed in the trailer, not on tape');
      fileMismatch = true;
    }
    if (trailer.digest !== filesDigest(trailer.files)) add({ path: TRAILER_MEMBER }, 'inconsistent: its digest does not match its file list');
    else if (!fileMismatch) {
      // every file matches one by one: the digest also covers their order
      const read = v.streamed.filter((r) => r.kind === 'file').map((r) => ({ ...pathFields(r.name), size: r.read, sha256: r.sha256 ?? '' }));
      if (trailer.digest !== filesDigest(read)) add({ path: TRAILER_MEMBER }, 'its digest does not match the files read back (order differs)');
    }
    if (!v.endSeen && fin.state !== 'truncated') add({ path: '(tar)' }, 'no end-of-archive marker after the trailer');
    if (trailer.root && v.root) {
      if ((v.root.mode & 0o7777) !== (trailer.root.mode & 0o7777))
        add({ path: DATA_DIR }, `mode ${v.root.mode.toString(8)} on tape, ${trailer.root.mode.toString(8)} in the trailer`);
      if (Math.floor(v.root.mtime) !== Math.floor(trailer.root.mtimeMs / 1000))
        add({ path: DATA_DIR }, `mtime ${Math.floor(v.root.mtime)} on tape, ${Math.floor(trailer.root.mtimeMs / 1000)} in the trailer`);
    }
  }
  if (!v.root && v.members > 0) add({ path: DATA_DIR }, 'missing: no data/ directory member');

  const list = [...bad.values()];
  return { ok: list.length === 0, header, ...(trailer ? { trailer } : {}), fileCount, dataBytes, bad: list };
}
