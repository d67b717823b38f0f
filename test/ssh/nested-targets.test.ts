/**
 * Nested targets over SSH (a real OpenSSH server): the scan of a parent leaves out its nested
 * targets (hostile names among them) exactly as the local scan does, its tape file written
 * from that scan holds none of their members (GNU tar -tf), and the writer's check that
 * nothing was added since the scan does not count the nested targets' files as added.
 */
import { execFileSync } from 'node:child_process';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { relativeExcludes } from '../../src/lib/domain/nesting.ts';
import { scanLocalDirectory } from '../../src/lib/source/local-directory.ts';
import type { SshDataSource } from '../../src/lib/source/ssh-source.ts';
import { SourceChangedError, writeTargetFile } from '../../src/lib/tape-format/index.ts';
import { PlainFileWriter } from '../tape-format/helpers.ts';
import { startSshd, type SshdFixture } from '../support/sshd.ts';
import { collect, header, sourceFor, strip } from './helpers.ts';

let sshd: SshdFixture;
let work: string;
let src: SshDataSource;
let parent: string;
const NESTED = ["child's $dir", '-rf', 'glob*[x]?', 'deep/er/child'];
const KEPT = ['glob-sibling', 'deep/er/other', 'plain'];

beforeAll(async () => {
  sshd = await startSshd();
  work = await mkdtemp(join(tmpdir(), 'ssh-nested-'));
  src = sourceFor(sshd);
  parent = join(work, 'parent');
  for (const n of [...NESTED, ...KEPT]) {
    await mkdir(join(parent, n), { recursive: true });
    await writeFile(join(parent, n, 'f.dat'), `content of ${n}\n`);
  }
});
afterAll(async () => {
  await src?.close();
  await sshd?.stop();
  if (work) await rm(work, { recursive: true, force: true });
});

const excludes = () => NESTED.map((n) => join(parent, n));
const underNested = (name: string) => NESTED.some((n) => name === n || name.startsWith(`${n}/`));

async function write(out: string, listingExcludes: string[] | undefined) {
  const manifest = await collect(src.scan(parent, { excludes: excludes() }));
  const w = await PlainFileWriter.create(out);
  try {
    await writeTargetFile({
      writer: w,
      header: header(parent, manifest),
      source: src.stream(parent, manifest),
      listing: () => src.list(parent, listingExcludes ? { excludes: listingExcludes } : {}),
    });
    await w.close();
  } catch (e) {
    await w.abort();
    throw e;
  }
}

describe('nested targets over SSH', () => {
  it('the scan leaves them out, exactly as the local scan does', async () => {
    const remote = await collect(src.scan(parent, { excludes: excludes() }));
    const local = await collect(scanLocalDirectory(parent, { excludes: relativeExcludes(parent, excludes()) }));
    expect(remote.map(strip)).toEqual(local.map(strip));
    expect(remote.map((e) => e.path).filter(underNested)).toEqual([]);
    for (const k of KEPT) expect(remote.map((e) => e.path)).toContain(`${k}/f.dat`);
    const listed = (await collect(src.list(parent, { excludes: excludes() }))).map((e) => e.path);
    expect(listed.sort()).toEqual(remote.map((e) => e.path).sort());
  });

  it("the parent's tape file holds none of their members; the listing check leaves them out too", async () => {
    const out = join(work, 'parent.tar');
    await write(out, excludes());
    const members = execFileSync('tar', ['-tf', out], { encoding: 'utf8' }).split('\n').filter(Boolean);
    const data = members.filter((m) => m.startsWith('data/')).map((m) => m.slice('data/'.length).replace(/\/$/, ''));
    expect(data.filter(underNested)).toEqual([]);
    for (const k of KEPT) expect(data).toContain(`${k}/f.dat`);
    // A listing that did not leave them out would find their files "added since the scan".
    await expect(write(join(work, 'unexcluded.tar'), undefined)).rejects.toThrow(SourceChangedError);
  });
});
