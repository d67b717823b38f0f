/**
 * Reads header.json or trailer.json as its bytes come off the tape. Up to STREAM_ABOVE bytes
 * the member is collected and parsed whole (any JSON layout); above, it is read line by line
 * in the layout `encodeJsonWithList` writes (the head's fields, then one list item per line),
 * so a manifest of millions of entries is never held: each item goes to `onItem` as it is
 * read, and the head is kept without its list.
 */
import type { ZodType } from 'zod';
import { errorMessage } from '../errors.ts';
import { firstIssue } from '../validation.ts';
import { decodeJsonMember } from './format.ts';

/** Members above this are read line by line. */
export const STREAM_ABOVE = 8 * 1024 * 1024;
const MAX_HEAD = 1024 * 1024;

export class JsonMemberReader<Item> {
  private readonly whole: boolean;
  private chunks: Buffer[] = [];
  private size = 0;
  private rest: Buffer = Buffer.alloc(0);
  private state: 'head' | 'items' | 'tail' | 'done' = 'head';
  private headLines: string[] = [];
  private headBytes = 0;
  private head: Record<string, unknown> | undefined;
  private failure: string | undefined;
  private readonly listLine: string;

  constructor(
    private readonly listKey: string,
    memberSize: number,
    private readonly schemas: { head: ZodType; item: ZodType },
    private readonly onItem: (item: Item) => void,
    streamAbove = STREAM_ABOVE,
  ) {
    this.whole = memberSize <= streamAbove;
    this.listLine = `  ${JSON.stringify(listKey)}: [`;
  }

  push(chunk: Buffer): void {
    if (this.failure) return;
    if (this.whole) {
      this.chunks.push(Buffer.from(chunk)); // a copy: block buffers may be reused by the source
      this.size += chunk.length;
      return;
    }
    let buf = this.rest.length ? Buffer.concat([this.rest, chunk]) : chunk;
    for (let nl = buf.indexOf(0x0a); nl >= 0 && !this.failure; nl = buf.indexOf(0x0a)) {
      this.line(buf.toString('utf8', 0, nl));
      buf = buf.subarray(nl + 1);
    }
    this.rest = Buffer.from(buf);
    if (this.rest.length > MAX_HEAD) this.fail('a line longer than 1 MB');
  }

  private fail(why: string): void {
    this.failure ??= why;
  }

  private line(text: string): void {
    if (this.state === 'head') {
      if (text !== this.listLine) {
        this.headLines.push(text);
        this.headBytes += text.length;
        if (this.headBytes > MAX_HEAD) this.fail(`too large to read whole and not in the line layout (no "${this.listKey}" list line)`);
        return;
      }
      let head: unknown;
      try {
        head = JSON.parse(this.headLines.join('\n').replace(/,\s*$/, '') + '\n}');
      } catch (e) {
        this.fail(`not valid JSON (${errorMessage(e)})`);
        return;
      }
      const r = this.schemas.head.safeParse(head);
      if (!r.success) {
        this.fail(`not valid: ${firstIssue(r.error)}`);
        return;
      }
      this.head = r.data as Record<string, unknown>;
      this.headLines = [];
      this.state = 'items';
      return;
    }
    if (this.state === 'items') {
      if (text === '  ]') {
        this.state = 'tail';
        return;
      }
      let item: unknown;
      try {
        item = JSON.parse(text.trim().replace(/,$/, ''));
      } catch (e) {
        this.fail(`not valid JSON in its "${this.listKey}" list (${errorMessage(e)})`);
        return;
      }
      const r = this.schemas.item.safeParse(item);
      if (!r.success) {
        this.fail(`not valid: ${this.listKey}: ${firstIssue(r.error)}`);
        return;
      }
      this.onItem(r.data as Item);
      return;
    }
    if (this.state === 'tail' && text === '}') this.state = 'done';
    else this.fail(`unexpected text after the "${this.listKey}" list`);
  }

  /**
   * At the member's end: its head (with its list when it was read whole), or what is wrong.
   * `whole` schema: the head with its list (for members read whole).
   */
  end(whole: ZodType): Record<string, unknown> | string {
    if (this.whole) {
      let v: unknown;
      try {
        v = decodeJsonMember(Buffer.concat(this.chunks, this.size), this.listKey);
      } catch (e) {
        return `not valid JSON (${errorMessage(e)})`;
      } finally {
        this.chunks = [];
      }
      const r = whole.safeParse(v);
      if (!r.success) return `not valid: ${firstIssue(r.error)}`;
      const data = r.data as Record<string, unknown>;
      for (const item of data[this.listKey] as Item[]) this.onItem(item);
      return data;
    }
    if (this.failure) return this.failure;
    if (this.state !== 'done' || this.rest.toString('utf8').trim()) return `not valid JSON (it ends inside its "${this.listKey}" list)`;
    return this.head!;
  }
}
