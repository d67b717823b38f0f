/** Shared pieces of the SSH tests. */
import { execFileSync } from 'node:child_process';
import { link, mkdir, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { ManifestEntry } from '../../src/lib/domain/manifest.ts';
import { SshDataSource, type SshDataSourceOptions } from '../../src/lib/source/ssh-source.ts';
import type { SourceEntry } from '../../src/lib/tape-format/index.ts';
import { writeTargetFile } from '../../src/lib/tape-format/index.ts';
import { sshSourceOptions, type SshdFixture } from '../support/sshd.ts';
import { PlainFileWriter, makeSampleTree } from '../tape-format/helpers.ts';

export function sourceFor(sshd: SshdFixture, extra: Partial<SshDataSourceOptions> = {}): SshDataSource {
  return new SshDataSource(sshSourceOptions(sshd, extra));
}

export async function collect<T>(it: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const x of it) out.push(x);
  return out;
}

const raw = (root: string, name: Buffer) => Buffer.concat([Buffer.from(root + '/'), name]);

/**
 * The sample tree of the tape-format tests (spaces, quotes, $, newline, leading dash, 0xff,
 * 150-byte name, empty file, empty dir, symlinks) plus more shell-hostile names.
 */
export async function makeHostileTree(root: string): Promise<void> {
  await makeSampleTree(root);
  const names = [
    'back`tick`.txt',
    'semi;colon; rm -rf x',
    "single'quote",
    'double"quote',
    '--help',
    '-exec touch X ;',
    'back\\slash\\n.txt',
    'star*and?[x]',
    'tab\there',
    'trailing space ',
    ' leading space',
    '$(whoami)',
    'pipe | and & amp > redir <',
    'a\n-rf\n',
  ];
  for (const n of names) await writeFile(raw(root, Buffer.from(n)), `content of ${JSON.stringify(n)}\n`);
  await mkdir(join(root, '-dashdir'));
  await writeFile(join(root, '-dashdir', '--'), 'dash dash\n');
  // bytes that are not UTF-8 (0xff 0xfe), in a file name and a directory name
  await writeFile(raw(root, Buffer.from([0x78, 0xff, 0xfe, 0x79])), 'ff fe\n');
  await symlink('../outside/target with space', join(root, 'link with space'));
  // a symlink target over 100 bytes (GNU tar: a 'K' long-link header) and a hard link (the
  // second name in manifest order is a tar hard link to the first)
  await symlink(`${'t'.repeat(140)}/target`, join(root, 'long-link'));
  await link(join(root, 'sub', 'file.txt'), join(root, 'hard-link-to-file.txt'));
}

export function header(path: string, manifest: ManifestEntry[]) {
  return {
    tapeName: 'SSH001',
    fileNumber: 1,
    taskId: 'task-ssh',
    target: { id: 't-ssh', host: 'data-host', path },
    scanId: 'scan-ssh',
    writtenAt: new Date().toISOString(),
    manifest,
  };
}

/** Streams `source` through writeTargetFile into `out` (a plain file, like a tape file). */
export async function archiveTo(out: string, path: string, manifest: ManifestEntry[], source: AsyncIterable<SourceEntry>) {
  const w = await PlainFileWriter.create(out);
  try {
    const r = await writeTargetFile({ writer: w, header: header(path, manifest), source });
    await w.close();
    return r;
  } catch (e) {
    await w.abort();
    throw e;
  }
}

/** Extracts a tape file with GNU tar into `dir`. */
export function gnuExtract(file: string, dir: string): void {
  execFileSync('tar', ['-xf', file, '-C', dir], { stdio: ['ignore', 'ignore', 'pipe'] });
}

/** Comparable fields (mtime excluded: find prints it to the nanosecond, stat to the millisecond). */
export function strip(e: ManifestEntry) {
  const { mtimeMs: _m, ...rest } = e;
  return rest;
}
