/**
 * The verify of a target's tape file (the confirm step): every checksum recomputed and
 * compared with the trailer and the manifest. A damaged tar never throws: every problem is
 * listed in the report. Errors of the block source (tape I/O) and aborts propagate. The label
 * and header readers are in read-header.ts.
 *
 * One pass, memory bounded for any number of entries when the expected manifest is given (the
 * verify task gives the catalog's, read page by page): header.json and trailer.json are read
 * line by line when large (json-member.ts), every data member is checked as it ends against
 * the manifest read alongside (members are in manifest order), and the trailer's list is
 * checked through its digest. Without an expected manifest the header's is the reference and
 * is held.
 */
import { createHash, hash as hashOnce, type Hash } from 'node:crypto';
import { entriesOf, linkTargetBytes, ManifestSummary, pathBytes, pathFields, pathKey, type ManifestEntry, type ManifestSource } from '../domain/manifest.ts';
import {
  DATA_DIR,
  dataRelativeName,
  HEADER_MEMBER,
  TRAILER_MEMBER,
  headerHeadSchema,
  headerSchema,
  manifestEntrySchema,
  trailerFileSchema,
  trailerHeadSchema,
  trailerSchema,
  type BadEntry,
  type TargetHeader,
  type Trailer,
  type TrailerFile,
  type VerifyReport,
} from './format.ts';
import { memberKind, TarParser, type MemberKind, type TarMember, type TarSink } from '../tar/parse.ts';
import { errorMessage } from '../errors.ts';
import { readAhead } from '../concurrency.ts';
import { abortCheck } from './read-header.ts';
import { JsonMemberReader } from './json-member.ts';
import { NameSet } from './manifest-plan.ts';
import { ManifestCursor } from './manifest-cursor.ts';
import { HashSession } from './hash-worker.ts';

const DATA_PREFIX = Buffer.from(DATA_DIR);
const RECENT = 1024;
const EMPTY_SHA256 = createHash('sha256').digest('hex');
const noop = () => undefined;

/**
 * A SHA-256 over many small strings (a file list's lines), updated in batches: one call into
 * the hash per ~64 KB instead of per line (the digest is the same).
 */
class LineHash {
  private readonly h = createHash('sha256');
  private pending = '';

  update(line: string): void {
    this.pending += line;
    if (this.pending.length >= 65536) {
      this.h.update(this.pending);
      this.pending = '';
    }
  }

  digest(): string {
    this.h.update(this.pending);
    this.pending = '';
    return this.h.digest('hex');
  }
}

/** A data member as read: its header fields, the bytes read and their SHA-256. */
interface Streamed {
  name: Buffer;
  kind: MemberKind;
  typeflag: string;
  size: number;
  read: number;
  mode: number;
  mtime: number;
  linkname: Buffer;
  sha256?: string;
  /** Hashed on the worker thread, digest not back yet. */
  pending?: boolean;
}

export interface ReadTargetOptions {
  /** Called with the bytes read so far (per block). */
  onProgress?: (bytesDone: number) => void;
  signal?: AbortSignal;
  /** The hashing on a second thread (hash-worker.ts; default: a session with its defaults); false: all on this thread. */
  hashWorker?: HashSession | false;
}

