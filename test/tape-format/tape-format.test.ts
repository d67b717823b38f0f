/**
 * The on-tape format end to end: label, target files written from a real directory with
 * hostile names, read back by GNU tar (byte-exact names and content) and by readTargetFile,
 * and every failure the verify must catch.
 */
import { execFile, execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { lstatSync, readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, truncate, unlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { pathBytes, type ManifestEntry } from '../../src/lib/domain/manifest.ts';
import {
  FORMAT,
  NotALabelError,
  SourceChangedError,
  TapeFormatError,
  readLabel,
  readTargetFile,
  readTargetHeader,
  writeLabel,
  writeTargetFile,
  type SourceEntry,
  type TargetHeaderInit,
} from '../../src/lib/tape-format/index.ts';
import { localSource, scanLocalDirectory } from '../../src/lib/source/local-directory.ts';
import { BLOCK_SIZE, HOSTILE, PlainFileWriter, bytes, fileBlocks, makeSampleTree } from './helpers.ts';

const execFileP = promisify(execFile);

let work: string;
let src: string;
let manifest: ManifestEntry[];
let archive: string;
let seq = 0;

const TARGET = { id: 'tgt-1', host: 'data-host-1', path: '/srv/data/project' };

function headerFor(m: ManifestEntry[], over: Partial<TargetHeaderInit> = {}): TargetHeaderInit {
  return {
    tapeName: 'TAPE01',
    fileNumber: 3,
    taskId: 'task-1',
    target: TARGET,
    scanId: 'scan-1',
    writtenAt: '2024-01-02T03:04:05.000Z',
    manifest: m,
    ...over,
  };
}

async function scan(root: string): Promise<ManifestEntry[]> {
  const out: ManifestEntry[] = [];
  for await (const e of scanLocalDirectory(root)) out.push(e);
  return out;
}

/** Writes a target file from `root` to a fresh plain file; returns its path and the result. */
async function writeArchive(root: string, m: ManifestEntry[], over: Partial<TargetHeaderInit> = {}) {
  const path = join(work, `file-${String(++seq).padStart(4, '0')}`);
  const w = await PlainFileWriter.create(path);
  try {
    const r = await writeTargetFile({ writer: w, header: headerFor(m, over), source: localSource(root, m) });
    await w.close();
    return { path, ...r };
  } catch (e) {
    await w.close();
    throw Object.assign(e as Error, { archivePath: path });
  }
}

/** Every entry under `root` keyed by base64 of its relative name bytes. */
function snapshot(root: string): Map<string, { type: string; mode: number; mtime: number; data?: string; link?: string }> {
  const out = new Map<string, { type: string; mode: number; mtime: number; data?: string; link?: string }>();
  const walk = (abs: Buffer, rel: Buffer) => {
    for (const name of readdirSync(abs, { encoding: 'buffer' }) as Buffer[]) {
      const a = Buffer.concat([abs, bytes('/'), name]);
      const r = rel.length ? Buffer.concat([rel, bytes('/'), name]) : name;
      const st = lstatSync(a);
      const key = r.toString('base64');
      const base = { mode: st.mode & 0o7777, mtime: Math.floor(st.mtimeMs / 1000) };
      if (st.isDirectory()) {
        out.set(key, { type: 'dir', ...base });
        walk(a, r);
      } else if (st.isSymbolicLink()) {
        out.set(key, { type: 'symlink', ...base, link: (readlinkSync(a, { encoding: 'buffer' }) as Buffer).toString('base64') });
      } else {
        out.set(key, { type: 'file', ...base, data: createHash('sha256').update(readFileSync(a)).digest('hex') });
      }
    }
  };
  walk(Buffer.from(root), Buffer.alloc(0));
  return out;
}

function flipByteAt(path: string, offset: number): void {
  const buf = readFileSync(path);
  buf[offset] = buf[offset]! ^ 0x01;
  execFileSync('dd', [`of=${path}`, 'bs=1', `seek=${offset}`, 'conv=notrunc', 'status=none'], { input: buf.subarray(offset, offset + 1) });
}

async function* blocksOf(buf: Buffer, size = BLOCK_SIZE): AsyncGenerator<Buffer> {
  for (let off = 0; off < buf.length; off += size) yield Buffer.from(buf.subarray(off, off + size));
}

async function copyArchive(from: string): Promise<string> {
  const to = join(work, `copy-${++seq}`);
  await writeFile(to, await readFile(from));
  return to;
}

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'tape-format-test-'));
  src = join(work, 'src');
  await mkdir(src);
  await makeSampleTree(src);
  manifest = await scan(src);
  archive = (await writeArchive(src, manifest)).path;
});

