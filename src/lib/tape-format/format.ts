/**
 * The on-tape format "tape-archive/1": types, errors and the JSON members (label, header,
 * trailer). See docs/tape-format.md for the layout and the version rule.
 */
import { createHash } from 'node:crypto';
import { z } from 'zod';
import { ArchiveError } from '../errors.ts';
import type { EntryType, ManifestEntry, ManifestSource } from '../domain/manifest.ts';

/** Format identifier written in every label, header and trailer. */
export const FORMAT = 'tape-archive/1';
/** Major version this code reads and writes. Readers reject other majors. */
export const FORMAT_MAJOR = 1;

export const LABEL_MEMBER = 'TAPE-LABEL.json';
export const HEADER_MEMBER = 'header.json';
export const TRAILER_MEMBER = 'trailer.json';
/** Data members live under this directory in the tar. */
export const DATA_DIR = 'data/';
const DATA_PREFIX = Buffer.from(DATA_DIR);

/** A member name under data/ -> the name relative to the target root (trailing slashes off; empty: the root); else undefined. */
export function dataRelativeName(name: Buffer): Buffer | undefined {
  if (name.length < DATA_PREFIX.length || !name.subarray(0, DATA_PREFIX.length).equals(DATA_PREFIX)) return undefined;
  let rel = name.subarray(DATA_PREFIX.length);
  while (rel.length && rel[rel.length - 1] === 0x2f) rel = rel.subarray(0, rel.length - 1);
  return rel;
}

export interface TapeLabel {
  format: string;
  tapeName: string;
  barcode: string;
  /** ISO 8601. */
  createdAt: string;
  /** Tape block size in bytes (256 KiB by default). */
  blockSize: number;
  /** The tape's pool and capacity as the catalog had them (optional, added in release 0.6): a catalog rebuilt from tapes alone gets them back. */
  pool?: string;
  capacityBytes?: number;
}

export interface TargetRef {
  id: string;
  host: string;
  path: string;
}

export interface TargetHeader {
  format: string;
  tapeName: string;
  fileNumber: number;
  taskId: string;
  target: TargetRef;
  scanId: string;
  /** The pool of the tape, i.e. which of the target's copies this file is (optional: added in release 0.4, absent before). */
  pool?: string;
  /** The target's copy policy when the file was written (optional, added in release 0.6): the pools a rebuilt catalog requires. */
  copies?: string[];
  /** ISO 8601, when the tape file was started. */
  writtenAt: string;
  /** Number of manifest entries (files, dirs and symlinks). */
  entries: number;
  /** Number of regular files in the manifest. */
  fileCount: number;
  /** Sum of the sizes of the regular files in the manifest. */
  totalBytes: number;
  /** `summarize(manifest).digest` (domain/manifest.ts). */
  manifestDigest?: string;
  /**
   * Entries of the target that are not in this tape file by policy (fifos, sockets, device
   * nodes), as the scan reported them; `skippedCount` is the full number when the list is cut.
   * Optional (added in tape-archive/1; absent when nothing was skipped).
   */
  skipped?: BadEntry[];
  skippedCount?: number;
  /**
   * The entries as scanned; the data members must match them exactly. Read back from tape it
   * is absent when header.json is too large to hold (a verify then streams it).
   */
  manifest?: ManifestEntry[];
}

/** What a caller gives `writeTargetFile`: the derived fields are computed from the manifest, which is read as often as needed. */
export type TargetHeaderInit = Omit<TargetHeader, 'format' | 'entries' | 'fileCount' | 'totalBytes' | 'manifestDigest' | 'manifest'> &
  Partial<Pick<TargetHeader, 'format' | 'entries' | 'fileCount' | 'totalBytes' | 'manifestDigest'>> & { manifest: ManifestSource };

export interface TrailerFile {
  path: string;
  rawPath?: string;
  size: number;
  sha256: string;
}

/** Metadata of the target's root directory (the `data/` member), as it was when streamed. */
export interface RootMeta {
  mode: number;
  mtimeMs: number;
}

export interface Trailer {
  format: string;
  targetId: string;
  taskId: string;
  /** Regular files streamed. */
  fileCount: number;
  /** Content bytes of the regular files streamed (not counting tar headers). */
  dataBytes: number;
  manifestDigest?: string;
  /** `filesDigest(files)`: one SHA-256 fingerprint of the data as written. */
  digest: string;
  complete: true;
  /** The root directory's mode and mtime, also in the `data/` member (optional: older files lack it). */
  root?: RootMeta;
  /** Regular files in the order they were streamed, with the SHA-256 computed while streaming. */
  files: TrailerFile[];
}