/** The tar sink: JSON members read as they come, data members queued as they end. */
class Verifier implements TarSink {
  members = 0;
  header: JsonMemberReader<ManifestEntry> | null = null;
  /** header.json parsed at its end (its head; with its manifest when read whole), or what is wrong. */
  headerResult: Record<string, unknown> | string | null = null;
  trailer: JsonMemberReader<TrailerFile> | null = null;
  trailerResult: Record<string, unknown> | string | null = null;
  get headerDone(): boolean {
    return this.headerResult !== null;
  }
  get trailerDone(): boolean {
    return this.trailerResult !== null;
  }
  /** Data members ended and not checked yet (from `queueHead` on). */
  queue: Streamed[] = [];
  queueHead = 0;
  /** The header's manifest, summarized; held only when `keepHeaderManifest`. */
  readonly headerSummary = new ManifestSummary();
  readonly headerManifest: ManifestEntry[] = [];
  /** The trailer's list: count, bytes, digest. */
  readonly trailerList = { count: 0, bytes: 0, hash: new LineHash() };
  /** The `data/` member (the target's root directory). */
  root: { mode: number; mtime: number } | null = null;
  structural: BadEntry[] = [];
  endSeen = false;
  /** The member being read; a file's hash object is made only when its data comes in several chunks (one chunk: hashed at once). */
  private cur: { kind: 'header' | 'trailer' | 'data' | 'skip'; rec?: Streamed; hash?: Hash; file?: boolean; workerFile?: number } = { kind: 'skip' };

  /** `hashes`: takes files to hash on the worker thread while it keeps up (null: none). */
  constructor(
    private readonly keepHeaderManifest: boolean,
    private readonly hashes: HashSession | null,
  ) {}

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
      this.header = new JsonMemberReader<ManifestEntry>('manifest', m.size, { head: headerHeadSchema, item: manifestEntrySchema }, (e) => {
        this.headerSummary.add(e);
        if (this.keepHeaderManifest) this.headerManifest.push(e);
      });
      this.cur = { kind: 'header' };
      return;
    }
    if (nameStr === TRAILER_MEMBER && m.typeflag === '0') {
      this.trailer = new JsonMemberReader<TrailerFile>('files', m.size, { head: trailerHeadSchema, item: trailerFileSchema }, (f) => {
        const t = this.trailerList;
        t.count++;
        t.bytes += f.size;
        t.hash.update(`${pathKey(f)} ${f.size} ${f.sha256}\n`);
      });
      this.cur = { kind: 'trailer' };
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
      const rec: Streamed = { name: Buffer.from(rel), kind, typeflag: m.typeflag, size: m.size, read: 0, mode: m.mode, mtime: m.mtime, linkname: m.linkname };
      const workerFile = kind === 'file' && m.size > 0 && this.hashes ? this.hashes.take(m.size) : 0;
      this.cur = kind === 'file' ? { kind: 'data', rec, file: true, workerFile } : { kind: 'data', rec };
      return;
    }
    this.structural.push({ path: pathFields(m.name).path, reason: 'unexpected member outside data/' });
    this.cur = { kind: 'skip' };
  }

  data(chunk: Buffer): void {
    const c = this.cur;
    if (c.kind === 'data') {
      const rec = c.rec!;
      if (c.workerFile) this.hashes!.add(c.workerFile, chunk);
      else if (c.file) {
        if (c.hash) c.hash.update(chunk);
        else if (rec.read === 0 && chunk.length === rec.size) rec.sha256 = hashOnce('sha256', chunk, 'hex');
        else {
          c.hash = createHash('sha256').update(chunk);
          rec.sha256 = undefined;
        }
      }
      rec.read += chunk.length;
    } else if (c.kind === 'header') this.header!.push(chunk);
    else if (c.kind === 'trailer') this.trailer!.push(chunk);
  }

  memberEnd(): void {
    const c = this.cur;
    if (c.kind === 'data') {
      const rec = c.rec!;
      if (c.workerFile) {
        rec.pending = true;
        this.hashes!.end(c.workerFile, (sha256) => {
          rec.sha256 = sha256;
          rec.pending = false;
        });
      } else if (c.hash) rec.sha256 = c.hash.digest('hex');
      else if (c.file && rec.read === 0) rec.sha256 = EMPTY_SHA256;
      this.queue.push(rec);
    } else if (c.kind === 'header') this.headerResult = this.header!.end(headerSchema);
    else if (c.kind === 'trailer') this.trailerResult = this.trailer!.end(trailerSchema);
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
    if (c.kind === 'header') this.structural.push({ path: HEADER_MEMBER, reason: 'truncated' });
    else if (c.kind === 'trailer') this.structural.push({ path: TRAILER_MEMBER, reason: 'truncated' });
    else if (c.kind === 'data') this.queue.push(c.rec!); // reported with the entry (read < size)
    this.cur = { kind: 'skip' };
  }
}

