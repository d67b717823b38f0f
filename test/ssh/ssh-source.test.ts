/**
 * SshDataSource against a real OpenSSH server (Debian's sshd, started per file): scan and
 * stream of hostile names, command-injection canaries, bounded channels, changes after the
 * scan. Needs /usr/sbin/sshd (apt-get install -y openssh-server): missing = failure.
 */
import { existsSync, readdirSync } from 'node:fs';
import { appendFile, chmod, mkdir, mkdtemp, rm, truncate, writeFile } from 'node:fs/promises';
import { homedir, tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { pathBytes, type ManifestEntry } from '../../src/lib/domain/manifest.ts';
import { SourceUnavailableError } from '../../src/lib/source/data-source.ts';
import { RemoteCommandError, type SshDataSource } from '../../src/lib/source/ssh-source.ts';
import { SourceChangedError } from '../../src/lib/tape-format/index.ts';
import { scanLocalDirectory } from '../../src/lib/source/local-directory.ts';
import { startSshd, type SshdFixture } from '../support/sshd.ts';
import { archiveTo, collect, gnuExtract, makeHostileTree, sourceFor, strip } from './helpers.ts';

let sshd: SshdFixture;
let work: string;
let src: SshDataSource;

beforeAll(async () => {
  sshd = await startSshd();
  work = await mkdtemp(join(tmpdir(), 'ssh-source-test-'));
  src = sourceFor(sshd);
});

afterAll(async () => {
  await src?.close();
  await sshd?.stop();
  if (work) await rm(work, { recursive: true, force: true });
});

describe('scan and stream over SSH', () => {
  it('scans a hostile tree exactly like the local scan, and streams it byte-exact through writeTargetFile', async () => {
    const root = join(work, 'hostile');
    await makeHostileTree(root);
    const local = await collect(scanLocalDirectory(root));
    const remote = await collect(src.scan(root));

    expect(remote.map(strip)).toEqual(local.map(strip));
    for (let i = 0; i < local.length; i++) expect(Math.abs(remote[i]!.mtimeMs - local[i]!.mtimeMs)).toBeLessThan(1000);
    // the tricky ones are really there
    const keys = new Set(remote.map((e) => pathBytes(e).toString('latin1')));
    for (const n of ['-rf', 'new\nline.txt', 'a\n-rf\n', 'back`tick`.txt', 'semi;colon; rm -rf x', 'empty-dir', 'empty-file', 'L'.repeat(150)]) {
      expect(keys.has(n), n).toBe(true);
    }
    expect(keys.has(Buffer.from([0x78, 0xff, 0xfe, 0x79]).toString('latin1'))).toBe(true);
    expect(remote.find((e) => e.path === 'link-to-file')).toMatchObject({ type: 'symlink', linkTarget: 'sub/file.txt' });
    expect(remote.find((e) => e.path === 'empty-file')).toMatchObject({ type: 'file', size: 0 });
    expect(remote.find((e) => e.path === 'empty-dir')).toMatchObject({ type: 'dir', size: 0 });
    expect(remote.some((e) => e.rawPath !== undefined)).toBe(true);
    expect(remote.find((e) => e.path === 'long-link')?.linkTarget).toHaveLength(147);
    // a hard link: both names in one link group (the first name in manifest order carries the data)
    const group = remote.find((e) => e.path === 'hard-link-to-file.txt')?.linkGroup;
    expect(remote.find((e) => e.path === 'hard-link-to-file.txt')).toMatchObject({ type: 'file', size: 6, linkGroup: expect.any(Number) });
    expect(remote.find((e) => e.path === 'sub/file.txt')).toMatchObject({ type: 'file', size: 6, linkGroup: group });

    const out = join(work, 'hostile.tar');
    const { trailer } = await archiveTo(out, root, remote, src.stream(root, remote));
    expect(trailer.fileCount).toBe(remote.filter((e) => e.type === 'file').length - 1); // the second name is a tar hard link

    const x = join(work, 'hostile-extract');
    await mkdir(x);
    gnuExtract(out, x);
    const back = await collect(scanLocalDirectory(join(x, 'data')));
    expect(back.map(strip)).toEqual(local.map(strip));

    // a manifest without link groups (scanned by release 0.1): every name is a file with content
    const old = remote.map(({ linkGroup: _, ...e }) => e);
    const { trailer: t2 } = await archiveTo(join(work, 'hostile-old.tar'), root, old, src.stream(root, old));
    expect(t2.fileCount).toBe(old.filter((e) => e.type === 'file').length);
  });

  it('never runs a command from the target path or a file name (canaries)', async () => {
    const base = join(work, 'canary');
    const hostilePath = join(base, `x/$(touch CANARY);'; touch CANARY2 #`, `\`touch CANARY3\`" && touch ${base}/CANARY4; echo '`);
    await mkdir(hostilePath, { recursive: true });
    const names = [
      '-rf',
      '--version',
      '$(touch CANARY5)',
      '`touch CANARY6`',
      "'; touch CANARY7; '",
      '"; touch CANARY8; "',
      ';touch CANARY9',
      '-exec touch CANARY10 ;',
      'x\n$(touch CANARY11)\n',
    ];
    for (const n of names) await writeFile(join(hostilePath, n), n);
    await mkdir(join(hostilePath, '--files-from=-'));
    await writeFile(join(hostilePath, '--files-from=-', '-T'), 'x');

    const manifest = await collect(src.scan(hostilePath));
    expect(manifest.map((e) => e.path).sort()).toEqual([...names, '--files-from=-', '--files-from=-/-T'].sort());
    const out = join(work, 'canary.tar');
    await archiveTo(out, hostilePath, manifest, src.stream(hostilePath, manifest));

    const canary = /^CANARY\d*$/;
    const dirs = [homedir(), tmpdir(), process.cwd(), work, base, hostilePath, join(base, 'x')];
    const walk = (d: string): string[] =>
      readdirSync(d, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? walk(join(d, e.name)) : canary.test(e.name) ? [join(d, e.name)] : []));
    for (const d of dirs)
      expect(
        readdirSync(d).filter((n) => canary.test(n)),
        d,
      ).toEqual([]);
    expect(walk(base)).toEqual([]);
    expect(existsSync(join(base, 'CANARY4'))).toBe(false);
  });

  it('bounds the channels open at once per host (maxConcurrentChannels)', async () => {
    const root = join(work, 'many');
    for (let d = 0; d < 10; d++) {
      await mkdir(join(root, `d${d}`), { recursive: true });
      for (let f = 0; f < 100; f++) await writeFile(join(root, `d${d}`, `f${f}`), `${d}/${f}\n`.repeat(50));
    }
    let open = 0;
    let maxOpen = 0;
    const limited = sourceFor(sshd, {
      maxConcurrentChannels: 2,
      onChannel: (_ev, n) => {
        open = n;
        maxOpen = Math.max(maxOpen, open);
      },
    });
    try {
      const manifest = await collect(limited.scan(root));
      const runs = await Promise.all([
        ...Array.from({ length: 4 }, () => collect(limited.scan(root))),
        ...Array.from({ length: 3 }, async () => {
          let files = 0;
          for await (const se of limited.stream(root, manifest)) {
            if (se.content) for await (const _c of se.content as AsyncIterable<Buffer>) void _c;
            if (se.entry.type === 'file') files++;
          }
          return files;
        }),
      ]);
      for (const r of runs.slice(0, 4)) expect(r).toEqual(manifest);
      for (const r of runs.slice(4)) expect(r).toBe(1000);
      const stats = limited.channelStats();
      expect(maxOpen).toBeLessThanOrEqual(2);
      expect(stats.peak).toBe(2); // the limit was reached, so it was what held the others back
      expect(stats.opened).toBe(2 + 4 * 2 + 3); // a scan uses two channels (listing and checksums)
      expect(stats.open).toBe(0);
      expect(stats.connects).toBe(1); // one shared connection
    } finally {
      await limited.close();
    }
  });

  it('a file changed, grown, shrunk or deleted after the scan fails the tape file with SourceChangedError', async () => {
    const root = join(work, 'changes');
    await mkdir(join(root, 'd'), { recursive: true });
    for (const n of ['same', 'edited', 'grown', 'shrunk', 'deleted']) await writeFile(join(root, 'd', n), `${n} `.repeat(1000));
    const manifest = await collect(src.scan(root));
    await writeFile(join(root, 'd', 'edited'), 'EDITED '.repeat(1000).slice(0, 'edited '.length * 1000)); // same size, new content
    await appendFile(join(root, 'd', 'grown'), 'more');
    await truncate(join(root, 'd', 'shrunk'), 10);
    await rm(join(root, 'd', 'deleted'));

    const err = await archiveTo(join(work, 'changes.tar'), root, manifest, src.stream(root, manifest)).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(SourceChangedError);
    const changes = (err as SourceChangedError).changes;
    const byPath = Object.fromEntries(changes.map((c) => [c.path, c.reason]));
    expect(Object.keys(byPath).sort()).toEqual(['d/deleted', 'd/edited', 'd/grown', 'd/shrunk']);
    expect(byPath['d/edited']).toMatch(/content changed/);
    expect(byPath['d/grown']).toMatch(/size changed/);
    expect(byPath['d/deleted']).toMatch(/missing/);
  });

  it('a missing or non-directory target is a SourceUnavailableError naming it', async () => {
    const missing = join(work, 'no such dir');
    const e1 = await collect(src.scan(missing)).catch((e: unknown) => e);
    expect(e1).toBeInstanceOf(SourceUnavailableError);
    expect((e1 as Error).message).toContain(missing);
    expect((e1 as Error).message).toMatch(/the target does not exist/);
    await writeFile(join(work, 'plain-file'), 'x');
    const e2 = await collect(src.scan(join(work, 'plain-file'))).catch((e: unknown) => e);
    expect(e2).toBeInstanceOf(RemoteCommandError);
    expect((e2 as Error).message).toMatch(/the target is not a directory/);
    const m: ManifestEntry[] = [{ path: 'a', type: 'file', size: 1, mtimeMs: 0, mode: 0o644, sha256: '0'.repeat(64) }];
    const e3 = await collect(src.stream(missing, m)).catch((e: unknown) => e);
    expect(e3).toBeInstanceOf(SourceUnavailableError);
  });

  it('lists the directories at a given depth, like the local source', async () => {
    const root = join(work, 'tree-of-dirs');
    for (const d of ['b/x', 'a/z', 'a/y y', 'a/-n', 'c']) await mkdir(join(root, d), { recursive: true });
    await writeFile(join(root, 'a', 'file'), 'not a dir');
    const { LocalDataSource } = await import('../../src/lib/source/local-source.ts');
    const local = new LocalDataSource('here');
    for (const depth of [1, 2]) {
      const remote = await collect(src.listDirectories(root, depth));
      expect(remote).toEqual(await collect(local.listDirectories(root, depth)));
    }
    expect(await collect(src.listDirectories(root, 2))).toEqual(['a/-n', 'a/y y', 'a/z', 'b/x']);
  });

  it('with maxConcurrentChannels 1 a scan runs its two commands one after the other', async () => {
    const root = join(work, 'hostile');
    const one = sourceFor(sshd, { maxConcurrentChannels: 1 });
    try {
      const [a, b] = await Promise.all([collect(one.scan(root)), collect(one.scan(root))]);
      expect(a).toEqual(b);
      expect(a.length).toBeGreaterThan(20);
      expect(one.channelStats()).toMatchObject({ peak: 1, opened: 4, open: 0 });
    } finally {
      await one.close();
    }
  });

  it('an aborted stream rejects with the abort reason and closes its channel', async () => {
    const root = join(work, 'abort');
    await mkdir(root);
    await writeFile(join(root, 'big'), Buffer.alloc(32 * 1024 * 1024, 1));
    await writeFile(join(root, 'small'), 'x');
    const manifest = await collect(src.scan(root));
    const ac = new AbortController();
    const e = await (async () => {
      for await (const se of src.stream(root, manifest, { signal: ac.signal })) {
        if (!se.content) continue;
        for await (const _c of se.content as AsyncIterable<Buffer>) ac.abort(new Error('stop now'));
      }
    })().catch((err: unknown) => err);
    expect((e as Error).message).toBe('stop now');
    await new Promise((r) => setTimeout(r, 200));
    expect(src.channelStats().open).toBe(0);
    // the connection is still good
    expect((await collect(src.scan(root))).length).toBe(2);
  });

  it('the fixture fails (never skips) without sshd, saying how to install it', async () => {
    await expect(startSshd({ sshdPath: join(work, 'no-sshd-here') })).rejects.toThrow(/apt-get install -y openssh-server/);
  });

  it('relative target paths are refused (the remote working directory is not a target)', async () => {
    await expect(collect(src.scan('relative/path'))).rejects.toThrow(/absolute/);
  });

  it('an empty directory scans to an empty manifest and streams an empty archive', async () => {
    const root = join(work, 'empty');
    await mkdir(root);
    await chmod(root, 0o755);
    const m = await collect(src.scan(root));
    expect(m).toEqual([]);
    const { trailer } = await archiveTo(join(work, 'empty.tar'), root, m, src.stream(root, m));
    expect(trailer.fileCount).toBe(0);
  });
});
