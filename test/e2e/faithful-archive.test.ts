/**
 * Issue 8 end to end: a tape file holds exactly the target, or the operator is told what it
 * does not hold. Real agent process, real results pump, the virtual tape library, and the
 * data read from the local file system and over SSH from a real OpenSSH server. Every tape
 * file is extracted with GNU tar in LC_ALL=C and C.UTF-8 and compared with the source: names,
 * content, mode, mtime (the root included), symlink targets as bytes, hard links as links.
 */
import { execFile, execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmod, link, mkdir, rm, symlink, unlink, utimes, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createHarness, type Harness } from '../support/agent-harness.ts';
import { sshHostConfig, startSshd, type SshdFixture } from '../support/sshd.ts';
import { createTestStack, type TestStack } from '../support/test-stack.ts';
import { expectFaithful, extractSnapshot, snapshotTree } from '../support/tree-snapshot.ts';
import { waitUntil } from '../support/wait.ts';
import { targetView } from '../support/catalog-helpers.ts';

const run = promisify(execFile);

let stack: TestStack;
let h: Harness;
let sshd: SshdFixture;

beforeAll(async () => {
  stack = await createTestStack();
  h = await createHarness(stack);
  sshd = await startSshd();
  await h.startAgent({ sshHosts: { datahost: sshHostConfig(sshd) } });
});
afterAll(async () => {
  await h?.close();
  await sshd?.stop();
  await stack?.close();
});

const raw = (dir: string, name: number[] | string) => Buffer.concat([Buffer.from(dir + '/'), Buffer.from(name as never)]);
const T2005 = new Date('2005-06-01T12:00:00Z');
const T2001 = new Date('2001-02-03T04:05:06Z');
const target = (id: string) => targetView(stack, id);
const equal = (a: unknown, b: unknown, what: string) => expect(a, what).toEqual(b);

/** Awkward data: hard links, non-UTF-8 symlink targets, special files, an old 0750 root. */
async function makeAwkwardTree(root: string): Promise<void> {
  await mkdir(join(root, 'sub', 'private'), { recursive: true });
  await writeFile(join(root, 'a.dat'), 'the same inode under three names\n');
  await link(join(root, 'a.dat'), join(root, 'sub', 'a-link.dat'));
  await link(join(root, 'a.dat'), join(root, 'z-third-name.dat'));
  await writeFile(join(root, 'pair-1'), 'two names\n');
  await link(join(root, 'pair-1'), join(root, 'sub', 'pair-2'));
  await writeFile(join(root, 'plain.txt'), 'one name\n');
  await writeFile(join(root, 'empty'), '');
  await symlink(Buffer.from([0x74, 0xff, 0x2f, 0xfe]), raw(root, 'odd-link'));
  await symlink(Buffer.concat([Buffer.from('x'.repeat(120)), Buffer.from([0xff])]), raw(root, 'long-odd-link'));
  await symlink('plain.txt', join(root, 'sub', 'utf8-link'));
  await writeFile(raw(root, [0x6e, 0xe9, 0x2e, 0x74, 0x78, 0x74]), 'latin-1 name\n');
  // special files: skipped by policy, and reported
  execFileSync('mkfifo', [join(root, 'a-fifo')]);
  execFileSync('python3', ['-c', 'import socket,sys; socket.socket(socket.AF_UNIX).bind(sys.argv[1])', join(root, 'sub', 'a-socket')]);
  execFileSync('mknod', [join(root, 'a-chardev'), 'c', '1', '3']);
  await chmod(join(root, 'sub', 'private'), 0o700);
  await chmod(join(root, 'plain.txt'), 0o640);
  await utimes(join(root, 'sub', 'private'), T2001, T2001);
  await utimes(join(root, 'sub'), T2001, T2001);
  await chmod(root, 0o750);
  await utimes(root, T2005, T2005);
}