type Add = (who: { path: string; rawPath?: string }, reason: string) => void;

const who = (e: { path: string; rawPath?: string }) => (e.rawPath !== undefined ? { path: e.path, rawPath: e.rawPath } : { path: e.path });

/** Checks one data member against its manifest entry. */
function checkMember(r: Streamed, m: ManifestEntry, leaderKey: string | undefined, leaderSeen: boolean, add: Add): void {
  const w = pathFields(r.name);
  const expectedKind: MemberKind = leaderKey !== undefined ? 'hardlink' : m.type;
  if (r.kind !== expectedKind) {
    add(w, `is a ${r.kind} on tape, a ${expectedKind === 'hardlink' ? 'hard link' : expectedKind} in the manifest`);
    return;
  }
  if (leaderKey !== undefined) {
    const want = Buffer.concat([DATA_PREFIX, Buffer.from(leaderKey, 'base64')]);
    if (!r.linkname.equals(want))
      add(w, `a hard link to ${JSON.stringify(pathFields(r.linkname).path)} on tape, to ${JSON.stringify(pathFields(want).path)} in the manifest`);
    else if (!leaderSeen) add(w, 'a hard link to a file that is not before it on tape');
  }
  if (m.type === 'file' && leaderKey === undefined) {
    if (r.size !== m.size) add(w, `size ${r.size} on tape, ${m.size} in the manifest`);
    else if (r.read === r.size && r.sha256 !== m.sha256) add(w, `checksum mismatch: SHA-256 read ${r.sha256}, manifest ${m.sha256}`);
  }
  if (m.type === 'symlink' && !r.linkname.equals(linkTargetBytes(m))) {
    add(w, `link target ${JSON.stringify(pathFields(r.linkname).path)} on tape, ${JSON.stringify(m.linkTarget)} in the manifest`);
  }
  if ((m.mode & 0o7777) !== (r.mode & 0o7777)) add(w, `mode ${r.mode.toString(8)} on tape, ${(m.mode & 0o7777).toString(8)} in the manifest`);
  if (Math.floor(m.mtimeMs / 1000) !== Math.floor(r.mtime)) add(w, `mtime ${Math.floor(r.mtime)} on tape, ${Math.floor(m.mtimeMs / 1000)} in the manifest`);
}

/**
 * Re-reads a target's tape file and checks it completely: the header names the expected
 * target, every data member matches the manifest (the header's, or `expected.manifest` when
 * given: type, size, SHA-256 recomputed from the data, link target, mode, mtime), nothing is
 * missing or extra, the trailer is there and agrees, and the archive ends properly.
 */
export async function readTargetFile(
  blocks: AsyncIterable<Buffer>,
  expected: { targetId: string; manifest?: ManifestSource },
  opts: ReadTargetOptions = {},
): Promise<VerifyReport> {
  const hashes = opts.hashWorker === false ? null : (opts.hashWorker ?? new HashSession());
  hashes?.begin();
  try {
    return await verifyTargetFile(blocks, expected, opts, hashes);
  } finally {
    hashes?.close();
  }
}

