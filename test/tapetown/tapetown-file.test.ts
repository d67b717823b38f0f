import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readTapetownFile } from '../../src/lib/tape-format/tapetown-file.ts';
import { planAdoption, type AdoptPlan } from '../../src/lib/tapetown/adopt-plan.ts';
import { openTapetownDatabase } from '../../src/lib/tapetown/database.ts';
import { makeTapetownArchive, type TapetownFixture } from '../support/tapetown-fixture.ts';

const run = promisify(execFile);
let dir: string;
let fx: TapetownFixture;
let plan: AdoptPlan;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'tt-file-'));
  fx = await makeTapetownArchive(join(dir, 'a'));
  const db = await openTapetownDatabase(fx.dbPath);
  plan = planAdoption(db, { host: 'h', pool: 'tapetown', policy: ['primary'], now: 'now', catalog: { tapes: new Map(), targets: new Map() } });
  db.close();
});
afterAll(async () => {
  if (dir) await rm(dir, { recursive: true, force: true });
});

/** The tape file as variable blocks of odd sizes, as ssh's writes left them. */
async function* blocks(bytes: Buffer): AsyncGenerator<Buffer> {
  for (let at = 0, n = 1; at < bytes.length; at += 7000 + 513 * n++) yield bytes.subarray(at, at + 7000 + 513 * n);
}
const adopted = (path: string) => plan.targets.find((t) => t.target.path === path)!;
const expectation = (path: string) => {
  const t = adopted(path);
  return { targetPath: path, excludes: t.target.excludes ?? [], ...(t.target.adopted?.fileList ? { adopted: t.entries } : {}) };
};
const fileOf = (path: string) => {
  const t = fx.targets.find((x) => x.path === path)!;
  return join(fx.tapesDir, t.backup!.tape, `file${String(t.backup!.fileNumber).padStart(5, '0')}.tar`);
};

