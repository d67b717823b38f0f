/**
 * The survey of a target's tape file (rebuild_catalog): its header, its manifest entry by entry,
 * its trailer and its length on tape, without hashing the data (the full verify is reader.ts).
 * A file is complete only when its trailer is there and belongs to its header: same target,
 * task and manifest digest, and a file list as long as it says.
 *
 * The manifest is yielded as it is read (a header of millions of entries is never held), so the
 * caller stores it page by page while the tape moves on; the outcome is filled in at the end.
 */
import type { ManifestEntry } from '../domain/manifest.ts';
import { errorMessage } from '../errors.ts';
import { TarParser, type TarMember, type TarSink } from '../tar/parse.ts';
import {
  HEADER_MEMBER,
  TRAILER_MEMBER,
  headerHeadSchema,
  headerSchema,
  manifestEntrySchema,
  trailerFileSchema,
  trailerHeadSchema,
  trailerSchema,
  type TargetHeader,
  type Trailer,
} from './format.ts';
import { JsonMemberReader } from './json-member.ts';
import { abortCheck } from './read-header.ts';

export interface SurveyOutcome {
  header?: Omit<TargetHeader, 'manifest'>;
  trailer?: Omit<Trailer, 'files'>;
  /** Bytes of the tape file as read (whole blocks). */
  tapeBytes: number;
  /** Why the file is not a complete target file (absent when it is). */
  incomplete?: string;
  /** Damage the tar parser met in the data (not checked further: confirm does). */
  damage: string[];
}

class SurveySink implements TarSink {
  members = 0;
  header: JsonMemberReader<ManifestEntry> | null = null;
  headerResult: Record<string, unknown> | string | null = null;
  trailer: JsonMemberReader<unknown> | null = null;
  trailerResult: Record<string, unknown> | string | null = null;
  listed = 0;
  pending: ManifestEntry[] = [];
  damage: string[] = [];
  first: string | null = null;
  private cur: 'header' | 'trailer' | 'skip' = 'skip';

  member(m: TarMember): void {
    this.members++;
    const name = m.name.toString('utf8');
    if (this.members === 1) {
      if (name !== HEADER_MEMBER || m.typeflag !== '0') {
        this.first = name;
        this.cur = 'skip';
        return;
      }
      this.header = new JsonMemberReader<ManifestEntry>('manifest', m.size, { head: headerHeadSchema, item: manifestEntrySchema }, (e) => this.pending.push(e));
      this.cur = 'header';
    } else if (name === TRAILER_MEMBER && m.typeflag === '0' && this.trailerResult === null) {
      this.trailer = new JsonMemberReader('files', m.size, { head: trailerHeadSchema, item: trailerFileSchema }, () => this.listed++);
      this.cur = 'trailer';
    } else this.cur = 'skip';
  }

  data(chunk: Buffer): void {
    if (this.cur === 'header') this.header!.push(chunk);
    else if (this.cur === 'trailer') this.trailer!.push(chunk);
  }

  memberEnd(): void {
    if (this.cur === 'header') this.headerResult = this.header!.end(headerSchema);
    else if (this.cur === 'trailer') this.trailerResult = this.trailer!.end(trailerSchema);
    this.cur = 'skip';
  }

  problem(offset: number, reason: string): void {
    if (this.damage.length < 20) this.damage.push(`tar at byte ${offset}: ${reason}`);
  }

  end(): void {}
}

/** Why a header and a trailer do not make a complete file, if they do not. */
function mismatch(h: Omit<TargetHeader, 'manifest'>, t: Omit<Trailer, 'files'>, listed: number): string | undefined {
  if (t.targetId !== h.target.id) return `its trailer names target ${t.targetId}, its header ${h.target.id}`;
  if (t.taskId !== h.taskId) return `its trailer was written by task ${t.taskId}, its header by ${h.taskId}`;
  if (t.manifestDigest !== undefined && h.manifestDigest !== undefined && t.manifestDigest !== h.manifestDigest)
    return 'its trailer and header have different manifest digests';
  if (t.fileCount !== listed) return `its trailer says ${t.fileCount} file(s) but lists ${listed}`;
  return undefined;
}

/**
 * Reads a tape file to its end, yielding the header's manifest entries as they are read and
 * filling `out` once the file is read. Errors of the block source (tape I/O) and aborts propagate.
 */
export async function* surveyTargetFile(blocks: AsyncIterable<Buffer>, out: SurveyOutcome, opts: { signal?: AbortSignal } = {}): AsyncGenerator<ManifestEntry> {
  const sink = new SurveySink();
  const parser = new TarParser(sink);
  let broken: string | undefined;
  for await (const block of blocks) {
    abortCheck(opts.signal);
    out.tapeBytes += block.length;
    if (broken) continue;
    try {
      parser.push(block);
    } catch (e) {
      broken = `cannot parse further: ${errorMessage(e)}`;
    }
    if (sink.pending.length) {
      const batch = sink.pending;
      sink.pending = [];
      yield* batch;
    }
  }
  abortCheck(opts.signal);
  parser.finish();
  out.damage = broken ? [...sink.damage, broken] : sink.damage;
  const h = sink.headerResult;
  const t = sink.trailerResult;
  if (out.tapeBytes === 0) out.incomplete = 'the tape file is empty';
  else if (sink.first !== null) out.incomplete = `it is not a target file: its first member is ${JSON.stringify(sink.first)}`;
  else if (h === null) out.incomplete = `it ends inside ${HEADER_MEMBER}`;
  else if (typeof h === 'string') out.incomplete = `its ${HEADER_MEMBER} is ${h}`;
  else {
    const { manifest: _m, ...head } = h as unknown as TargetHeader;
    out.header = head;
    if (t === null) out.incomplete = 'no trailer: the write was interrupted (end of medium, a failure, or the agent stopped)';
    else if (typeof t === 'string') out.incomplete = `its ${TRAILER_MEMBER} is ${t}`;
    else {
      const { files: _f, ...trailer } = t as unknown as Trailer;
      out.trailer = trailer;
      out.incomplete = mismatch(head, trailer, sink.listed);
    }
  }
}