async function verifyTargetFile(
  blocks: AsyncIterable<Buffer>,
  expected: { targetId: string; manifest?: ManifestSource },
  opts: ReadTargetOptions,
  hashes: HashSession | null,
): Promise<VerifyReport> {
  const bad = new Map<string, BadEntry>();
  const add: Add = (w, reason) => {
    const k = `${w.path}\0${w.rawPath ?? ''}`;
    const b = bad.get(k);
    if (b) b.reason += `; ${reason}`;
    else bad.set(k, { path: w.path, reason });
  };

  // The expected manifest, summarized first (one read; its names as hashes, 8 bytes each).
  let expectedSummary: ReturnType<ManifestSummary['result']> | undefined;
  let names: NameSet | undefined;
  if (expected.manifest) {
    const s = new ManifestSummary();
    names = new NameSet();
    for await (const e of entriesOf(expected.manifest)) {
      s.add(e);
      names.add(pathBytes(e));
    }
    names.seal();
    expectedSummary = s.result();
  }

  const v = new Verifier(!expected.manifest, hashes);
  const parser = new TarParser(v);
  let cursor: ManifestCursor | null | undefined; // undefined: not decided yet; null: nothing to check against
  const recent = new Set<string>();
  /** Without an expected manifest the header's is held anyway: every name read, for "appears twice". */
  const seen = names ? undefined : new Set<string>();
  let fileCount = 0;
  let dataBytes = 0;
  const readFiles = new LineHash();

  // Checks the data members in tape order, up to the first whose digest is still on the worker.
  const drain = async () => {
    const q = v.queue;
    while (v.queueHead < q.length && !q[v.queueHead]!.pending) await check(q[v.queueHead++]!);
    if (v.queueHead > 1024 && v.queueHead * 2 > q.length) {
      q.splice(0, v.queueHead);
      v.queueHead = 0;
    }
  };
  const check = async (r: Streamed) => {
    const w = pathFields(r.name);
    const k = r.name.toString('base64');
    if (r.kind === 'file') {
      fileCount++;
      dataBytes += r.read;
      readFiles.update(`${k} ${r.read} ${r.sha256 ?? ''}\n`);
    }
    if (r.kind === 'file' && r.read < r.size) add(w, `truncated: only ${r.read} of ${r.size} bytes on tape`);
    if (r.kind === 'other') add(w, `unexpected member type '${r.typeflag}'`);
    if (cursor === undefined) {
      const reference = expected.manifest ? entriesOf(expected.manifest) : v.headerDone && v.header ? v.headerManifest : null;
      cursor = reference ? new ManifestCursor(reference, (e) => add(who(e), 'missing from the tape file')) : null;
    }
    const twice = seen?.has(k);
    seen?.add(k);
    if (!cursor) return;
    const slot = await cursor.take(k);
    if (!slot) {
      if (recent.has(k) || twice) add(w, 'appears twice in the tape file');
      else if (names?.has(r.name)) add(w, 'out of manifest order in the tape file');
      else add(w, 'not in the manifest');
      return;
    }
    recent.add(k);
    if (recent.size > RECENT) recent.delete(recent.values().next().value!);
    const leader = slot.e.linkGroup !== undefined ? cursor.leaders.get(slot.e.linkGroup) : undefined;
    checkMember(r, slot.e, slot.leaderKey, !!leader?.done, add);
    if (leader && slot.leaderKey === undefined && leader.key === k) leader.done = true;
  };

  let total = 0;
  let internal: string | null = null;
  // A source that takes blocks back (the virtual drive) gets each once it is parsed and
  // checked: nothing keeps a view of a block past that (the parser and the JSON members copy).
  const give = (blocks as { recycle?: unknown }).recycle;
  const recycle = typeof give === 'function' ? (block: Buffer) => (give as (b: Buffer) => void).call(blocks, block) : undefined;
  // The next blocks are read from tape while this one is hashed and checked.
  for await (const block of readAhead(blocks, 8)) {
    abortCheck(opts.signal);
    total += block.length;
    // Not too many blocks held for the worker (it hashes views of them in place).
    const room = hashes?.room();
    if (room) await room;
    if (!internal) {
      try {
        parser.push(block);
      } catch (e) {
        internal = `cannot parse further: ${errorMessage(e)}`;
      }
      // Without an expected manifest the header's is the reference: wait until it is read.
      if (expected.manifest || v.headerDone || !v.header) await drain();
    }
    if (hashes) hashes.release(block.length, recycle ? () => recycle(block) : noop);
    else recycle?.(block);
    opts.onProgress?.(total);
  }
  abortCheck(opts.signal);

  if (internal) add({ path: '(tar)' }, internal);
  const fin = parser.finish();
  if (fin.state === 'truncated') v.truncated();
  for (const s of v.structural) add(s, s.reason);
  if (total === 0) add({ path: '(tar)' }, 'the tape file is empty');
  else if (fin.state === 'truncated' && !fin.inMember) add({ path: '(tar)' }, `truncated inside a tar header at byte ${fin.offset}`);

  // Header (read by now: it is the first member)
  let header: TargetHeader | null = null;
  const h = v.headerResult;
  if (typeof h === 'string') add({ path: HEADER_MEMBER }, h);
  else if (h) header = h as unknown as TargetHeader;
  if (header) {
    if (header.target.id !== expected.targetId) {
      add({ path: HEADER_MEMBER }, `names target ${JSON.stringify(header.target.id)}, expected ${JSON.stringify(expected.targetId)}`);
    }
    const sum = v.headerSummary.result();
    if (
      header.entries !== v.headerSummary.entries ||
      header.fileCount !== sum.fileCount ||
      header.totalBytes !== sum.totalBytes ||
      (header.manifestDigest !== undefined && header.manifestDigest !== sum.digest)
    ) {
      add({ path: HEADER_MEMBER }, 'inconsistent: its counts or digest do not match its manifest');
    }
    if (expectedSummary && expectedSummary.digest !== sum.digest) add({ path: HEADER_MEMBER }, 'its manifest differs from the expected manifest');
  } else if (!expected.manifest) {
    add({ path: HEADER_MEMBER }, 'no manifest to check the data against');
  }
  // Data members left in the queue (their digests all back), then the manifest entries no member matched.
  await hashes?.settle();
  await drain();
  if (cursor === undefined && (expected.manifest || header)) {
    cursor = new ManifestCursor(expected.manifest ? entriesOf(expected.manifest) : v.headerManifest, (e) => add(who(e), 'missing from the tape file'));
  }
  if (cursor) await cursor.rest();

  // Trailer (a file already named above explains a list that does not match the files read)
  const explained = bad.size > 0;
  let trailer: (Omit<Trailer, 'files'> & { files?: TrailerFile[] }) | undefined;
  const t = v.trailerResult;
  if (t === null) add({ path: TRAILER_MEMBER }, 'no trailer: the tape file is incomplete (truncated, or its write was interrupted)');
  else if (typeof t === 'string') add({ path: TRAILER_MEMBER }, t);
  else trailer = t as unknown as Trailer;
  if (trailer) {
    if (trailer.targetId !== expected.targetId) {
      add({ path: TRAILER_MEMBER }, `names target ${JSON.stringify(trailer.targetId)}, expected ${JSON.stringify(expected.targetId)}`);
    }
    if (header && trailer.taskId !== header.taskId) add({ path: TRAILER_MEMBER }, `task ${trailer.taskId} differs from the header's ${header.taskId}`);
    if (header && trailer.manifestDigest !== undefined && header.manifestDigest !== undefined && trailer.manifestDigest !== header.manifestDigest) {
      add({ path: TRAILER_MEMBER }, 'its manifest digest differs from the header');
    }
    const list = v.trailerList;
    if (trailer.fileCount !== list.count || trailer.dataBytes !== list.bytes) {
      add({ path: TRAILER_MEMBER }, 'inconsistent: fileCount/dataBytes do not match its file list');
    }
    if (trailer.digest !== list.hash.digest()) add({ path: TRAILER_MEMBER }, 'inconsistent: its digest does not match its file list');
    else if (trailer.digest !== readFiles.digest() && !explained) {
      // The digest covers every file's name, size and SHA-256 in order.
      add({ path: TRAILER_MEMBER }, `its file list does not match the files read back (${list.count} listed, ${fileCount} on tape)`);
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

  const all = [...bad.values()];
  return { ok: all.length === 0, header, ...(trailer ? { trailer } : {}), fileCount, dataBytes, bad: all };
}