afterAll(async () => {
  if (work) await rm(work, { recursive: true, force: true });
});

describe('label (tape file 0)', () => {
  const label = { format: FORMAT, tapeName: 'TAPE01', barcode: 'ABC123L9', createdAt: '2024-01-02T03:04:05.000Z', blockSize: BLOCK_SIZE };

  it('round-trips through a plain file padded to tape blocks, and GNU tar reads it', async () => {
    const path = join(work, 'file-0000');
    const w = await PlainFileWriter.create(path, BLOCK_SIZE, 0);
    await writeLabel(w, label);
    const closed = await w.close();
    expect(closed.tapeBytes).toBe(BLOCK_SIZE);
    expect(await readLabel(fileBlocks(path))).toEqual(label);
    expect(execFileSync('tar', ['-tf', path]).toString()).toBe('TAPE-LABEL.json\n');
    const json = JSON.parse(execFileSync('tar', ['-xOf', path, 'TAPE-LABEL.json']).toString());
    expect(json).toEqual(label);
  });

  it('refuses what is not a label with a clear error', async () => {
    // a target file (tar, but its first member is header.json)
    await expect(readLabel(fileBlocks(archive))).rejects.toThrow(NotALabelError);
    await expect(readLabel(fileBlocks(archive))).rejects.toThrow(/first member is "header.json"/);
    // a foreign tar made by GNU tar
    const foreign = join(work, 'foreign.tar');
    execFileSync('tar', ['-cf', foreign, '-C', src, 'sub']);
    await expect(readLabel(fileBlocks(foreign))).rejects.toThrow(/not a tape-archive label: its first member is "sub\/"/);
    // random bytes
    await expect(readLabel(blocksOf(Buffer.alloc(BLOCK_SIZE, 0x5a)))).rejects.toThrow(/not a tar archive/);
    // nothing at all, and zeros
    await expect(readLabel(blocksOf(Buffer.alloc(0)))).rejects.toThrow(/is empty/);
    await expect(readLabel(blocksOf(Buffer.alloc(BLOCK_SIZE)))).rejects.toThrow(/empty tar archive/);
    // a label of a future major version
    const chunks: Buffer[] = [];
    await writeLabel({ write: async (b) => void chunks.push(Buffer.from(b)) }, label);
    const v2 = Buffer.from(Buffer.concat(chunks).toString('latin1').replace('"tape-archive/1"', '"tape-archive/2"'), 'latin1');
    // fix the member's header checksum is not needed: only the data changed (same length)
    await expect(readLabel(blocksOf(v2))).rejects.toThrow(/unsupported format/);
    const e = await readLabel(fileBlocks(archive)).catch((x: unknown) => x);
    expect((e as NotALabelError).code).toBe('TAPE_NOT_LABELLED');
  });
});

