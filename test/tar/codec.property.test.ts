/**
 * Property: whatever the member names (any bytes but NUL, up to 300 bytes: ustar field or pax
 * `path` with `hdrcharset=BINARY`), link targets, sizes, modes and times (before 1970, after
 * 2242), an archive written by the encoder parses back to exactly the same members, however
 * the input is cut into chunks.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { END_OF_ARCHIVE, encodeHeader, padding, type TarType } from '../../src/lib/tar/encode.ts';
import { TarParser, type TarMember } from '../../src/lib/tar/parse.ts';

interface Member {
  name: Buffer;
  type: TarType;
  mode: number;
  mtime: number;
  data: Buffer;
  linkname?: Buffer;
}

const bytesArb = (min: number, max: number) => fc.uint8Array({ minLength: min, maxLength: max }).map((b) => Buffer.from(b.map((x) => (x === 0 ? 0x5f : x))));
const memberArb: fc.Arbitrary<Member> = fc.oneof(
  fc.record({
    name: fc.oneof(bytesArb(1, 20), bytesArb(95, 300)),
    type: fc.constant('file' as const),
    mode: fc.integer({ min: 0, max: 0o7777 }),
    mtime: fc.oneof(fc.integer({ min: 0, max: 4_102_444_800 }), fc.integer({ min: -2_000_000_000, max: -1 }), fc.constant(8 ** 11 + 5)),
    data: fc.uint8Array({ maxLength: 1500 }).map((b) => Buffer.from(b)),
  }),
  fc.record({
    name: fc.oneof(bytesArb(1, 20), bytesArb(95, 300)).map((b) => Buffer.concat([b, Buffer.from('/')])),
    type: fc.constant('dir' as const),
    mode: fc.integer({ min: 0, max: 0o7777 }),
    mtime: fc.integer({ min: 0, max: 4_102_444_800 }),
    data: fc.constant(Buffer.alloc(0)),
  }),
  fc.record({
    name: fc.oneof(bytesArb(1, 20), bytesArb(95, 300)),
    type: fc.constantFrom('symlink' as const, 'hardlink' as const),
    mode: fc.integer({ min: 0, max: 0o7777 }),
    mtime: fc.integer({ min: 0, max: 4_102_444_800 }),
    data: fc.constant(Buffer.alloc(0)),
    linkname: fc.oneof(bytesArb(1, 20), bytesArb(95, 300)),
  }),
);

function encode(members: Member[]): Buffer {
  const parts: Buffer[] = [];
  for (const m of members) {
    parts.push(
      encodeHeader({ name: m.name, type: m.type, mode: m.mode, mtime: m.mtime, size: m.data.length, ...(m.linkname ? { linkname: m.linkname } : {}) }),
    );
    parts.push(m.data, Buffer.alloc(padding(m.data.length)));
  }
  parts.push(END_OF_ARCHIVE);
  return Buffer.concat(parts);
}

function parseInChunks(buf: Buffer, cuts: number[]): { members: (TarMember & { data: Buffer })[]; problems: string[]; end: boolean } {
  const members: (TarMember & { data: Buffer })[] = [];
  const problems: string[] = [];
  let end = false;
  let cur: (TarMember & { data: Buffer[] }) | null = null;
  const p = new TarParser({
    member: (m) => void (cur = { ...m, data: [] }),
    data: (c) => void cur!.data.push(Buffer.from(c)),
    memberEnd: () => void members.push({ ...cur!, data: Buffer.concat(cur!.data) }),
    problem: (_o, reason) => void problems.push(reason),
    end: () => void (end = true),
  });
  let pos = 0;
  for (const c of [...cuts].sort((a, b) => a - b)) {
    const at = Math.min(buf.length, Math.floor(c * buf.length));
    p.push(buf.subarray(pos, at));
    pos = at;
  }
  p.push(buf.subarray(pos));
  return { members, problems, end };
}

const TYPEFLAG: Record<TarType, string> = { file: '0', dir: '5', symlink: '2', hardlink: '1' };

describe('tar codec round trip (property)', () => {
  it('parses back exactly what was encoded, in any chunking', () => {
    fc.assert(
      fc.property(fc.array(memberArb, { maxLength: 12 }), fc.array(fc.double({ min: 0, max: 1, noNaN: true }), { maxLength: 6 }), (members, cuts) => {
        const out = parseInChunks(encode(members), cuts);
        expect(out.problems).toEqual([]);
        expect(out.end).toBe(true);
        expect(out.members).toHaveLength(members.length);
        out.members.forEach((got, i) => {
          const m = members[i]!;
          expect(got.name.equals(m.name), 'name').toBe(true);
          expect(got.typeflag).toBe(TYPEFLAG[m.type]);
          expect(got.mode).toBe(m.mode);
          expect(got.mtime).toBe(m.mtime);
          expect(got.data.equals(m.data), 'data').toBe(true);
          if (m.linkname) expect(got.linkname.equals(m.linkname), 'linkname').toBe(true);
        });
      }),
      { numRuns: 300 },
    );
  });
});
