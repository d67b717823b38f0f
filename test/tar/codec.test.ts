/**
 * The ustar/pax codec on its own: field limits, pax fallbacks, chunking, interop with GNU
 * tar archives, and the line layout of the JSON members.
 */
import { execFileSync } from 'node:child_process';
import { mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decodeJsonMember, encodeJsonWithList } from '../../src/lib/tape-format/format.ts';
import { END_OF_ARCHIVE, encodeHeader, padding } from '../../src/lib/tar/encode.ts';
import { TarParser, type TarMember } from '../../src/lib/tar/parse.ts';

let work: string;
beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'tape-format-tar-'));
});
afterAll(async () => {
  if (work) await rm(work, { recursive: true, force: true });
});

interface Event {
  kind: string;
  name?: string;
  size?: number;
  data?: string;
  link?: string;
  mtime?: number;
  reason?: string;
}

/** Parses `buf` fed in chunks of `sizes` (cycled) and returns the event log. */
function parse(buf: Buffer, sizes: number[] = [buf.length || 1]): { events: Event[]; finish: ReturnType<TarParser['finish']> } {
  const events: Event[] = [];
  let data: Buffer[] = [];
  let cur: TarMember | null = null;
  const p = new TarParser({
    member(m) {
      cur = m;
      data = [];
    },
    data(c) {
      data.push(Buffer.from(c));
    },
    memberEnd() {
      const m = cur!;
      events.push({
        kind: 'member',
        name: m.name.toString('latin1'),
        size: m.size,
        data: Buffer.concat(data).toString('latin1'),
        link: m.linkname.toString('latin1'),
        mtime: m.mtime,
      });
    },
    problem(_o, reason) {
      events.push({ kind: 'problem', reason });
    },
    end() {
      events.push({ kind: 'end' });
    },
  });
  let off = 0;
  let i = 0;
  while (off < buf.length) {
    const n = sizes[i++ % sizes.length]!;
    p.push(buf.subarray(off, off + n));
    off += n;
  }
  return { events, finish: p.finish() };
}

function member(name: Buffer | string, data: string, extra: Partial<Parameters<typeof encodeHeader>[0]> = {}): Buffer {
  const d = Buffer.from(data);
  const h = encodeHeader({
    name: typeof name === 'string' ? Buffer.from(name) : name,
    type: 'file',
    mode: 0o644,
    mtime: 1_700_000_000,
    size: d.length,
    ...extra,
  });
  return Buffer.concat([h, d, Buffer.alloc(padding(d.length))]);
}

