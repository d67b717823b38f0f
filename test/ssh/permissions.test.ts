/**
 * Unreadable entries on the data host are errors, never silently left out. The tests run as
 * root, so the sshd runs without CAP_DAC_OVERRIDE / CAP_DAC_READ_SEARCH (util-linux setpriv):
 * its root sessions get "Permission denied" like an ordinary user.
 */
import { chmod, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SourceUnavailableError } from '../../src/lib/source/data-source.ts';
import { RemoteCommandError, type SshDataSource } from '../../src/lib/source/ssh-source.ts';
import { SourceChangedError } from '../../src/lib/tape-format/index.ts';
import { startSshd, type SshdFixture } from '../support/sshd.ts';
import { archiveTo, collect, sourceFor } from './helpers.ts';

let sshd: SshdFixture;
let work: string;
let src: SshDataSource;

beforeAll(async () => {
  sshd = await startSshd({ dropCapabilities: ['dac_override', 'dac_read_search'] });
  work = await mkdtemp(join(tmpdir(), 'ssh-permissions-test-'));
  src = sourceFor(sshd);
});

afterAll(async () => {
  await src?.close();
  await sshd?.stop();
  if (work) {
    await chmod(join(work, 'a', 'locked'), 0o755).catch(() => undefined);
    await rm(work, { recursive: true, force: true });
  }
});

async function failure(p: Promise<unknown>): Promise<Error> {
  const e = await p.then(
    () => null,
    (err: unknown) => err,
  );
  if (!(e instanceof Error)) throw new Error('expected a failure');
  return e;
}

describe('permission problems on the data host', () => {
  it('an unreadable subdirectory fails the scan with an error naming it', async () => {
    const root = join(work, 'a');
    await mkdir(join(root, 'locked'), { recursive: true });
    await writeFile(join(root, 'locked', 'secret'), 'x');
    await writeFile(join(root, 'visible'), 'y');
    await chmod(join(root, 'locked'), 0o000);
    const e = await failure(collect(src.scan(root)));
    expect(e).toBeInstanceOf(RemoteCommandError);
    expect(e).toBeInstanceOf(SourceUnavailableError);
    expect(e.message).toMatch(/find exited with status 1/);
    expect(e.message).toContain("'./locked': Permission denied");
    expect(e.message).toMatch(/scan is refused/);
    await chmod(join(root, 'locked'), 0o755);
  });

  it('an unreadable file fails the scan (sha256sum) with an error naming it', async () => {
    const root = join(work, 'b');
    await mkdir(root);
    await writeFile(join(root, 'ok'), 'ok');
    await writeFile(join(root, 'no-read'), 'secret');
    await chmod(join(root, 'no-read'), 0o000);
    const e = await failure(collect(src.scan(root)));
    expect(e).toBeInstanceOf(SourceUnavailableError);
    expect(e.message).toMatch(/sha256sum failed \(xargs exit status 123\)/);
    expect(e.message).toContain('./no-read: Permission denied');
  });

  it('a file that became unreadable after the scan fails the stream (tar: Cannot open), not silently', async () => {
    const root = join(work, 'c');
    await mkdir(root);
    await writeFile(join(root, 'one'), '1');
    await writeFile(join(root, 'two'), '2');
    const manifest = await collect(src.scan(root));
    await chmod(join(root, 'two'), 0o000);
    const e = await failure(archiveTo(join(work, 'c.tar'), root, manifest, src.stream(root, manifest)));
    expect(e).toBeInstanceOf(SourceUnavailableError);
    expect(e).not.toBeInstanceOf(SourceChangedError);
    expect(e.message).toMatch(/remote tar failed .*exit status 2.*two: Cannot open: Permission denied/);
  });

  it('an unreadable target directory is a clear error', async () => {
    const root = join(work, 'd');
    await mkdir(root);
    await chmod(root, 0o000);
    const e = await failure(collect(src.scan(root)));
    expect(e).toBeInstanceOf(SourceUnavailableError);
    expect(e.message).toMatch(/the target cannot be entered \(permission denied\)/);
    await chmod(root, 0o755);
  });
});
