/**
 * The restore extractor against crafted tape files (built with the tar encoder, readable by
 * GNU tar) and a real directory: hostile member names restore nothing outside the
 * destination, a bad checksum is a failure by name, and the restore rules (destination,
 * selection, unsafe names) refuse what cannot be inside a target.
 */
import { createHash } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { mkdir, mkdtemp, readdir, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { ManifestEntry } from '../../src/lib/domain/manifest.ts';
import { isSelected, normalizeSelection, parseDestination, unsafeMemberName } from '../../src/lib/domain/restore.ts';
import { extractTargetFile, type RestoreFailure } from '../../src/lib/restore/extract.ts';
import { LocalDestination } from '../../src/lib/restore/local-destination.ts';
import { encodeHeader, padding } from '../../src/lib/tar/encode.ts';

const sha = (s: string) => createHash('sha256').update(s).digest('hex');
const MTIME = 1_700_000_000;

type Member = { name: string; type: 'file' | 'dir' | 'symlink'; data?: string; link?: string };

function tarOf(members: Member[]): Buffer {
  const parts: Buffer[] = [];
  for (const m of members) {
    const data = Buffer.from(m.data ?? '');
    parts.push(
      encodeHeader({
        name: Buffer.from(m.name),
        type: m.type,
        mode: m.type === 'dir' ? 0o755 : 0o644,
        mtime: MTIME,
        size: m.type === 'file' ? data.length : 0,
        ...(m.link ? { linkname: Buffer.from(m.link) } : {}),
      }),
    );
    if (m.type === 'file') parts.push(data, Buffer.alloc(padding(data.length)));
  }
  parts.push(Buffer.alloc(1024));
  return Buffer.concat(parts);
}

const file = (path: string, content: string): ManifestEntry => ({
  path,
  type: 'file',
  size: Buffer.byteLength(content),
  mtimeMs: MTIME * 1000,
  mode: 0o644,
  sha256: sha(content),
});

async function* blocksOf(b: Buffer, size = 512 * 7): AsyncGenerator<Buffer> {
  for (let i = 0; i < b.length; i += size) yield b.subarray(i, i + size);
}
async function* listOf(entries: ManifestEntry[]): AsyncGenerator<ManifestEntry> {
  yield* entries;
}

let base: string;
let dest: string;
let outside: string;
beforeEach(async () => {
  base = await mkdtemp(join(tmpdir(), 'restore-extract-'));
  dest = join(base, 'dest');
  outside = join(base, 'outside');
  await mkdir(outside);
});
afterEach(async () => {
  await rm(base, { recursive: true, force: true });
});

async function restore(members: Member[], manifest: ManifestEntry[], opts: { selection?: string[] } = {}) {
  const failures: RestoreFailure[] = [];
  const tar = tarOf(members);
  await writeFile(join(base, 'crafted.tar'), tar);
  const counts = await extractTargetFile({
    targetId: 't-1',
    blocks: blocksOf(tar),
    manifest: listOf(manifest),
    selection: (opts.selection ?? []).map((s) => Buffer.from(s)),
    dest: new LocalDestination(dest),
    overwrite: false,
    owners: false,
    onFailure: (f) => failures.push(f),
  });
  return { counts, failures };
}

describe('a crafted tape file', () => {
  it('with ../ members, an absolute member and an escaping symlink restores nothing outside the destination', async () => {
    // a symlink already in the destination that points outside it
    await mkdir(dest);
    await symlink(outside, join(dest, 'pre'));
    const members: Member[] = [
      { name: 'header.json', type: 'file', data: '{}' },
      { name: 'data/', type: 'dir' },
      { name: 'data/ok.txt', type: 'file', data: 'fine\n' },
      { name: 'data/../escape.txt', type: 'file', data: 'up one\n' },
      { name: 'data/sub/../../up2.txt', type: 'file', data: 'up two\n' },
      { name: `${outside}/abs.txt`, type: 'file', data: 'absolute\n' },
      { name: 'data/link', type: 'symlink', link: outside },
      { name: 'data/link/evil.txt', type: 'file', data: 'through the link\n' },
      { name: 'data/pre/x.txt', type: 'file', data: 'through the old link\n' },
      { name: 'trailer.json', type: 'file', data: '{}' },
    ];
    // GNU tar reads the crafted file (it is a real tar)
    execFileSync('tar', ['-tf', '-'], { input: tarOf(members), stdio: ['pipe', 'pipe', 'pipe'] });
    const manifest: ManifestEntry[] = [
      file('ok.txt', 'fine\n'),
      { path: 'link', type: 'symlink', size: 0, mtimeMs: MTIME * 1000, mode: 0o777, linkTarget: outside },
      file('link/evil.txt', 'through the link\n'),
      file('pre/x.txt', 'through the old link\n'),
    ];
    const { counts, failures } = await restore(members, manifest);
    expect(await readdir(outside)).toEqual([]);
    expect((await readdir(base)).sort()).toEqual(['crafted.tar', 'dest', 'outside']);
    expect(await readFile(join(dest, 'ok.txt'), 'utf8')).toBe('fine\n');
    const reasons = Object.fromEntries(failures.map((f) => [f.path, f.reason]));
    expect(reasons['../escape.txt']).toMatch(/refused: a "\.\." component/);
    expect(reasons['sub/../../up2.txt']).toMatch(/refused: a "\.\." component/);
    expect(reasons[`${outside}/abs.txt`]).toMatch(/refused: a member outside data\//);
    expect(reasons['link/evil.txt']).toMatch(/its parent "link" is a symlink in the tape file/);
    expect(reasons['pre/x.txt']).toMatch(/"pre" in the destination is a symlink: not writing through it/);
    expect(counts.failed).toBe(5);
    // the symlink itself is data of the target: restored as it is, last
    expect(counts.restored).toBe(2);
  });

  it('a file whose bytes do not match the catalog is reported by name and not left behind', async () => {
    const members: Member[] = [
      { name: 'data/', type: 'dir' },
      { name: 'data/good.txt', type: 'file', data: 'good\n' },
      { name: 'data/bad.txt', type: 'file', data: 'flipped\n' },
    ];
    const { counts, failures } = await restore(members, [file('good.txt', 'good\n'), file('bad.txt', 'original\n')]);
    expect(failures).toEqual([{ path: 'bad.txt', reason: expect.stringMatching(/bytes on tape|checksum mismatch/) }]);
    expect(await readdir(dest)).toEqual(['good.txt']);
    expect(counts).toMatchObject({ restored: 1, failed: 1 });
  });

  it('reports what the catalog has and the tape file lacks, and a selection that matches nothing', async () => {
    const members: Member[] = [
      { name: 'data/', type: 'dir' },
      { name: 'data/a.txt', type: 'file', data: 'a\n' },
    ];
    const missing = await restore(members, [file('a.txt', 'a\n'), file('b.txt', 'b\n')]);
    expect(missing.failures).toEqual([{ path: 'b.txt', reason: 'missing from the tape file' }]);
    const none = await restore(members, [file('a.txt', 'a\n')], { selection: ['zzz'] });
    expect(none.failures).toEqual([{ path: 'zzz', reason: expect.stringMatching(/^not in target t-1/) }]);
  });
});

describe('restore rules', () => {
  it('parses [HOST:]DIR and refuses relative or dotted directories', () => {
    expect(parseDestination('/restore/x/')).toEqual({ dir: '/restore/x' });
    expect(parseDestination('datahost:/r')).toEqual({ host: 'datahost', dir: '/r' });
    expect(() => parseDestination('relative')).toThrow(/absolute DIR/);
    expect(() => parseDestination('/a/../b')).toThrow(/"\.\." component/);
  });

  it('normalizes selected paths and refuses ones that leave the target', () => {
    expect(normalizeSelection('./sub//a/')).toBe('sub/a');
    expect(() => normalizeSelection('/etc')).toThrow(/absolute/);
    expect(() => normalizeSelection('a/../../b')).toThrow(/"\.\." component/);
    expect(() => normalizeSelection('.')).toThrow(/target root/);
  });

  it('selects a name, its subtree, never a sibling with the same prefix', () => {
    const sel = [Buffer.from('sub')];
    expect(isSelected(Buffer.from('sub'), sel)).toBe(true);
    expect(isSelected(Buffer.from('sub/x'), sel)).toBe(true);
    expect(isSelected(Buffer.from('subway'), sel)).toBe(false);
    expect(isSelected(Buffer.from('anything'), [])).toBe(true);
  });

  it('finds unsafe member names', () => {
    expect(unsafeMemberName(Buffer.from('a/b'))).toBeUndefined();
    expect(unsafeMemberName(Buffer.from('a/./b'))).toMatch(/"\."/);
    expect(unsafeMemberName(Buffer.from('a//b'))).toMatch(/empty component/);
    expect(unsafeMemberName(Buffer.from([0x61, 0, 0x62]))).toMatch(/NUL/);
    expect(unsafeMemberName(Buffer.from('..'))).toMatch(/"\.\."/);
  });
});