describe('ustar/pax encoding', () => {
  it('uses the ustar name field up to 100 bytes and a pax path above', () => {
    const n100 = 'n'.repeat(100);
    const n101 = 'n'.repeat(101);
    expect(encodeHeader({ name: Buffer.from(n100), type: 'file', mode: 0o644, mtime: 0, size: 0 }).length).toBe(512);
    const h = encodeHeader({ name: Buffer.from(n101), type: 'file', mode: 0o644, mtime: 0, size: 0 });
    expect(h.length).toBe(512 * 3);
    expect(h.subarray(512, 1024).toString('latin1')).toMatch(/^\d+ path=n{101}\n/);
    const tar = Buffer.concat([member(n100, 'a'), member(n101, 'b'), END_OF_ARCHIVE]);
    expect(parse(tar).events.map((e) => e.name)).toEqual([n100, n101, undefined]);
    const path = join(work, 'names.tar');
    execFileSync('dd', [`of=${path}`, 'status=none'], { input: tar });
    expect(execFileSync('tar', ['-tf', path]).toString()).toBe(`${n100}\n${n101}\n`);
  });

  it('marks a long non-UTF-8 pax value hdrcharset=BINARY; a short one stays in the ustar field', () => {
    const long = Buffer.concat([Buffer.from('x'.repeat(120)), Buffer.from([0xff])]);
    const h = encodeHeader({ name: long, type: 'file', mode: 0o644, mtime: 0, size: 0 });
    expect(h.subarray(512, 1024).toString('latin1')).toMatch(/^21 hdrcharset=BINARY\n\d+ path=x{120}\xff\n/);
    const short = Buffer.from([0x61, 0xff]);
    expect(encodeHeader({ name: short, type: 'file', mode: 0o644, mtime: 0, size: 0 }).subarray(0, 3)).toEqual(Buffer.from([0x61, 0xff, 0]));
  });

  it('puts link targets over 100 bytes in pax linkpath; GNU tar restores them', async () => {
    const target = 't/'.repeat(80) + 'end';
    const tar = Buffer.concat([
      encodeHeader({ name: Buffer.from('lnk'), type: 'symlink', mode: 0o777, mtime: 1_700_000_000, size: 0, linkname: Buffer.from(target) }),
      END_OF_ARCHIVE,
    ]);
    expect(parse(tar).events[0]).toMatchObject({ name: 'lnk', link: target });
    const path = join(work, 'link.tar');
    const dest = join(work, 'link-out');
    await mkdir(dest);
    execFileSync('dd', [`of=${path}`, 'status=none'], { input: tar });
    execFileSync('tar', ['-xf', path, '-C', dest]);
    expect(
      execFileSync('readlink', [join(dest, 'lnk')])
        .toString()
        .trim(),
    ).toBe(target);
  });

  it('uses pax size for files of 8 GiB and more, and pax mtime outside the octal range', () => {
    const big = 9 * 1024 ** 3 + 5;
    const h = encodeHeader({ name: Buffer.from('huge'), type: 'file', mode: 0o644, mtime: -86400, size: big });
    expect(h.subarray(512, 1024).toString('latin1')).toContain(`size=${big}\n`);
    expect(h.subarray(512, 1024).toString('latin1')).toContain('mtime=-86400\n');
    const events: TarMember[] = [];
    const p = new TarParser({ member: (m) => void events.push(m), data() {}, memberEnd() {}, problem() {}, end() {} });
    p.push(h);
    expect(events[0]).toMatchObject({ size: big, mtime: -86400 });
  });

  it('parses the same whatever the chunking', () => {
    const tar = Buffer.concat([member('a', 'x'.repeat(1000)), member('b'.repeat(150), ''), member('c', 'y'.repeat(513)), END_OF_ARCHIVE, Buffer.alloc(4096)]);
    const whole = parse(tar);
    for (const sizes of [[1], [7, 511, 3], [512], [513], [100_000]]) expect(parse(tar, sizes)).toEqual(whole);
    expect(whole.finish).toEqual({ state: 'end' });
    expect(whole.events.map((e) => e.kind)).toEqual(['member', 'member', 'member', 'end']);
  });

  it('reports truncation and damage instead of throwing', () => {
    const tar = Buffer.concat([member('a', 'x'.repeat(1000)), member('b', 'y'), END_OF_ARCHIVE]);
    expect(parse(tar.subarray(0, 700)).finish).toMatchObject({ state: 'truncated', inMember: true });
    expect(parse(tar.subarray(0, 1536 + 100)).finish).toMatchObject({ state: 'truncated', inMember: false });
    expect(parse(tar.subarray(0, 2048 + 512 + 512)).finish).toMatchObject({ state: 'no-end-marker' });
    const damaged = Buffer.from(tar);
    damaged[1536 + 10] = damaged[1536 + 10]! ^ 0xff; // header of "b"
    const r = parse(damaged);
    expect(r.events.map((e) => e.kind)).toEqual(['member', 'problem', 'end']);
    expect(r.events[1]!.reason).toMatch(/checksum/);
  });

  it('reads archives made by GNU tar (posix and gnu formats)', async () => {
    const src = join(work, 'gnu-src');
    await mkdir(join(src, 'd'), { recursive: true });
    await writeFile(join(src, 'd', 'f'.repeat(140)), 'long');
    await writeFile(Buffer.from(src + '/caf\xe9', 'latin1'), 'latin1 name');
    await symlink('d', join(src, 'ln'));
    for (const format of ['posix', 'gnu']) {
      const path = join(work, `gnu-${format}.tar`);
      execFileSync('tar', [`--format=${format}`, '-cf', path, '-C', src, '.'], { env: { ...process.env, LC_ALL: 'C' } });
      const { events, finish } = parse(readFileSync(path), [10240]);
      expect(finish.state).toBe('end');
      const byName = new Map(events.filter((e) => e.kind === 'member').map((e) => [e.name, e]));
      expect(byName.get(`./d/${'f'.repeat(140)}`)?.data).toBe('long');
      expect(byName.get('./caf\xe9')?.data).toBe('latin1 name');
      expect(byName.get('./ln')?.link).toBe('d');
    }
  });
});

describe('JSON members', () => {
  it('put the list last, one item per line, and parse line by line when large', () => {
    const list = Array.from({ length: 1000 }, (_, i) => ({ path: `f${i}\n"q"`, size: i }));
    const chunks = encodeJsonWithList({ format: 'tape-archive/1', n: 1, nested: { a: [1, 2] } }, 'manifest', list);
    const buf = Buffer.concat(chunks);
    const text = buf.toString();
    expect(text.split('\n').filter((l) => l.startsWith('    {"path":')).length).toBe(1000);
    const whole = JSON.parse(text);
    expect(whole.manifest).toEqual(list);
    expect(decodeJsonMember(buf, 'manifest', 100)).toEqual(whole);
    expect(decodeJsonMember(Buffer.concat(encodeJsonWithList({ a: 1 }, 'files', [])), 'files', 1)).toEqual({ a: 1, files: [] });
    expect(() => decodeJsonMember(Buffer.from('{"a": 1}'), 'files', 1)).toThrow(/line layout/);
  });
});