describe('target file written from a directory with hostile names', () => {
  it('scans names as bytes, skips nothing representable', () => {
    const names = manifest.map((e) => pathBytes(e).toString('base64'));
    for (const n of Object.values(HOSTILE)) expect(names).toContain(n.toString('base64'));
    const ff = manifest.find((e) => pathBytes(e).equals(HOSTILE.ff))!;
    expect(ff.rawPath).toBe(HOSTILE.ff.toString('base64'));
    expect(manifest.find((e) => e.path === 'empty-dir')?.type).toBe('dir');
    expect(manifest.find((e) => e.path === 'link-to-file')).toMatchObject({ type: 'symlink', linkTarget: 'sub/file.txt' });
    expect(manifest.find((e) => e.path === 'empty-file')).toMatchObject({ type: 'file', size: 0 });
    expect(manifest.find((e) => e.path === 'big.bin')).toMatchObject({ type: 'file', size: 3 * 1024 * 1024 });
    // sorted by name bytes within each directory, directory before its contents
    const top = manifest.filter((e) => !pathBytes(e).includes(0x2f)).map((e) => pathBytes(e));
    expect([...top].sort(Buffer.compare)).toEqual(top);
    const i = manifest.findIndex((e) => e.path === 'sub');
    expect(manifest.findIndex((e) => e.path === 'sub/file.txt')).toBeGreaterThan(i);
  });

  it('GNU tar lists every member', async () => {
    const listed = execFileSync('tar', ['-tf', archive, '--quoting-style=escape'], { stdio: ['ignore', 'pipe', 'ignore'] })
      .toString()
      .trim()
      .split('\n');
    expect(listed[0]).toBe('header.json');
    expect(listed[1]).toBe('data/');
    expect(listed.at(-1)).toBe('trailer.json');
    expect(listed).toContain('data/-rf');
    expect(listed).toContain('data/not\\377utf8');
    expect(listed).toContain('data/new\\nline.txt');
    expect(listed).toContain(`data/${'L'.repeat(150)}`);
  });

  for (const locale of ['C', 'C.UTF-8']) {
    it(`GNU tar -xf extracts byte-exact names, content, links, modes and mtimes (LC_ALL=${locale})`, async () => {
      const dest = join(work, `extract-${locale}`);
      await mkdir(dest);
      const r = await execFileP('tar', ['-xf', archive, '-C', dest], { env: { ...process.env, LC_ALL: locale } });
      // The only message: GNU tar 1.34 does not know POSIX "hdrcharset" (used for the long
      // non-UTF-8 name) and ignores it, keeping the raw bytes.
      const messages = r.stderr.split('\n').filter(Boolean);
      for (const m of messages) expect(m).toMatch(/Ignoring unknown extended header keyword .hdrcharset./);
      const got = snapshot(join(dest, 'data'));
      const want = snapshot(src);
      expect([...got.keys()].sort()).toEqual([...want.keys()].sort());
      for (const [k, w] of want) {
        const g = got.get(k)!;
        expect({ name: Buffer.from(k, 'base64'), type: g.type, data: g.data, link: g.link }).toEqual({
          name: Buffer.from(k, 'base64'),
          type: w.type,
          data: w.data,
          link: w.link,
        });
        if (g.type !== 'symlink') {
          if (process.getuid?.() === 0) expect(g.mode.toString(8)).toBe(w.mode.toString(8));
          expect(g.mtime).toBe(w.mtime);
        }
      }
      expect(JSON.parse(readFileSync(join(dest, 'header.json'), 'utf8')).target).toEqual(TARGET);
      expect(JSON.parse(readFileSync(join(dest, 'trailer.json'), 'utf8')).complete).toBe(true);
    });
  }

  it('GNU tar reads it with the tape blocking factor (-b 512 = 256 KiB records)', async () => {
    const dest = join(work, 'extract-b512');
    await mkdir(dest);
    await execFileP('tar', ['-b', '512', '-xf', archive, '-C', dest, '--warning=no-unknown-keyword']);
    expect(readFileSync(join(dest, 'data/big.bin')).equals(readFileSync(join(src, 'big.bin')))).toBe(true);
    expect(readFileSync(Buffer.concat([Buffer.from(dest + '/data/'), HOSTILE.longBinary])).toString()).toBe('content of longBinary\n');
  });

  it('readTargetFile re-reads it and says ok', async () => {
    const progress: number[] = [];
    const report = await readTargetFile(fileBlocks(archive), { targetId: TARGET.id }, { onProgress: (n) => progress.push(n) });
    expect(report.bad).toEqual([]);
    expect(report.ok).toBe(true);
    const files = manifest.filter((e) => e.type === 'file');
    expect(report.fileCount).toBe(files.length);
    expect(report.dataBytes).toBe(files.reduce((n, e) => n + e.size, 0));
    expect(report.header?.manifest).toEqual(manifest);
    expect(report.header).toMatchObject({ format: FORMAT, tapeName: 'TAPE01', fileNumber: 3, taskId: 'task-1', target: TARGET, entries: manifest.length });
    expect(report.trailer).toMatchObject({ format: FORMAT, targetId: TARGET.id, taskId: 'task-1', complete: true, fileCount: files.length });
    expect(report.trailer!.files!.find((f) => f.path === 'big.bin')?.sha256).toBe(manifest.find((e) => e.path === 'big.bin')!.sha256);
    expect(progress.at(-1)).toBe(readFileSync(archive).length);
    // and against an explicitly given manifest
    expect((await readTargetFile(fileBlocks(archive), { targetId: TARGET.id, manifest })).ok).toBe(true);
    // readTargetHeader stops after the header
    expect((await readTargetHeader(fileBlocks(archive))).taskId).toBe('task-1');
    await expect(readTargetHeader(blocksOf(Buffer.alloc(BLOCK_SIZE, 1)))).rejects.toThrow(TapeFormatError);
  });

  it('header.json is the manifest, one entry per line, readable with tar -xO', () => {
    const text = execFileSync('tar', ['-xOf', archive, 'header.json'], { stdio: ['ignore', 'pipe', 'ignore'] }).toString();
    const lines = text.split('\n');
    expect(lines.filter((l) => l.startsWith('    {"path":')).length).toBe(manifest.length);
    expect(JSON.parse(text).manifest).toEqual(manifest);
  });
});