/**
 * One problem with one entry, or with the tape file as a whole (path "header.json",
 * "trailer.json", "(tar)" or "(tar at byte N)"). `path` is the entry's manifest `path`: for a
 * name that is not valid UTF-8, the same Latin-1 stand-in the manifest uses.
 */
export interface BadEntry {
  path: string;
  reason: string;
}

/** Fields a data source reports for an entry (a subset of ManifestEntry). */
export interface SourceEntryFields {
  path: string;
  rawPath?: string;
  type: EntryType;
  size: number;
  mode?: number;
  mtimeMs?: number;
  linkTarget?: string;
  rawLinkTarget?: string;
  /** Regular files: "device:inode" when the source knows it (hard links are checked with it). */
  inode?: string;
  /** A hard link reported by the source (a tar typeflag 1): pathKey of the name it links to. */
  hardLinkOf?: string;
  /** The target's root directory (path ""), yielded first by sources that know its metadata. */
  root?: true;
}

export interface SourceEntry {
  entry: SourceEntryFields;
  /**
   * Regular files only: the content, in chunks. The writer hashes and copies each chunk
   * before it asks for the next one, so a producer may reuse a chunk's memory from then on.
   */
  content?: AsyncIterable<Buffer> | Iterable<Buffer> | NodeJS.ReadableStream;
}

export interface VerifyReport {
  /** True only when every check passed: header, every member, trailer, end of archive. */
  ok: boolean;
  /** The header as read, or null when header.json is missing or unreadable. */
  header: TargetHeader | null;
  /** The trailer as read; without its file list when trailer.json was too large to hold. */
  trailer?: Omit<Trailer, 'files'> & { files?: TrailerFile[] };
  /** Regular files read. */
  fileCount: number;
  /** Content bytes of the regular files read. */
  dataBytes: number;
  /** Every problem found, one entry per path (reasons joined with "; "). */
  bad: BadEntry[];
}

// ---------------------------------------------------------------------------------------------
// Errors

/**
 * The source does not match the manifest: files changed, appeared or disappeared since the
 * scan, or a file changed while it was being read. The tape file must be discarded (it has no
 * trailer, so it is incomplete by definition); scan again and retry.
 */
export class SourceChangedError extends ArchiveError {
  override readonly name = 'SourceChangedError';
  readonly code = 'SOURCE_CHANGED';
  readonly status = 409;
  /** Every difference found, in source order then manifest order (not just the first). */
  readonly changes: BadEntry[];
  /** Every difference counted (`changes` may hold only the first ones). */
  readonly changeCount: number;
  constructor(changes: BadEntry[], changeCount = changes.length) {
    const shown = 10;
    super(
      `the source changed since the scan (${changeCount} ${changeCount === 1 ? 'entry' : 'entries'}): ` +
        changes
          .slice(0, shown)
          .map((p) => `${JSON.stringify(p.path)}: ${p.reason}`)
          .join('; ') +
        (changeCount > shown ? `; and ${changeCount - shown} more` : '') +
        '. Discard this tape file, scan the target again and retry.',
      { changeCount },
    );
    this.changes = changes;
    this.changeCount = changeCount;
  }
}

/** Tape file 0 is not a tape-archive label (blank, foreign or damaged tape). */
export class NotALabelError extends ArchiveError {
  override readonly name = 'NotALabelError';
  readonly code = 'TAPE_NOT_LABELLED';
  readonly status = 409;
}

/**
 * Input that is not in the format: an invalid manifest or header given to the writer (a bug
 * in the caller), or a tape file that does not begin with a valid header.json.
 */
export class TapeFormatError extends ArchiveError {
  override readonly name = 'TapeFormatError';
  readonly code = 'TAPE_FORMAT';
  readonly status = 400;
}

/**
 * Fingerprint of a trailer's file list: SHA-256 (hex) over one line per file, in order:
 * "<base64 of the name bytes> <size> <sha256>\n".
 */
export function filesDigest(files: Iterable<Pick<TrailerFile, 'path' | 'rawPath' | 'size' | 'sha256'>>): string {
  const h = createHash('sha256');
  for (const f of files) {
    const key = f.rawPath !== undefined ? Buffer.from(f.rawPath, 'base64') : Buffer.from(f.path, 'utf8');
    h.update(`${key.toString('base64')} ${f.size} ${f.sha256}\n`);
  }
  return h.digest('hex');
}