for (const kind of ['local', 'ssh'] as const) {
  describe(`${kind} source`, () => {
    const dataDir = () => join(h.dir, `data-${kind}`);
    const hostPrefix = kind === 'ssh' ? 'datahost:' : '';

    /** Imports `path`, waits for its scan, and assigns it to a fresh online tape. */
    async function prepare(name: string, path: string): Promise<{ id: string; tape: string }> {
      const list = join(h.dir, `${kind}-${name}.txt`);
      await writeFile(list, `${hostPrefix}${path}\n`);
      const imported = await h.cli(['--json', 'import', list]);
      expect(imported.code, imported.out + imported.err).toBe(0);
      const id = (JSON.parse(imported.out) as { imported: { id: string }[] }).imported[0]!.id;
      await waitUntil(async () => (await target(id)).scan !== 'pending', 30_000, `scan of ${path}`);
      expect((await target(id)).scanError).toBeUndefined();
      const tape = `${kind}-${name}`;
      await h.vtl.createTape(tape, { capacityBytes: 100_000_000 });
      expect((await h.cli(['open_tape', '--new', tape])).code).toBe(0);
      expect((await h.cli(['assign', '--target', id])).out).toMatch(/assigned 1 target/);
      return { id, tape };
    }

    it('archives hard links as links, symlink targets as bytes, the root directory as it is; special files are reported', async () => {
      const src = join(dataDir(), 'awkward');
      await makeAwkwardTree(src);
      const before = await snapshotTree(src);
      const { id, tape } = await prepare('awkward', src);

      // the scan reports every special file: in targets (count) and by name
      const rows = JSON.parse((await h.cli(['--json', 'targets'])).out).targets as {
        id: string;
        skippedCount?: number;
        skipped?: { path: string; reason: string }[];
      }[];
      const row = rows.find((r) => r.id === id)!;
      expect(row.skippedCount).toBe(3);
      expect(row.skipped!.map((s) => s.path).sort()).toEqual(['a-chardev', 'a-fifo', 'sub/a-socket']);
      expect(row.skipped!.find((s) => s.path === 'a-fifo')!.reason).toMatch(/^skipped: a fifo/);
      expect((await h.cli(['targets'])).out).toMatch(/skipped/);

      const archived = await h.cli(['archive']);
      expect(archived.code, archived.out).toBe(0);
      expect(archived.out).toMatch(/3 special file\(s\) not archived \(policy: skipped and reported\): .*"a-chardev" \(a character device\)/);
      const confirmed = await h.cli(['confirm', 'next']);
      expect(confirmed.out).toMatch(/every checksum matches/);

      const file = h.vtl.tapeFilePath(tape, 1);
      await expectFaithful(file, before, equal);
      // the second and later names are tar hard links (typeflag 1) to the first
      const { stdout } = await run('tar', ['-tvf', file], { env: { ...process.env, LC_ALL: 'C' } });
      expect(stdout).toMatch(/^h.* data\/sub\/a-link\.dat link to data\/a\.dat$/m);
      expect(stdout).toMatch(/^h.* data\/z-third-name\.dat link to data\/a\.dat$/m);
      expect(stdout).toMatch(/^drwxr-x--- .* 2005-06-01 12:00 data\/$/m);
      // the tape itself says what it does not hold
      const { header, trailer } = await extractSnapshot(file, 'C');
      expect(header).toMatchObject({ skippedCount: 3, skipped: expect.arrayContaining([expect.objectContaining({ path: 'a-fifo' })]) });
      expect(trailer).toMatchObject({ root: { mode: 0o750, mtimeMs: T2005.getTime() }, fileCount: 5 });
      expect(await target(id)).toMatchObject({ placement: 'confirmed' });
    });

    it('a file added after the scan fails the write; several changes at once are all named', async () => {
      const src = join(dataDir(), 'changing');
      await mkdir(join(src, 'sub'), { recursive: true });
      for (const n of ['keep.txt', 'modify.txt', 'delete.txt', 'sub/a-leader.txt']) await writeFile(join(src, n), `${n}\n`);
      await link(join(src, 'sub', 'a-leader.txt'), join(src, 'sub', 'b-follower.txt'));
      const { id, tape } = await prepare('changing', src);

      // only an addition: today's silent loss
      await writeFile(join(src, 'added-later.txt'), 'not in the manifest\n');
      const first = await h.cli(['archive']);
      expect(first.code).toBe(42);
      expect(first.out).toMatch(/source changed since its scan \(1 file\(s\): added-later\.txt: added since the scan \(a new file\)/);
      expect(await target(id)).toMatchObject({ placement: 'write_failed', lastError: expect.stringMatching(/added-later\.txt/) });
      expect(await h.vtl.countFiles(tape)).toBe(1); // the label only

      // rescan, then four changes at once: modified, deleted, added (a directory with a file), relinked
      expect((await h.cli(['rescan', id])).code).toBe(0);
      await waitUntil(async () => (await target(id)).scan === 'complete', 30_000, 'rescan');
      expect((await h.cli(['assign', '--target', id])).code).toBe(0);
      await writeFile(join(src, 'modify.txt'), 'modified after the scan\n');
      await unlink(join(src, 'delete.txt'));
      await mkdir(join(src, 'new-dir'));
      await writeFile(join(src, 'new-dir', 'inside'), 'x');
      await unlink(join(src, 'sub', 'b-follower.txt'));
      await writeFile(join(src, 'sub', 'b-follower.txt'), 'sub/a-leader.txt\n'); // same content, no longer a link
      const second = await h.cli(['archive']);
      expect(second.code).toBe(42);
      const error = (await target(id)).lastError!;
      for (const name of ['modify.txt', 'delete.txt', 'new-dir', 'new-dir/inside', 'sub/b-follower.txt']) expect(error, name).toContain(`${name}:`);
      expect(error).toMatch(/5 file\(s\)/);
      expect(error).toMatch(/sub\/b-follower\.txt: no longer a hard link of "sub\/a-leader\.txt"/);
      expect(await h.vtl.countFiles(tape)).toBe(1);

      // once settled: rescan, archive, and the tape file is the source
      expect((await h.cli(['rescan', id])).code).toBe(0);
      await waitUntil(async () => (await target(id)).scan === 'complete', 30_000, 'second rescan');
      expect((await h.cli(['assign', '--target', id])).code).toBe(0);
      expect((await h.cli(['archive'])).code).toBe(0);
      expect((await h.cli(['confirm', 'next'])).out).toMatch(/every checksum matches/);
      await expectFaithful(h.vtl.tapeFilePath(tape, 1), await snapshotTree(src), equal);
    });
  });
}

describe('input that would archive the wrong thing, or too much', () => {
  it('an import line with a trailing space is refused with its line number; nothing is imported', async () => {
    await mkdir(join(h.dir, 'ws', 'run'), { recursive: true });
    const list = join(h.dir, 'ws.txt');
    await writeFile(list, `${join(h.dir, 'ws', 'run')}\r\n${join(h.dir, 'ws', 'run')} \r\n`);
    const before = (await stack.ctx.catalog.listAllTargets()).length;
    const r = await h.cli(['import', list]);
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/line 2: ".*\/ws\/run " ends with whitespace; whitespace is part of a directory name on Linux/);
    expect((await stack.ctx.catalog.listAllTargets()).length).toBe(before);
  });

  it('a 5 MB binary file as an import list gets a short message and changes nothing', async () => {
    const bin = join(h.dir, 'data.bin');
    // Starting with a NUL byte, so line 1 is never empty by chance (random data began with a newline 1 time in 256).
    await writeFile(bin, Buffer.concat([Buffer.from([0, 0xff]), randomBytes(5 * 1024 * 1024)]));
    const before = (await stack.ctx.catalog.listAllTargets()).length;
    const r = await h.cli(['import', bin]);
    expect(r.code).not.toBe(0);
    const text = r.out + r.err;
    expect(text.split('\n').length).toBeLessThan(20);
    expect(text.length).toBeLessThan(5000);
    expect(text).toMatch(/line 1: .* and \d+ more invalid line\(s\)/s);
    expect((await stack.ctx.catalog.listAllTargets()).length).toBe(before);
  });

  it('a target larger than the tape is refused at assign and never marks an empty tape full', async () => {
    const src = join(h.dir, 'big');
    await mkdir(src, { recursive: true });
    await writeFile(join(src, 'big.bin'), Buffer.alloc(3_000_000, 7));
    const list = join(h.dir, 'big.txt');
    await writeFile(list, `${src}\n`);
    const id = JSON.parse((await h.cli(['--json', 'import', list])).out).imported[0].id as string;
    await waitUntil(async () => (await target(id)).scan === 'complete', 30_000, 'scan of big');

    // the catalog knows the tape is too small: refused, nothing changes
    await h.vtl.createTape('small', { capacityBytes: 1_000_000 });
    expect((await h.cli(['open_tape', '--new', 'small', '--capacity', '1000000'])).code).toBe(0);
    const refused = await h.cli(['assign', '--target', id]);
    expect(refused.out).toMatch(/not assigned: too large for the tape: 3000000 bytes of data, tape small holds 1000000 bytes/);
    expect(await target(id)).toMatchObject({ placement: 'unassigned' });

    // the catalog's capacity is about the target's size, the cartridge is smaller: too large
    await h.vtl.createTape('tight', { capacityBytes: 1_000_000 });
    expect((await h.cli(['open_tape', '--new', 'tight', '--capacity', '3100000'])).code).toBe(0);
    expect((await h.cli(['assign', '--target', id])).code).toBe(0);
    const r = await h.cli(['archive', '--all']);
    expect(r.code).toBe(42);
    expect(r.out).toMatch(/too large for the tape: 3000000 bytes of data, end of medium after \d+ bytes with nothing else on tight/);
    expect(await stack.ctx.catalog.getTape('tight')).toMatchObject({ state: 'labelled', filesWritten: 0, nextFileNumber: 1 });
    expect(await target(id)).toMatchObject({ placement: 'write_failed', lastError: expect.stringMatching(/too large for the tape/) });

    // a cartridge far smaller than the catalog says: the tape is set aside (never marked full), the target waits
    expect((await h.cli(['rescan', id])).code).toBe(0);
    await waitUntil(async () => (await target(id)).scan === 'complete', 30_000, 'rescan of big');
    await h.vtl.createTape('short', { capacityBytes: 1_000_000 });
    expect((await h.cli(['open_tape', '--new', 'short', '--capacity', '100M'])).code).toBe(0);
    expect((await h.cli(['assign', '--target', id])).code).toBe(0);
    const s2 = await h.cli(['archive']);
    expect(s2.code).toBe(42);
    expect(s2.out).toMatch(
      /end of medium after \d+ bytes with nothing else on short, whose capacity is 100000000 bytes .* the cartridge holds less than the catalog says/,
    );
    const tape = (await stack.ctx.catalog.getTape('short'))!;
    expect(tape).toMatchObject({ state: 'disabled', filesWritten: 0, nextFileNumber: 1, reason: expect.stringMatching(/cartridge/) });
    expect(await target(id)).toMatchObject({ placement: 'assigned', tapeName: 'short' });
    await rm(src, { recursive: true, force: true });
  });
});
