/**
 * Issue 12 end to end: restore with the real agent process, the real results pump and the
 * virtual tape library. Hostile names, a file, a subtree and a whole target restored and
 * compared byte for byte with the source (content, mode, mtime, symlink targets, hard links,
 * empty directories, ownership as root); resume after kill -9; a flipped byte on tape; a copy
 * whose tape cannot be read and the restore finished from the other copy; cancel.
 */
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chown, link, lstat, mkdir, readFile, rm, symlink, utimes, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createHarness, type Harness } from '../support/agent-harness.ts';
import { createTestStack, type TestStack } from '../support/test-stack.ts';
import { sshHostConfig, startSshd, type SshdFixture } from '../support/sshd.ts';
import { comparable, snapshotTree, type TreeSnapshot } from '../support/tree-snapshot.ts';
import { waitUntil } from '../support/wait.ts';

let stack: TestStack;
let h: Harness;
let sshd: SshdFixture;
const agentConfig = () => ({ sshHosts: { datahost: sshHostConfig(sshd) } });

beforeAll(async () => {
  stack = await createTestStack();
  h = await createHarness(stack);
  sshd = await startSshd();
  await h.startAgent(agentConfig());
});
afterAll(async () => {
  await h?.close();
  await sshd?.stop();
  await stack?.close();
});

const raw = (dir: string, name: number[] | string) => Buffer.concat([Buffer.from(`${dir}/`), Buffer.from(name as never)]);
const T2003 = new Date('2003-03-03T03:03:03Z');
const isRoot = process.getuid?.() === 0;

async function ok(args: string[]) {
  const r = await h.cli(args);
  expect(r.code, `${args.join(' ')}: ${r.out}\n${r.err}`).toBe(0);
  return r;
}

/** Names that break scripts: spaces, quotes, a newline, a leading dash, non-UTF-8 bytes, long names; links of every kind; an empty dir. */
async function makeHostileTree(root: string): Promise<void> {
  const deep = join(root, 'deep', 'a'.repeat(120), 'b'.repeat(120));
  await mkdir(deep, { recursive: true });
  await mkdir(join(root, 'sub', 'empty dir'), { recursive: true });
  await writeFile(join(root, 'with space.txt'), 'spaces\n');
  await writeFile(join(root, `quote's "double".txt`), 'quotes\n');
  await writeFile(join(root, 'new\nline'), 'newline in the name\n');
  await writeFile(join(root, '-leading-dash'), 'dash\n');
  await writeFile(raw(root, [0x6e, 0xe9, 0xff, 0x2e, 0x64]), 'latin-1 and a stray byte\n');
  await writeFile(join(deep, `${'c'.repeat(200)}.dat`), randomBytes(70_000));
  await writeFile(join(root, 'sub', 'big.bin'), randomBytes(3_000_000));
  await writeFile(join(root, 'sub', 'empty'), '');
  await writeFile(join(root, 'a.dat'), 'three names, one inode\n');
  await link(join(root, 'a.dat'), join(root, 'sub', 'a-link.dat'));
  await link(join(root, 'a.dat'), join(root, 'z-third.dat'));
  await symlink('../a.dat', join(root, 'sub', 'rel-link'));
  await symlink('/etc/passwd', join(root, 'abs-link'));
  await symlink(Buffer.from([0x74, 0xff]), raw(root, 'odd-link'));
  if (isRoot) await chown(join(root, 'with space.txt'), 1234, 5678);
  execFileSync('chmod', ['0640', join(root, 'with space.txt')]);
  execFileSync('chmod', ['0700', join(root, 'sub', 'empty dir')]);
  await utimes(join(root, 'sub', 'empty dir'), T2003, T2003);
  await utimes(join(root, 'sub'), T2003, T2003);
  await utimes(root, T2003, T2003);
}

/** Imports `path` (policy `copies`), archives and confirms it on fresh tapes, one per pool. */
async function archived(name: string, path: string, pools: string[]): Promise<string> {
  for (const pool of pools) {
    const tape = `${name}-${pool}`;
    await h.vtl.createTape(tape, { capacityBytes: 200_000_000 });
    await ok(['open_tape', '--new', tape, '--pool', pool]);
  }
  const list = join(h.dir, `${name}.txt`);
  await writeFile(list, `${path}\n`);
  const imported = await ok(['--json', 'import', list, '--copies', pools.join(',')]);
  const id = (JSON.parse(imported.out) as { imported: { id: string }[] }).imported[0]!.id;
  await waitUntil(
    async () =>
      JSON.parse((await h.cli(['--json', 'targets'])).out).targets.some((t: { id: string; status: string }) => t.id === id && t.status !== 'imported'),
    30_000,
    `scan of ${path}`,
  );
  for (const pool of pools) {
    const tape = `${name}-${pool}`;
    await ok(['assign', tape, '--target', id]);
    await ok(['archive', '--pool', pool]);
    await ok(['confirm', 'next', '--tape', tape]);
  }
  return id;
}

