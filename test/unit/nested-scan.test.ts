/**
 * Nested targets left out of a scan: the local scan and listing (fs-worker.ts), and the SSH
 * scripts (remote-scripts.ts) run here by /bin/sh exactly as the data host's login shell runs
 * them, with nested target names full of quotes, `$`, glob characters and leading dashes, and
 * siblings those names would match as globs (which must stay).
 */
import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { relativeExcludes } from '../../src/lib/domain/nesting.ts';
import { listLocalDirectory, scanLocalDirectory } from '../../src/lib/source/local-directory.ts';
import { LocalDataSource } from '../../src/lib/source/local-source.ts';
import { excludePatterns, HASH_SCRIPT, LIST_SCRIPT, NAMES_SCRIPT, remoteCommand } from '../../src/lib/source/ssh/remote-scripts.ts';

const run = promisify(execFile);
let root: string;
let work: string;

/** Nested targets (each holds a file) and the siblings that must stay. */
const NESTED = ['a b', "it's", '$HOME', '-rf', 'star*', 'q?', '[x]', 'back\\slash', 'deep/er/child', '--', "x'; touch PWNED; '"];
const KEPT = ['a b2', 'starry', 'qX', 'x', 'backXslash', 'deep/er/other', 'deep/er/child2', 'plain'];

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'nested-scan-'));
  root = join(work, 'parent dir');
  for (const n of [...NESTED, ...KEPT]) {
    await mkdir(join(root, n), { recursive: true });
    await writeFile(join(root, n, 'f.dat'), n);
  }
  await writeFile(join(root, 'top.txt'), 'top');
});
afterAll(async () => {
  if (work) await rm(work, { recursive: true, force: true });
});

const excludes = () => NESTED.map((n) => `${root}/${n}`);
/** Every name a nested target holds (or is): none may be in the scan. */
const underNested = (name: string) => NESTED.some((n) => name === n || name.startsWith(`${n}/`));

/** Runs a remote script here through /bin/sh -c, as the login shell of a data host would. */
async function remote(script: string): Promise<string[]> {
  const command = remoteCommand(script, root, ...excludePatterns(relativeExcludes(root, excludes())));
  const { stdout } = await run('/bin/sh', ['-c', command], { cwd: work, encoding: 'buffer', maxBuffer: 1 << 24 });
  const fields = stdout.toString('latin1').split('\0');
  expect(fields.at(-2)).toBe('=');
  expect(fields.at(-1)).toBe('');
  return fields.slice(0, -2);
}

describe('a scan leaves nested targets out', () => {
  it('locally: the scan and the listing skip each nested target with its subtree, and nothing else', async () => {
    const scanned = [];
    for await (const e of scanLocalDirectory(root, { excludes: relativeExcludes(root, excludes()) })) scanned.push(e.path);
    expect(scanned.filter(underNested)).toEqual([]);
    for (const k of KEPT) expect(scanned).toContain(`${k}/f.dat`);
    expect(scanned).toContain('deep/er');
    expect(scanned).toContain('top.txt');
    const listed = [];
    for await (const e of new LocalDataSource('h').list(root, { excludes: excludes() })) listed.push(e.path);
    expect(listed.sort()).toEqual([...scanned].sort());
    // Without excludes: everything (and the data source takes absolute paths).
    const all = [];
    for await (const e of listLocalDirectory(root)) all.push(e.path);
    for (const n of NESTED) expect(all).toContain(`${n}/f.dat`);
    const viaSource = [];
    for await (const e of new LocalDataSource('h').scan(root, { excludes: excludes() })) viaSource.push(e.path);
    expect(viaSource).toEqual(scanned);
  });

  it('over SSH: the list, hash and names scripts prune the same names, quoted and glob-escaped', async () => {
    const list = await remote(LIST_SCRIPT);
    const names = list.filter((_, i) => i % 7 === 4);
    expect(names.filter(underNested)).toEqual([]);
    for (const k of KEPT) expect(names).toContain(`${k}/f.dat`);

    const hashed = (await remote(HASH_SCRIPT)).map((l) => l.slice(66).replace(/^\.\//, ''));
    expect(hashed.sort()).toEqual(names.filter((n) => n.endsWith('.dat') || n === 'top.txt').sort());

    const pairs = await remote(NAMES_SCRIPT);
    expect(pairs.filter((_, i) => i % 2 === 1).sort()).toEqual([...names].sort());

    const local = [];
    for await (const e of scanLocalDirectory(root, { excludes: relativeExcludes(root, excludes()) })) local.push(e.path);
    expect([...names].sort()).toEqual(local.sort());
    // The command ran nothing a name says.
    await expect(run('test', ['-e', join(work, 'PWNED')])).rejects.toThrow();
  });

  it('over SSH without nested targets: the scripts list everything as before', async () => {
    const { stdout } = await run('/bin/sh', ['-c', remoteCommand(LIST_SCRIPT, root)], { encoding: 'buffer', maxBuffer: 1 << 24 });
    const names = stdout
      .toString('latin1')
      .split('\0')
      .filter((_, i) => i % 7 === 4);
    for (const n of [...NESTED, ...KEPT]) expect(names).toContain(`${n}/f.dat`);
  });
});
