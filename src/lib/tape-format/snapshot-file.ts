/**
 * A catalog snapshot as a tape file (docs/tape-format.md, "Catalog snapshot files"): a tar of
 * three members, `header.json` (kind "catalog-snapshot"), `catalog.jsonl.gz` (exactly the
 * file `snapshot_catalog --to` writes) and `trailer.json` (its size and SHA-256). Written when
 * a tape is closed; read back by `restore_catalog --tape`. GNU tar extracts it:
 * `tar -xf FILE catalog.jsonl.gz && gzip -dc catalog.jsonl.gz | jq -c .`.
 */
import { createHash } from 'node:crypto';
import { createReadStream, createWriteStream, type WriteStream } from 'node:fs';
import { once } from 'node:events';
import { z } from 'zod';
import { END_OF_ARCHIVE, encodeHeader, encodeSmallMember, padding } from '../tar/encode.ts';
import { TarParser } from '../tar/parse.ts';
import { FORMAT, HEADER_MEMBER, TapeFormatError, TRAILER_MEMBER } from './format.ts';
import { TarOutput, type ChunkWriter } from './output.ts';

export const SNAPSHOT_KIND = 'catalog-snapshot';
export const SNAPSHOT_MEMBER = 'catalog.jsonl.gz';

export const snapshotHeaderSchema = z.looseObject({
  format: z.string(),
  kind: z.literal(SNAPSHOT_KIND),
  tapeName: z.string(),
  fileNumber: z.number().int(),
  taskId: z.string(),
  writtenAt: z.string(),
  snapshotFormat: z.string(),
});
export const snapshotTrailerSchema = z.looseObject({
  format: z.string(),
  kind: z.literal(SNAPSHOT_KIND),
  complete: z.literal(true),
  bytes: z.number().int(),
  sha256: z.string(),
  items: z.object({ catalog: z.number().int(), manifests: z.number().int() }),
});
export type SnapshotHeader = z.infer<typeof snapshotHeaderSchema>;
export type SnapshotTrailer = z.infer<typeof snapshotTrailerSchema>;

/** Whether a tape file's header.json (parsed) is a catalog snapshot's. */
export const isSnapshotHeader = (json: unknown): json is SnapshotHeader => snapshotHeaderSchema.safeParse(json).success;

const json = (v: unknown) => Buffer.from(`${JSON.stringify(v, null, 2)}\n`);
const seconds = (iso: string) => Math.floor(Date.parse(iso) / 1000);

/** Writes the snapshot tape file from `file` (a snapshot_catalog file); returns its trailer. Does not close the writer. */
export async function writeSnapshotFile(
  writer: ChunkWriter,
  header: { tapeName: string; fileNumber: number; taskId: string; writtenAt: string; snapshotFormat: string },
  file: { path: string; bytes: number; items: SnapshotTrailer['items'] },
): Promise<SnapshotTrailer> {
  const out = new TarOutput(writer);
  const mtime = seconds(header.writtenAt);
  await out.put(encodeSmallMember(HEADER_MEMBER, json({ format: FORMAT, kind: SNAPSHOT_KIND, ...header }), mtime));
  await out.put(encodeHeader({ name: Buffer.from(SNAPSHOT_MEMBER), type: 'file', mode: 0o644, mtime, size: file.bytes }));
  const h = createHash('sha256');
  let bytes = 0;
  for await (const chunk of createReadStream(file.path) as AsyncIterable<Buffer>) {
    h.update(chunk);
    bytes += chunk.length;
    if (bytes > file.bytes) break;
    await out.put(chunk);
  }
  if (bytes !== file.bytes) throw new TapeFormatError(`the snapshot file ${file.path} changed while it was written (${bytes} bytes, expected ${file.bytes}).`);
  await out.zeros(padding(file.bytes));
  const trailer: SnapshotTrailer = { format: FORMAT, kind: SNAPSHOT_KIND, complete: true, bytes, sha256: h.digest('hex'), items: file.items };
  await out.put(encodeSmallMember(TRAILER_MEMBER, json(trailer), mtime));
  await out.put(END_OF_ARCHIVE);
  await out.flush();
  return trailer;
}