describe('reading back a tape file tapetown wrote', () => {
  it('checks every md5 and measures what tapetown never kept: exact sizes, modes, mtimes, links, SHA-256', async () => {
    const parent = fx.targets.find((t) => fx.targets.some((c) => c.parentId === t.id))!;
    const bytes = await readFile(fileOf(parent.path));
    const r = await readTapetownFile(blocks(bytes), expectation(parent.path));
    expect(r.bad).toEqual([]);
    expect(r.ok).toBe(true);
    expect(r.tapeBytes).toBe(bytes.length);
    expect(r.sha256).toBe((await run('sha256sum', [fileOf(parent.path)])).stdout.slice(0, 64));
    // Every file of the files table, with the size and SHA-256 of the file on the data host.
    for (const f of parent.files) {
      const e = r.entries.find((x) => x.path === f.name)!;
      if (f.md5 === 'symlink') {
        expect(e.type).toBe('symlink');
        expect(e.linkTarget).toBeTruthy();
        continue;
      }
      const local = await readFile(join(parent.path, f.name));
      expect([e.md5, e.size, e.sha256]).toEqual([f.md5, local.length, (await run('sha256sum', [join(parent.path, f.name)])).stdout.slice(0, 64)]);
      expect(e.mtimeMs).toBe(Date.parse('2019-06-01T00:00:00Z'));
    }
    expect(r.entries.some((e) => e.type === 'dir')).toBe(true);
  });

  it('fails on a flipped byte, a file missing from the tape, a partial tar; another file is not this one', async () => {
    const calib = fx.targets.find((t) => t.files.some((f) => f.sizeKb > 100))!;
    const bytes = Buffer.from(await readFile(fileOf(calib.path)));
    const big = calib.files.find((f) => f.sizeKb > 100)!;
    const header = bytes.indexOf(Buffer.from(`${calib.path.slice(1)}/${big.name}`));
    expect(header).toBeGreaterThanOrEqual(0);
    bytes[header + 512 + 1000]! ^= 0x01; // inside its data, after its 512-byte header

    const flipped = await readTapetownFile(blocks(bytes), expectation(calib.path));
    expect(flipped.ok).toBe(false);
    expect(flipped.bad[0]!.reason).toMatch(/md5 mismatch: tapetown recorded [0-9a-f]{32}, the tape gives [0-9a-f]{32}/);

    const exp = expectation(calib.path);
    const missing = await readTapetownFile(blocks(await readFile(fileOf(calib.path))), {
      ...exp,
      adopted: [...exp.adopted!, { path: 'gone.dat', type: 'file', size: 0, mtimeMs: 0, mode: 0, md5: 'a'.repeat(32) }],
    });
    expect(missing.bad).toEqual([{ path: 'gone.dat', reason: "in the target's file list but missing from the tape file" }]);

    const partial = await readTapetownFile(blocks(await readFile(fx.partial.path)), { targetPath: fx.partial.targetPath, excludes: [] });
    expect(partial.ok).toBe(false);
    expect(partial.bad.map((b) => b.reason)).toContain('the tape file ends inside a member: a partial tar (an archive that did not complete)');

    const other = await readTapetownFile(blocks(await readFile(fileOf(calib.path))), { targetPath: '/somewhere/else', excludes: [] });
    expect(other.notThisFile).toMatch(/its first member is .*, not the directory \/somewhere\/else itself/);
  });

  it('a target tapetown had no file list for (--no-scan) takes its baseline from the tape', async () => {
    const noScan = fx.targets.find((t) => t.scanned === 1 && !t.files.length && t.backup)!;
    const r = await readTapetownFile(blocks(await readFile(fileOf(noScan.path))), expectation(noScan.path));
    expect(r).toMatchObject({ ok: true, baseline: true });
    expect(r.fileCount).toBeGreaterThan(0);
    const listed = (await run('tar', ['-tf', fileOf(noScan.path)])).stdout.trim().split('\n').length;
    expect(r.entries.length).toBe(listed - 1); // all but the target directory itself
  });

  it('read again after a confirm here: the measured manifest (directories, sizes, SHA-256) passes, and a changed SHA-256 fails', async () => {
    const parent = fx.targets.find((t) => fx.targets.some((c) => c.parentId === t.id))!;
    const bytes = await readFile(fileOf(parent.path));
    const first = await readTapetownFile(blocks(bytes), expectation(parent.path));
    expect(first.entries.some((e) => e.type === 'dir')).toBe(true);
    const again = await readTapetownFile(blocks(bytes), { ...expectation(parent.path), adopted: first.entries });
    expect(again.bad).toEqual([]);
    const changed = first.entries.map((e) => (e.type === 'file' && e.size > 0 ? { ...e, sha256: '0'.repeat(64) } : e));
    const bad = await readTapetownFile(blocks(bytes), { ...expectation(parent.path), adopted: changed });
    expect(bad.bad[0]!.reason).toMatch(/checksum mismatch: the catalog has SHA-256 0{64}, the tape gives [0-9a-f]{64}/);
  });

  it("a parent's expectation on its child's tape file is not this file (the first member must be the target directory itself)", async () => {
    const child = fx.targets.find((t) => t.parentId !== undefined)!;
    const parent = fx.targets.find((t) => t.id === child.parentId)!;
    const r = await readTapetownFile(blocks(await readFile(fileOf(child.path))), { targetPath: parent.path, excludes: [child.path] });
    expect(r.ok).toBe(false);
    expect(r.notThisFile).toMatch(/not the directory .* itself/);
  });

  it('a target path that is not ASCII is matched as bytes', async () => {
    const root = join(dir, 'utf8');
    const target = join(root, 'caf\u00e9 \u00fc');
    await run('mkdir', ['-p', join(target, 'sub')]);
    await run('sh', ['-c', 'printf hello > "$1/sub/a.txt"', 'sh', target]);
    const tar = join(dir, 'utf8.tar');
    await run('tar', ['-c', '--format=gnu', '-f', tar, target]);
    const r = await readTapetownFile(blocks(await readFile(tar)), { targetPath: target, excludes: [] });
    expect(r.bad).toEqual([]);
    expect(r.entries.map((e) => e.path)).toEqual(['sub', 'sub/a.txt']);
  });
});