/** "tape-archive/1" -> 1; null when it is not a tape-archive format string. */
export function formatMajor(format: unknown): number | null {
  if (typeof format !== 'string') return null;
  const m = /^tape-archive\/(\d+)(?:\.\d+)*$/.exec(format);
  return m ? Number(m[1]) : null;
}

// ---------------------------------------------------------------------------------------------
// JSON members. Human-readable: top-level fields one per line, then the big list (manifest or
// files) last, one entry per line, so header.json/trailer.json of a million files can be read
// with `less` and parsed line by line when too large for one JSON.parse.

/** Field order of a manifest entry on tape. */
export function manifestEntryJson(e: ManifestEntry): ManifestEntry {
  const o: ManifestEntry = { path: e.path } as ManifestEntry;
  if (e.rawPath !== undefined) o.rawPath = e.rawPath;
  o.type = e.type;
  o.size = e.size;
  o.mtimeMs = e.mtimeMs;
  o.mode = e.mode;
  if (e.sha256 !== undefined) o.sha256 = e.sha256;
  if (e.linkTarget !== undefined) o.linkTarget = e.linkTarget;
  if (e.rawLinkTarget !== undefined) o.rawLinkTarget = e.rawLinkTarget;
  if (e.linkGroup !== undefined) o.linkGroup = e.linkGroup;
  if (e.uid !== undefined) o.uid = e.uid;
  if (e.gid !== undefined) o.gid = e.gid;
  return o;
}

const LIST_CHUNK = 1024 * 1024;

/** What `encodeJsonWithList` writes before the first item: the head's fields, then `"listKey": [`. */
function jsonListOpening(head: Record<string, unknown>, listKey: string): string {
  const top = JSON.stringify(head, null, 2);
  return (top === '{}' ? '{\n' : top.slice(0, -2) + ',\n') + `  ${JSON.stringify(listKey)}: [`;
}
const ITEM_FIRST = '\n    ';
const ITEM_NEXT = ',\n    ';
const closing = (empty: boolean) => (empty ? ']\n}\n' : '\n  ]\n}\n');

/**
 * Encodes `{...head, [listKey]: list}` as chunks of UTF-8. The list comes last, one item per
 * line, indented four spaces.
 */
export function encodeJsonWithList(head: Record<string, unknown>, listKey: string, list: Iterable<unknown>): Buffer[] {
  const chunks: Buffer[] = [];
  let pending = jsonListOpening(head, listKey);
  let first = true;
  for (const item of list) {
    pending += (first ? ITEM_FIRST : ITEM_NEXT) + JSON.stringify(item);
    first = false;
    if (pending.length >= LIST_CHUNK) {
      chunks.push(Buffer.from(pending, 'utf8'));
      pending = '';
    }
  }
  pending += closing(first);
  chunks.push(Buffer.from(pending, 'utf8'));
  return chunks;
}

/** The same bytes as `encodeJsonWithList`, from a list read as it is encoded. */
export async function* streamJsonWithList(
  head: Record<string, unknown>,
  listKey: string,
  list: AsyncIterable<unknown> | Iterable<unknown>,
): AsyncGenerator<Buffer> {
  let pending = jsonListOpening(head, listKey);
  let first = true;
  for await (const item of list) {
    pending += (first ? ITEM_FIRST : ITEM_NEXT) + JSON.stringify(item);
    first = false;
    if (pending.length >= LIST_CHUNK) {
      yield Buffer.from(pending, 'utf8');
      pending = '';
    }
  }
  yield Buffer.from(pending + closing(first), 'utf8');
}

/**
 * The byte size of `encodeJsonWithList(head, listKey, list)` from the list's length and the
 * sum of its items' JSON bytes (`jsonBytes`): a tar header needs the size before the data.
 */
export function jsonWithListSize(head: Record<string, unknown>, listKey: string, count: number, itemBytes: number): number {
  const items = count ? ITEM_FIRST.length + ITEM_NEXT.length * (count - 1) + itemBytes : 0;
  return Buffer.byteLength(jsonListOpening(head, listKey)) + items + closing(count === 0).length;
}

/** UTF-8 bytes of an item's JSON, as `encodeJsonWithList` writes it. */
export const jsonBytes = (item: unknown): number => Buffer.byteLength(JSON.stringify(item));

/** Above this size a JSON member is parsed line by line (V8 strings stop at ~512 MB). */
export const WHOLE_PARSE_LIMIT = 64 * 1024 * 1024;

/**
 * Parses a JSON member written by `encodeJsonWithList` (or any JSON when small enough).
 * Throws a SyntaxError/Error on malformed input.
 */
