/**
 * Reading the first member of a tape file: the label of file 0 (readLabel) and the header of a
 * target file (readTargetHeader). The full
 * verify of a target file is in reader.ts.
 */
import {
  HEADER_MEMBER,
  LABEL_MEMBER,
  NotALabelError,
  TapeFormatError,
  firstIssue,
  headerHeadSchema,
  headerSchema,
  manifestEntrySchema,
  labelSchema,
  type TapeLabel,
  type TargetHeader,
} from './format.ts';
import { TarParser, type TarSink } from '../tar/parse.ts';
import { errorMessage } from '../errors.ts';
import { JsonMemberReader } from './json-member.ts';

const MAX_LABEL_BYTES = 1024 * 1024;
/** JSON members above this are not parsed (a header of tens of millions of entries). */
export const MAX_JSON_BYTES = 3 * 1024 * 1024 * 1024;

export function abortCheck(signal: AbortSignal | undefined): void {
  signal?.throwIfAborted();
}

/** What takes a first member's bytes as they are read: `end` gives the member's value. */
interface MemberConsumer<T> {
  push(chunk: Buffer): void;
  end(): T;
}

/** Keeps a member's bytes (a copy: block buffers may be reused by the source). */
function collect(): MemberConsumer<Buffer> {
  const data: Buffer[] = [];
  return { push: (chunk) => data.push(Buffer.from(chunk)), end: () => Buffer.concat(data) };
}

/**
 * Reads the first member of a tape file, which must be a regular file named `name`, into
 * the consumer `open(size)` gives. `drain`: keep reading to the end of the tape file (so the
 * drive ends at the next file); otherwise stop as soon as the member is read. Returns the
 * consumer's value, or why the member is not there.
 */
async function readFirstMember<T>(
  blocks: AsyncIterable<Buffer>,
  name: string,
  maxBytes: number,
  opts: { signal?: AbortSignal | undefined; drain: boolean },
  open: (size: number) => MemberConsumer<T>,
): Promise<{ value: T } | { failure: string }> {
  let failure: string | null = null;
  let members = 0;
  let consumer: MemberConsumer<T> | undefined;
  let result: { value: T } | undefined;
  const sink: TarSink = {
    member(m) {
      members++;
      if (members > 1) return;
      const found = m.name.toString('utf8');
      if (found !== name || m.typeflag !== '0') failure ??= `its first member is ${JSON.stringify(found)}, not ${name}`;
      else if (m.size > maxBytes) failure ??= `${name} is implausibly large (${m.size} bytes)`;
      else consumer = open(m.size);
    },
    data(chunk) {
      if (members === 1 && !failure) consumer?.push(chunk);
    },
    memberEnd() {
      if (members === 1 && consumer) result = { value: consumer.end() };
    },
    problem(_offset, reason) {
      if (members === 0) failure ??= `it is not a tar archive (${reason})`;
    },
    end() {
      if (members === 0) failure ??= 'it is an empty tar archive';
    },
  };
  const parser = new TarParser(sink);
  let bytes = 0;
  const it = blocks[Symbol.asyncIterator]();
  try {
    while (opts.drain || (!result && !failure)) {
      abortCheck(opts.signal);
      const r = await it.next();
      if (r.done) break;
      bytes += r.value.length;
      if (!result && !failure) parser.push(r.value);
      if (failure) break;
    }
  } finally {
    if (failure || !opts.drain) await it.return?.();
  }
  if (!failure && !result) failure = bytes === 0 ? 'it is empty' : `it ends inside ${name}`;
  return failure ? { failure } : result!;
}

/**
 * Reads tape file 0 and returns its label. Throws NotALabelError when the file is not a
 * tape-archive label (blank, foreign or damaged tape, or an unknown format version). On
 * success the whole file is consumed (the drive is then positioned at file 1).
 */
export async function readLabel(blocks: AsyncIterable<Buffer>, opts: { signal?: AbortSignal } = {}): Promise<TapeLabel> {
  const first = await readFirstMember(blocks, LABEL_MEMBER, MAX_LABEL_BYTES, { signal: opts.signal, drain: true }, collect);
  let failure = 'failure' in first ? first.failure : undefined;
  let label: TapeLabel | undefined;
  if ('value' in first) {
    try {
      const parsed = labelSchema.safeParse(JSON.parse(first.value.toString('utf8')));
      if (parsed.success) label = parsed.data as TapeLabel;
      else failure = `${LABEL_MEMBER} is not valid: ${firstIssue(parsed.error)}`;
    } catch (e) {
      failure = `${LABEL_MEMBER} is not valid JSON (${errorMessage(e)})`;
    }
  }
  if (failure || !label) {
    throw new NotALabelError(
      `tape file 0 is not a tape-archive label: ${failure}. The tape is blank, foreign or damaged; ` + 'label it (this erases it) or use another tape.',
      { reason: failure },
    );
  }
  return label;
}

// ---------------------------------------------------------------------------------------------
// Target file

/**
 * Reads only the header of a target's tape file (its first member) and stops reading (the
 * drive is then positioned inside the file: seek before using it again). A large header is
 * read line by line and returned without its manifest (json-member.ts). Throws
 * TapeFormatError when the file does not begin with a valid header.json.
 */
export async function readTargetHeader(blocks: AsyncIterable<Buffer>, opts: { signal?: AbortSignal } = {}): Promise<TargetHeader> {
  const first = await readFirstMember(blocks, HEADER_MEMBER, MAX_JSON_BYTES, { signal: opts.signal, drain: false }, (size) => {
    const reader = new JsonMemberReader('manifest', size, { head: headerHeadSchema, item: manifestEntrySchema }, () => undefined);
    return { push: (chunk) => reader.push(chunk), end: () => reader.end(headerSchema) };
  });
  let failure: string;
  if ('failure' in first) failure = first.failure;
  else if (typeof first.value === 'string') failure = `${HEADER_MEMBER} is ${first.value}`;
  else return first.value as unknown as TargetHeader;
  throw new TapeFormatError(`not a tape-archive target file: ${failure}.`, { reason: failure });
}