function subset(s: TreeSnapshot, prefix: string): [string, unknown][] {
  return comparable(s)
    .entries.filter(([k]) => k === prefix || k.startsWith(`${prefix}/`))
    .map(([k, v]) => [k, { ...v, hardLinks: undefined }]);
}

describe('restore', () => {
  let src: string;
  let id: string;
  let before: TreeSnapshot;

  beforeAll(async () => {
    src = join(h.dir, 'data', 'hostile');
    await makeHostileTree(src);
    before = await snapshotTree(src);
    id = await archived('hostile', src, ['primary', 'offsite']);
  }, 120_000);

  it('restores a whole target byte for byte: names, content, mode, mtime, symlinks, hard links, empty dirs, owners', async () => {
    const to = join(h.dir, 'restored-whole');
    const r = await ok(['restore', id, '--to', to]);
    expect(r.out).toMatch(/complete and verified: \d+ restored/);
    expect(r.out).toMatch(/0 failed/);
    const after = await snapshotTree(to);
    expect(comparable(after)).toEqual(comparable(before));
    if (isRoot) expect(await lstat(join(to, 'with space.txt'))).toMatchObject({ uid: 1234, gid: 5678 });
    // nothing but the target: no temporary files left
    expect(after.entries.size).toBe(before.entries.size);

    // again: everything is there and identical, so nothing is written
    const again = await ok(['--json', 'restore', id, '--to', to]);
    const res = JSON.parse(again.out).results[0].restore;
    expect(res).toMatchObject({ restored: 0, failed: 0 });
    expect(res.skipped).toBe(before.entries.size);
  });

  it('restores one file and one subtree, with their parents made and nothing else', async () => {
    const one = join(h.dir, 'restored-one');
    await ok(['restore', id, 'sub/big.bin', '--to', one]);
    expect((await readFile(join(one, 'sub', 'big.bin'))).equals(await readFile(join(src, 'sub', 'big.bin')))).toBe(true);
    expect(comparable(await snapshotTree(one)).entries.map(([k]) => k)).toEqual(['sub', 'sub/big.bin']);

    const tree = join(h.dir, 'restored-sub');
    const r = await ok(['--json', 'restore', id, './sub/', '--to', tree]);
    expect(JSON.parse(r.out).results[0].restore).toMatchObject({ restored: 6, skipped: 0, failed: 0 });
    const got = await snapshotTree(tree);
    expect(subset(got, 'sub')).toEqual(subset(before, 'sub'));
    // sub/a-link.dat is a hard link whose first name (a.dat) is outside the selection: its data is restored under it
    expect(await readFile(join(tree, 'sub', 'a-link.dat'), 'utf8')).toBe('three names, one inode\n');
    expect(
      comparable(got)
        .entries.map(([k]) => k)
        .every((k) => k.startsWith('sub')),
    ).toBe(true);
  });

  it('restores to a data host over SSH byte for byte; again, it finds everything in place', async () => {
    const to = join(h.dir, 'restored-ssh');
    const r = await ok(['restore', id, '--to', `datahost:${to}`]);
    expect(r.out).toMatch(new RegExp(`to datahost:${to} complete and verified: \\d+ restored`));
    expect(comparable(await snapshotTree(to))).toEqual(comparable(before));
    if (isRoot) expect(await lstat(join(to, 'with space.txt'))).toMatchObject({ uid: 1234, gid: 5678 });
    const again = JSON.parse((await ok(['--json', 'restore', id, '--to', `datahost:${to}`])).out).results[0].restore;
    expect(again).toMatchObject({ restored: 0, failed: 0, skipped: before.entries.size });
    // a subtree, and a changed file left alone without --overwrite
    await writeFile(join(to, 'sub', 'empty'), 'changed\n');
    const sub = await h.cli(['restore', id, 'sub', '--to', `datahost:${to}`]);
    expect(sub.code).toBe(1);
    expect(sub.out).toMatch(/"sub\/empty".*not overwritten/);
    await ok(['restore', id, 'sub', '--to', `datahost:${to}`, '--overwrite']);
    expect(comparable(await snapshotTree(to))).toEqual(comparable(before));
  });

  it('refuses bad input and changes nothing', async () => {
    const to = join(h.dir, 'restored-bad');
    const notThere = await h.cli(['restore', id, 'no/such/file', '--to', to]);
    expect(notThere.code).toBe(1);
    expect(notThere.err).toMatch(/has no "no\/such\/file".*where_is/);
    const dotdot = await h.cli(['restore', id, '../etc', '--to', to]);
    expect(dotdot.code).toBe(2);
    expect(dotdot.err).toMatch(/"\.\." component/);
    const relative = await h.cli(['restore', id, '--to', 'relative/dir']);
    expect(relative.code).toBe(2);
    expect(relative.err).toMatch(/absolute DIR/);
    const unknown = await h.cli(['restore', 'no-such-target', '--to', to]);
    expect(unknown.code).toBe(1);
    expect(unknown.err).toMatch(/not in the catalog/);
    const noPool = await h.cli(['restore', id, '--to', to, '--from', 'nosuchpool']);
    expect(noPool.code).toBe(1);
    expect(noPool.err).toMatch(/no confirmed copy in pool or on tape nosuchpool/);
    await expect(lstat(to)).rejects.toThrow(/ENOENT/);
  });

  it('leaves an existing different file alone unless --overwrite', async () => {
    const to = join(h.dir, 'restored-over');
    await mkdir(to, { recursive: true });
    await writeFile(join(to, '-leading-dash'), 'local edit\n');
    // a name with a leading dash comes after "--", as for any command
    const r = await h.cli(['restore', id, '--to', to, '--', '-leading-dash', 'a.dat']);
    expect(r.code).toBe(1);
    expect(r.out).toMatch(/"-leading-dash".*exists in the destination; not overwritten \(use --overwrite/);
    expect(await readFile(join(to, '-leading-dash'), 'utf8')).toBe('local edit\n');
    expect(await readFile(join(to, 'a.dat'), 'utf8')).toBe('three names, one inode\n');
    await ok(['restore', id, '--to', to, '--overwrite', '--', '-leading-dash']);
    expect(await readFile(join(to, '-leading-dash'), 'utf8')).toBe('dash\n');
  });

  it('a flipped byte on tape fails that file by name; the others are restored', async () => {
    const tape = 'hostile-primary';
    const file = h.vtl.tapeFilePath(tape, 1);
    const bytes = await readFile(file);
    // the first byte of sub/big.bin's data: after its header in the tape file
    const at = bytes.indexOf(await readFile(join(src, 'sub', 'big.bin')).then((b) => b.subarray(0, 64)));
    expect(at).toBeGreaterThan(0);
    await h.vtl.injectFault(tape, { kind: 'flip-byte', fileNumber: 1, offset: at + 1000 });
    try {
      const to = join(h.dir, 'restored-flip');
      const r = await h.cli(['restore', id, '--to', to, '--from', 'primary']);
      expect(r.code).toBe(1);
      expect(r.out).toMatch(/FAILED: \d+ restored .* 1 failed/);
      expect(r.out).toMatch(/"sub\/big\.bin".*checksum mismatch/);
      await expect(lstat(join(to, 'sub', 'big.bin'))).rejects.toThrow(/ENOENT/);
      expect(await readFile(join(to, 'a.dat'), 'utf8')).toBe('three names, one inode\n');
      // the other copy fills the gap
      const fix = await ok(['--json', 'restore', id, '--to', to, '--from', 'offsite']);
      expect(JSON.parse(fix.out).results[0].restore).toMatchObject({ restored: 1, failed: 0 });
      expect(comparable(await snapshotTree(to))).toEqual(comparable(before));
    } finally {
      for (const f of await h.vtl.listFaults(tape)) await h.vtl.removeFault(tape, f.id);
    }
  });

  it('a read error on the first copy says so; restore --from the other copy completes it', async () => {
    const tape = 'hostile-primary';
    await h.vtl.injectFault(tape, { kind: 'read-error', fileNumber: 1, afterBytes: 2_000_000 });
    try {
      const to = join(h.dir, 'restored-ioerror');
      const r = await h.cli(['restore', id, '--to', to]);
      expect(r.code).toBe(1);
      expect(r.out).toMatch(/from hostile-primary .*FAILED.*read error on tape hostile-primary.*--from another copy/s);
      const fix = await ok(['restore', id, '--to', to, '--from', 'offsite']);
      expect(fix.out).toMatch(/complete and verified/);
      expect(comparable(await snapshotTree(to))).toEqual(comparable(before));
    } finally {
      for (const f of await h.vtl.listFaults(tape)) await h.vtl.removeFault(tape, f.id);
    }
  });
});

describe('restore interrupted', () => {
  it('kill -9 of the agent mid-restore, then the restore again: every file restored and verified', async () => {
    const src = join(h.dir, 'data', 'many');
    for (let i = 0; i < 40; i++) {
      await mkdir(join(src, `d${i % 4}`), { recursive: true });
      await writeFile(join(src, `d${i % 4}`, `f${i}.bin`), randomBytes(100_000));
    }
    const before = await snapshotTree(src);
    const id = await archived('many', src, ['default']);
    await h.vtl.injectFault('many-default', { kind: 'slow', bytesPerSecond: 1_000_000 });
    const to = join(h.dir, 'restored-many');
    const req = JSON.parse((await ok(['--json', 'restore', id, '--to', to, '--no-wait'])).out);
    const taskId = req.tasks[0].taskId as string;
    const agent = h.agents[0]!;
    await waitUntil(async () => JSON.parse((await h.cli(['--json', 'task', taskId])).out).bytesDone > 1_000_000, 30_000, 'restore under way');
    agent.proc.kill('SIGKILL');
    await agent.stop();
    for (const f of await h.vtl.listFaults('many-default')) await h.vtl.removeFault('many-default', f.id);
    const partial = await snapshotTree(to);
    expect(partial.entries.size).toBeLessThan(before.entries.size);
    await h.startAgent(agentConfig());
    // the killed task's message comes back to the new agent and finishes; a second restore then finds all in place
    const done = JSON.parse((await ok(['--json', 'task', taskId, '--wait'])).out);
    expect(done).toMatchObject({ state: 'succeeded', restore: { failed: 0 } });
    expect(comparable(await snapshotTree(to))).toEqual(comparable(before));
    const again = JSON.parse((await ok(['--json', 'restore', id, '--to', to])).out);
    expect(again.results[0].restore).toMatchObject({ restored: 0, failed: 0, skipped: before.entries.size });
  }, 120_000);

  it('cancel stops a running restore; run again, it finishes', async () => {
    const src = join(h.dir, 'data', 'many');
    const id = JSON.parse((await h.cli(['--json', 'targets'])).out).targets.find((t: { path: string }) => t.path === src).id as string;
    await h.vtl.injectFault('many-default', { kind: 'slow', bytesPerSecond: 500_000 });
    const to = join(h.dir, 'restored-cancel');
    const req = JSON.parse((await ok(['--json', 'restore', id, '--to', to, '--no-wait'])).out);
    const taskId = req.tasks[0].taskId as string;
    await waitUntil(async () => JSON.parse((await h.cli(['--json', 'task', taskId])).out).bytesDone > 500_000, 30_000, 'restore under way');
    expect((await ok(['cancel', taskId])).out).toMatch(/cancel of restore .* requested/);
    const done = JSON.parse((await h.cli(['--json', 'task', taskId, '--wait'])).out);
    expect(done).toMatchObject({ state: 'failed', outcome: 'cancelled' });
    expect(done.message).toMatch(/cancelled: .* run the same restore again/);
    // what it left is whole: no temporary file, every file there equal to its source
    const left = await snapshotTree(to);
    for (const [k, v] of left.entries) {
      const name = Buffer.from(k, 'base64').toString('latin1');
      expect(name).not.toMatch(/\.tape-restore-/);
      if (v.type === 'file') expect(v.sha256).toBe((await snapshotTree(src)).entries.get(k)?.sha256);
    }
    expect(left.entries.size).toBeLessThan(44);
    const again = await h.cli(['cancel', taskId]);
    expect(again.code).toBe(1);
    expect(again.err).toMatch(/already finished; nothing to cancel/);
    for (const f of await h.vtl.listFaults('many-default')) await h.vtl.removeFault('many-default', f.id);
    await ok(['restore', id, '--to', to]);
    expect(comparable(await snapshotTree(to))).toEqual(comparable(await snapshotTree(src)));
    await rm(to, { recursive: true, force: true });
  }, 120_000);
});