export function decodeJsonMember(data: Buffer, listKey: string, wholeLimit = WHOLE_PARSE_LIMIT): Record<string, unknown> {
  if (data.length <= wholeLimit) {
    const v: unknown = JSON.parse(data.toString('utf8'));
    if (!v || typeof v !== 'object' || Array.isArray(v)) throw new Error('not a JSON object');
    return v as Record<string, unknown>;
  }
  const empty = Buffer.from(`\n  ${JSON.stringify(listKey)}: []\n}`);
  const emptyAt = data.indexOf(empty);
  if (emptyAt >= 0 && data.toString('utf8', emptyAt + empty.length).trim() === '') {
    const head = JSON.parse(data.toString('utf8', 0, emptyAt).replace(/,\s*$/, '') + '\n}') as Record<string, unknown>;
    head[listKey] = [];
    return head;
  }
  const marker = Buffer.from(`\n  ${JSON.stringify(listKey)}: [\n`);
  const at = data.indexOf(marker);
  if (at < 0) throw new Error(`too large to parse whole and not in the line layout (no "${listKey}" list line)`);
  const head = JSON.parse(data.toString('utf8', 0, at).replace(/,\s*$/, '') + '\n}') as Record<string, unknown>;
  const list: unknown[] = [];
  let pos = at + marker.length;
  for (;;) {
    const nl = data.indexOf(0x0a, pos);
    if (nl < 0) throw new Error(`unterminated "${listKey}" list`);
    let line = data.toString('utf8', pos, nl);
    pos = nl + 1;
    if (line === '  ]') break;
    line = line.trim();
    if (line.endsWith(',')) line = line.slice(0, -1);
    list.push(JSON.parse(line));
  }
  const rest = data.toString('utf8', pos).trim();
  if (rest !== '}') throw new Error(`unexpected text after the "${listKey}" list`);
  head[listKey] = list;
  return head;
}

// ---------------------------------------------------------------------------------------------
// Validation of JSON read back from tape. Objects are loose: a reader of major version 1
// accepts fields it does not know (additive changes keep the major version).

export const manifestEntrySchema = z.looseObject({
  path: z.string(),
  rawPath: z.string().optional(),
  type: z.enum(['file', 'dir', 'symlink']),
  size: z.number().int().nonnegative(),
  mtimeMs: z.number(),
  mode: z.number().int().nonnegative(),
  sha256: z.string().optional(),
  linkTarget: z.string().optional(),
  rawLinkTarget: z.string().optional(),
  linkGroup: z.number().int().positive().optional(),
});

const formatSchema = z.string().refine((f) => formatMajor(f) === FORMAT_MAJOR, {
  message: `unsupported format (this reader understands ${FORMAT})`,
});

export const labelSchema = z.looseObject({
  format: formatSchema,
  tapeName: z.string(),
  barcode: z.string(),
  createdAt: z.string(),
  blockSize: z.number().int().positive(),
  pool: z.string().optional(),
  capacityBytes: z.number().int().positive().optional(),
});

export const headerSchema = z.looseObject({
  format: formatSchema,
  tapeName: z.string(),
  fileNumber: z.number().int().nonnegative(),
  taskId: z.string(),
  target: z.looseObject({ id: z.string(), host: z.string(), path: z.string() }),
  scanId: z.string(),
  pool: z.string().optional(),
  copies: z.array(z.string()).optional(),
  writtenAt: z.string(),
  entries: z.number().int().nonnegative(),
  fileCount: z.number().int().nonnegative(),
  totalBytes: z.number().int().nonnegative(),
  manifestDigest: z.string().optional(),
  manifest: z.array(manifestEntrySchema),
});

export const trailerSchema = z.looseObject({
  format: formatSchema,
  targetId: z.string(),
  taskId: z.string(),
  fileCount: z.number().int().nonnegative(),
  dataBytes: z.number().int().nonnegative(),
  manifestDigest: z.string().optional(),
  digest: z.string(),
  complete: z.literal(true),
  root: z.looseObject({ mode: z.number().int().nonnegative(), mtimeMs: z.number() }).optional(),
  files: z.array(z.looseObject({ path: z.string(), rawPath: z.string().optional(), size: z.number().int().nonnegative(), sha256: z.string() })),
});
export const trailerFileSchema = trailerSchema.shape.files.element;
/** header.json and trailer.json without their lists (read line by line when large: json-member.ts). */
export const headerHeadSchema = headerSchema.omit({ manifest: true });
export const trailerHeadSchema = trailerSchema.omit({ files: true });

export { firstIssue } from '../validation.ts';