describe('source changed since the scan', () => {
  it('lists every change in a SourceChangedError and writes no trailer', async () => {
    const root = join(work, 'changing');
    await mkdir(root);
    await makeSampleTree(root);
    const m = await scan(root);
    await writeFile(join(root, 'sub/file.txt'), 'HELLO\n'); // same size, other content
    await writeFile(join(root, 'sub/deeper/deepest/leaf.txt'), 'grown\n'.repeat(2000)); // other size
    await unlink(join(root, 'empty-file')); // deleted
    await writeFile(join(root, 'brand-new.txt'), 'new\n'); // not in the manifest: localSource only yields manifest entries
    const err = await writeArchive(root, m).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(SourceChangedError);
    const e = err as SourceChangedError & { archivePath: string };
    expect(e.code).toBe('SOURCE_CHANGED');
    expect(e.changes.map((c) => c.path).sort()).toEqual(['empty-file', 'sub/deeper/deepest/leaf.txt', 'sub/file.txt']);
    expect(e.changes.find((c) => c.path === 'sub/file.txt')!.reason).toMatch(/content changed/);
    expect(e.changes.find((c) => c.path === 'sub/deeper/deepest/leaf.txt')!.reason).toMatch(/size changed/);
    expect(e.changes.find((c) => c.path === 'empty-file')!.reason).toMatch(/missing/);
    // what reached the writer is not a complete tape file
    const report = await readTargetFile(fileBlocks(e.archivePath), { targetId: TARGET.id });
    expect(report.ok).toBe(false);
    expect(report.bad.find((b) => b.path === 'trailer.json')?.reason).toMatch(/no trailer/);
  });

  it('reports entries not in the manifest, twice, or of another type', async () => {
    const m = manifest.filter((e) => e.path === 'sub' || e.path === 'sub/file.txt');
    const fileEntry = m.find((e) => e.type === 'file')!;
    async function* source(): AsyncGenerator<SourceEntry> {
      yield { entry: { path: 'sub', type: 'file', size: 0 }, content: [] };
      yield { entry: { path: 'intruder', type: 'file', size: 1 }, content: [Buffer.from('x')] };
      yield { entry: { ...fileEntry }, content: [readFileSync(join(src, 'sub/file.txt'))] };
      yield { entry: { ...fileEntry }, content: [readFileSync(join(src, 'sub/file.txt'))] };
    }
    const chunks: Buffer[] = [];
    const err = await writeTargetFile({ writer: { write: async (b) => void chunks.push(Buffer.from(b)) }, header: headerFor(m), source: source() }).catch(
      (x: unknown) => x,
    );
    expect(err).toBeInstanceOf(SourceChangedError);
    expect((err as SourceChangedError).changes).toEqual([
      { path: 'sub', reason: expect.stringMatching(/type changed/) },
      { path: 'intruder', reason: expect.stringMatching(/not in the manifest/) },
      { path: 'sub/file.txt', reason: expect.stringMatching(/yielded twice/) },
    ]);
  });

  it('a content stream with more or fewer bytes than declared is a change, not a corrupt tar', async () => {
    const big = manifest.find((e) => e.path === 'big.bin')!;
    const small = manifest.find((e) => e.path === 'sub/file.txt')!;
    const data = readFileSync(join(src, 'big.bin'));
    async function* chunksOf(buf: Buffer) {
      for (let o = 0; o < buf.length; o += 100_000) yield buf.subarray(o, o + 100_000);
    }
    async function* source(): AsyncGenerator<SourceEntry> {
      yield { entry: { ...big }, content: chunksOf(Buffer.concat([data, Buffer.from('more')])) }; // grew while read
      yield { entry: { ...small }, content: chunksOf(Buffer.from('hel')) }; // shrank while read
    }
    const err = await writeTargetFile({ writer: { write: async () => {} }, header: headerFor([big, small]), source: source() }).catch((x: unknown) => x);
    expect(err).toBeInstanceOf(SourceChangedError);
    expect((err as SourceChangedError).changes).toEqual([
      { path: 'big.bin', reason: expect.stringMatching(/changed while being read: more than/) },
      { path: 'sub/file.txt', reason: expect.stringMatching(/changed while being read: only 3 of 6 bytes/) },
    ]);
  });

  it('a failing writer (end of medium) propagates its own error', async () => {
    class EndOfMedium extends Error {
      code = 'TAPE_END_OF_MEDIUM';
    }
    let n = 0;
    const writer = {
      write: async () => {
        if (++n > 2) throw new EndOfMedium('tape full');
      },
    };
    await expect(writeTargetFile({ writer, header: headerFor(manifest), source: localSource(src, manifest) })).rejects.toThrow(EndOfMedium);
  });

  it('stops when aborted', async () => {
    const ac = new AbortController();
    const writer = {
      write: async () => {
        ac.abort(new Error('operator abort'));
      },
    };
    await expect(writeTargetFile({ writer, header: headerFor(manifest), source: localSource(src, manifest), signal: ac.signal })).rejects.toThrow(
      /operator abort/,
    );
  });

  it('refuses a manifest that cannot be archived', async () => {
    const bad = [
      { path: '../escape', type: 'file', size: 0, mtimeMs: 0, mode: 0o644, sha256: 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855' },
    ] as ManifestEntry[];
    await expect(writeTargetFile({ writer: { write: async () => {} }, header: headerFor(bad), source: [] })).rejects.toThrow(TapeFormatError);
    await expect(writeTargetFile({ writer: { write: async () => {} }, header: headerFor([...manifest, manifest[0]!]), source: [] })).rejects.toThrow(
      /listed twice/,
    );
  });
});

describe('verify catches damage', () => {
  it('a flipped byte in file data: ok false, naming the file', async () => {
    const path = await copyArchive(archive);
    const buf = readFileSync(path);
    const at = buf.indexOf('content of dollar');
    expect(at).toBeGreaterThan(0);
    flipByteAt(path, at + 3);
    const report = await readTargetFile(fileBlocks(path), { targetId: TARGET.id });
    expect(report.ok).toBe(false);
    expect(report.bad).toEqual([
      {
        path: HOSTILE.dollar.toString(),
        reason: expect.stringMatching(/^checksum mismatch: SHA-256 read [0-9a-f]{64}, manifest [0-9a-f]{64}$/),
      },
    ]);
  });

  it('a flipped byte in the data of a file with a non-UTF-8 name: reported by its manifest path', async () => {
    const path = await copyArchive(archive);
    flipByteAt(path, readFileSync(path).indexOf('content of ff'));
    const report = await readTargetFile(fileBlocks(path), { targetId: TARGET.id });
    const entry = manifest.find((e) => e.rawPath === HOSTILE.ff.toString('base64'))!;
    expect(entry.path).toBe(HOSTILE.ff.toString('latin1'));
    expect(report.bad).toEqual([{ path: entry.path, reason: expect.stringMatching(/checksum mismatch/) }]);
  });

  it('a flipped byte in a tar header: ok false, the member missing, no exception', async () => {
    const path = await copyArchive(archive);
    const buf = readFileSync(path);
    const at = buf.indexOf('data/sub/file.txt\0');
    flipByteAt(path, at + 6);
    const report = await readTargetFile(fileBlocks(path), { targetId: TARGET.id });
    expect(report.ok).toBe(false);
    expect(report.bad).toEqual(
      expect.arrayContaining([
        { path: expect.stringMatching(/^\(tar at byte \d+\)$/), reason: expect.stringMatching(/damaged tar header/) },
        { path: 'sub/file.txt', reason: expect.stringMatching(/missing from the tape file.*listed in the trailer, not on tape|missing from the tape file/) },
      ]),
    );
    // everything else still verified
    expect(report.bad.length).toBeLessThanOrEqual(3);
  });

  it('a truncated file (cut before the trailer): ok false, "no trailer"', async () => {
    const buf = readFileSync(archive);
    const trailerAt = buf.lastIndexOf('trailer.json\0');
    for (const cut of [trailerAt - 100, trailerAt, buf.indexOf('content of space') + 5, 700]) {
      const report = await readTargetFile(blocksOf(buf.subarray(0, cut)), { targetId: TARGET.id });
      expect(report.ok).toBe(false);
      expect(report.bad).toContainEqual({ path: 'trailer.json', reason: expect.stringMatching(/^no trailer/) });
    }
    // cut inside a file's data: that file is reported truncated
    const big = buf.indexOf(readFileSync(join(src, 'big.bin')).subarray(0, 64));
    const report = await readTargetFile(blocksOf(buf.subarray(0, big + 1000)), { targetId: TARGET.id });
    expect(report.bad).toContainEqual({ path: 'big.bin', reason: expect.stringMatching(/truncated: only 1000 of 3145728 bytes/) });
    // a file cut on disk (the virtual library's .partial of an interrupted write)
    const path = await copyArchive(archive);
    await truncate(path, trailerAt - 512);
    expect((await readTargetFile(fileBlocks(path), { targetId: TARGET.id })).bad).toContainEqual({
      path: 'trailer.json',
      reason: expect.stringMatching(/no trailer/),
    });
  });

  it('a header naming another target: ok false', async () => {
    const report = await readTargetFile(fileBlocks(archive), { targetId: 'some-other-target' });
    expect(report.ok).toBe(false);
    expect(report.bad).toContainEqual({ path: 'header.json', reason: 'names target "tgt-1", expected "some-other-target"' });
    expect(report.bad).toContainEqual({ path: 'trailer.json', reason: 'names target "tgt-1", expected "some-other-target"' });
  });

  it('a member missing from or extra to the expected manifest: ok false, each listed', async () => {
    const expected = manifest.filter((e) => e.path !== 'with space.txt');
    expected.push({ path: 'ghost.txt', type: 'file', size: 1, mtimeMs: 0, mode: 0o644, sha256: 'a'.repeat(64) });
    const report = await readTargetFile(fileBlocks(archive), { targetId: TARGET.id, manifest: expected });
    expect(report.ok).toBe(false);
    expect(report.bad).toEqual(
      expect.arrayContaining([
        { path: 'header.json', reason: 'its manifest differs from the expected manifest' },
        { path: 'with space.txt', reason: 'not in the manifest' },
        { path: 'ghost.txt', reason: 'missing from the tape file' },
      ]),
    );
  });

  it('garbage, zeros and nothing: ok false, no exception', async () => {
    for (const buf of [Buffer.alloc(BLOCK_SIZE, 0xab), Buffer.alloc(BLOCK_SIZE), Buffer.alloc(0)]) {
      const report = await readTargetFile(blocksOf(buf), { targetId: TARGET.id });
      expect(report.ok).toBe(false);
      expect(report.header).toBeNull();
      expect(report.bad.length).toBeGreaterThan(0);
    }
  });

  it('an I/O error of the block source propagates', async () => {
    async function* failing() {
      yield Buffer.alloc(BLOCK_SIZE);
      throw Object.assign(new Error('EIO reading tape'), { code: 'EIO' });
    }
    await expect(readTargetFile(failing(), { targetId: TARGET.id })).rejects.toThrow('EIO reading tape');
  });
});

describe('hard links and root metadata', () => {
  const sha = (s: string) => createHash('sha256').update(s).digest('hex');
  const m: ManifestEntry[] = [
    { path: 'a', type: 'file', size: 2, mtimeMs: 1e12, mode: 0o644, sha256: sha('hi'), linkGroup: 1 },
    { path: 'b', type: 'file', size: 2, mtimeMs: 1e12, mode: 0o644, sha256: sha('hi'), linkGroup: 1 },
    { path: 'c', type: 'file', size: 2, mtimeMs: 1e12, mode: 0o644, sha256: sha('hi') },
  ];
  const source = (inodeB = '1:10'): SourceEntry[] => [
    { entry: { path: '', type: 'dir', size: 0, mode: 0o750, mtimeMs: 1.1e12, root: true } },
    { entry: { path: 'a', type: 'file', size: 2, mode: 0o644, mtimeMs: 1e12, inode: '1:10' }, content: [bytes('hi')] },
    { entry: { path: 'b', type: 'file', size: 2, mode: 0o644, mtimeMs: 1e12, inode: inodeB } },
    { entry: { path: 'c', type: 'file', size: 2, mode: 0o644, mtimeMs: 1e12, inode: '1:11' }, content: [bytes('hi')] },
  ];
  const write = async (src: SourceEntry[]) => {
    const out = join(work, `links-${++seq}.tar`);
    const w = await PlainFileWriter.create(out);
    await writeTargetFile({ writer: w, header: headerFor(m), source: src });
    await w.close();
    return out;
  };

  it('the second name of a group is a hard link member; data/ has the root mode and mtime; verify agrees', async () => {
    const file = await write(source());
    const { stdout } = await execFileP('tar', ['-tvf', file]);
    expect(stdout).toMatch(/^h.* data\/b link to data\/a$/m);
    expect(stdout).toMatch(/^drwxr-x--- /m);
    const report = await readTargetFile(fileBlocks(file), { targetId: TARGET.id, manifest: m });
    expect(report.bad).toEqual([]);
    expect(report).toMatchObject({ ok: true, fileCount: 2, trailer: { root: { mode: 0o750, mtimeMs: 1.1e12 } } });
  });

  it('verify refuses a tape whose links do not match the manifest', async () => {
    const file = await write(source());
    // the manifest says b is a plain file: the tape's hard link is wrong
    const plain = m.map((e) => (e.path === 'b' ? { ...e, linkGroup: undefined } : e));
    const r1 = await readTargetFile(fileBlocks(file), { targetId: TARGET.id, manifest: plain });
    expect(r1.ok).toBe(false);
    expect(r1.bad).toEqual(expect.arrayContaining([{ path: 'b', reason: expect.stringMatching(/is a hardlink on tape, a file in the manifest/) }]));
    // the manifest says c is a second name of a: the tape holds c as a file
    const linked = m.map((e) => (e.path === 'c' ? { ...e, linkGroup: 1 } : e));
    const r2 = await readTargetFile(fileBlocks(file), { targetId: TARGET.id, manifest: linked });
    expect(r2.bad).toEqual(expect.arrayContaining([{ path: 'c', reason: expect.stringMatching(/is a file on tape, a hard link in the manifest/) }]));
  });

  it('a second name that is no longer the same inode fails the write', async () => {
    const e = await write(source('1:99')).catch((x: unknown) => x);
    expect(e).toBeInstanceOf(SourceChangedError);
    expect((e as SourceChangedError).changes).toEqual([{ path: 'b', reason: 'no longer a hard link of "a" (replaced or relinked since the scan)' }]);
  });

  it('a hard link group whose names disagree in the manifest fails the write (scanned while changing)', async () => {
    const bad = m.map((e) => (e.path === 'b' ? { ...e, sha256: sha('other') } : e));
    const w = await PlainFileWriter.create(join(work, `group-${++seq}.tar`));
    const e = await writeTargetFile({ writer: w, header: headerFor(bad), source: source() }).catch((x: unknown) => x);
    expect(e).toBeInstanceOf(SourceChangedError);
    expect((e as SourceChangedError).changes).toEqual([{ path: 'b', reason: expect.stringMatching(/a hard link of "a" with another size or checksum/) }]);
  });

  it('an entry in the final listing that is not in the manifest fails the write', async () => {
    const out = join(work, `listing-${++seq}.tar`);
    const w = await PlainFileWriter.create(out);
    const listing = async function* () {
      yield* m.map((x) => ({ path: x.path, type: x.type }));
      yield { path: 'late', type: 'file' as const };
    };
    const e = await writeTargetFile({ writer: w, header: headerFor(m), source: source(), listing }).catch((x: unknown) => x);
    expect(e).toBeInstanceOf(SourceChangedError);
    expect((e as SourceChangedError).changes).toEqual([{ path: 'late', reason: 'added since the scan (a new file): not in the manifest' }]);
  });
});