/**
 * Reads a snapshot tape file: its header, the snapshot into `toFile` (created, never
 * overwritten), and its trailer, checking the member's size and SHA-256 against the trailer.
 * Throws TapeFormatError when the file is not a complete catalog snapshot.
 */
export async function readSnapshotFile(blocks: AsyncIterable<Buffer>, toFile: string): Promise<{ header: SnapshotHeader; trailer: SnapshotTrailer }> {
  let member = '';
  let small: Buffer[] = [];
  let header: SnapshotHeader | undefined;
  let trailer: SnapshotTrailer | undefined;
  const problems: string[] = [];
  const h = createHash('sha256');
  let bytes = 0;
  const out: WriteStream = createWriteStream(toFile, { flags: 'wx' });
  let writeError: unknown;
  out.on('error', (e) => {
    writeError ??= e;
  });
  const pending: Buffer[] = [];
  let notSnapshot = false;
  const parser = new TarParser({
    member: (m) => {
      member = m.name.toString('utf8');
      small = [];
      // A target file's header.json holds its manifest: far larger than a snapshot's header.
      if (!header && (member !== HEADER_MEMBER || m.size > 64 * 1024)) {
        notSnapshot = true;
        problems.push(`its first member is ${member} of ${m.size} bytes, not a snapshot header`);
      }
    },
    data: (chunk) => {
      if (member === SNAPSHOT_MEMBER) {
        const copy = Buffer.from(chunk);
        h.update(copy);
        bytes += copy.length;
        pending.push(copy);
      } else if (!notSnapshot && (member === HEADER_MEMBER || member === TRAILER_MEMBER)) small.push(Buffer.from(chunk));
    },
    memberEnd: () => {
      const text = Buffer.concat(small).toString('utf8');
      if (member === HEADER_MEMBER && !header) {
        header = parseOr(snapshotHeaderSchema, text, problems, 'its header.json is not a catalog snapshot header');
        notSnapshot = !header;
      }
      if (member === TRAILER_MEMBER) trailer = parseOr(snapshotTrailerSchema, text, problems, 'trailer.json is not a catalog snapshot trailer');
    },
    problem: (offset, reason) => problems.push(`damaged tar header at ${offset}: ${reason}`),
    end: () => undefined,
  });
  try {
    for await (const block of blocks) {
      parser.push(block);
      if (writeError) throw writeError;
      for (const b of pending.splice(0)) if (!out.write(b)) await Promise.race([once(out, 'drain'), once(out, 'close')]);
      if (notSnapshot) break; // not a snapshot file: stop reading
    }
    if (!notSnapshot) {
      const finish = parser.finish();
      if (finish.state !== 'end') problems.push(`the tape file ends early (${finish.state})`);
    }
  } finally {
    if (!out.closed) {
      out.end();
      await once(out, 'close').catch(() => undefined);
    }
  }
  if (writeError) throw writeError;
  const digest = h.digest('hex');
  if (!header) throw new TapeFormatError(`not a catalog snapshot file: ${problems[0] ?? 'its first member is not a snapshot header.json'}.`);
  if (!trailer) throw new TapeFormatError(`the catalog snapshot has no trailer (${problems[0] ?? 'an interrupted write'}); use an earlier snapshot.`);
  if (trailer.bytes !== bytes || trailer.sha256 !== digest)
    throw new TapeFormatError(
      `the catalog snapshot read back ${bytes} bytes with SHA-256 ${digest}; its trailer says ${trailer.bytes} bytes, ${trailer.sha256}.`,
    );
  return { header, trailer };
}

function parseOr<T>(schema: z.ZodType<T>, text: string, problems: string[], what: string): T | undefined {
  try {
    const r = schema.safeParse(JSON.parse(text));
    if (r.success) return r.data;
  } catch {
    // reported below
  }
  problems.push(what);
  return undefined;
}
