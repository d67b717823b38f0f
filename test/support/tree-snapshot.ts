/**
 * A directory tree as everything a faithful archive must give back: every name as bytes, its
 * type, permission bits, whole-second mtime, content checksum, symlink target bytes, which
 * names are hard links of each other, and the root directory's own mode and mtime. Special
 * files are listed apart (they are skipped by policy). Used to compare a source with what
 * GNU tar extracts from its tape file.
 */
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { lstat, mkdtemp, readdir, readFile, readlink, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

export interface NodeSnapshot {
  type: 'dir' | 'file' | 'symlink';
  /** Permission bits (not for symlinks: always 0777 on Linux). */
  mode?: number;
  /** Whole seconds (not for symlinks: tar does not restore their times). */
  mtime?: number;
  sha256?: string;
  /** base64 of the symlink target bytes. */
  link?: string;
  /** Other names (base64) of the same inode inside the tree, sorted; files with several names only. */
  hardLinks?: string[];
}

export interface TreeSnapshot {
  root: { mode: number; mtime: number };
  /** Keyed by the base64 of the name bytes relative to the root. */
  entries: Map<string, NodeSnapshot>;
  /** Names (base64) of fifos, sockets and device nodes. */
  special: string[];
}

const SLASH = Buffer.from('/');

export async function snapshotTree(root: string): Promise<TreeSnapshot> {
  const rootSt = await lstat(root);
  const entries = new Map<string, NodeSnapshot>();
  const special: string[] = [];
  const inodes = new Map<string, string[]>();
  const walk = async (dir: Buffer, rel: Buffer | null): Promise<void> => {
    for (const name of await readdir(dir, { encoding: 'buffer' })) {
      const full = Buffer.concat([dir, SLASH, name]);
      const relName = rel ? Buffer.concat([rel, SLASH, name]) : name;
      const key = relName.toString('base64');
      const st = await lstat(full);
      const meta = { mode: st.mode & 0o7777, mtime: Math.floor(st.mtimeMs / 1000) };
      if (st.isDirectory()) {
        entries.set(key, { type: 'dir', ...meta });
        await walk(full, relName);
      } else if (st.isSymbolicLink()) {
        entries.set(key, { type: 'symlink', link: (await readlink(full, { encoding: 'buffer' })).toString('base64') });
      } else if (st.isFile()) {
        entries.set(key, {
          type: 'file',
          ...meta,
          sha256: createHash('sha256')
            .update(await readFile(full))
            .digest('hex'),
        });
        if (st.nlink > 1) {
          const id = `${st.dev}:${st.ino}`;
          inodes.set(id, [...(inodes.get(id) ?? []), key]);
        }
      } else {
        special.push(key);
      }
    }
  };
  await walk(Buffer.from(root), null);
  for (const names of inodes.values()) {
    if (names.length < 2) continue;
    for (const n of names) entries.get(n)!.hardLinks = names.filter((o) => o !== n).sort();
  }
  return { root: { mode: rootSt.mode & 0o7777, mtime: Math.floor(rootSt.mtimeMs / 1000) }, entries, special: special.sort() };
}

/** The snapshot as plain sorted data, for toEqual with readable diffs (names decoded as latin1). */
export function comparable(s: TreeSnapshot): { root: TreeSnapshot['root']; entries: [string, NodeSnapshot][] } {
  const name = (k: string) => Buffer.from(k, 'base64').toString('latin1');
  const entries = [...s.entries].map(([k, v]): [string, NodeSnapshot] => [name(k), v.hardLinks ? { ...v, hardLinks: v.hardLinks.map(name) } : v]);
  entries.sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
  return { root: s.root, entries };
}

export const EXTRACT_LOCALES = ['C', 'C.UTF-8'] as const;

/**
 * Extracts a tape file with GNU tar (`tar -xpf`, in the given locale) and returns the
 * snapshot of its data/ directory and the header and trailer it holds.
 */
export async function extractSnapshot(
  tapeFile: string,
  locale: (typeof EXTRACT_LOCALES)[number],
): Promise<{ tree: TreeSnapshot; header: Record<string, unknown>; trailer: Record<string, unknown> }> {
  const dest = await mkdtemp(join(tmpdir(), 'gnutar-snap-'));
  try {
    await run('tar', ['-xpf', tapeFile, '-C', dest, '--warning=no-unknown-keyword'], { env: { ...process.env, LC_ALL: locale } });
    const header = JSON.parse(await readFile(join(dest, 'header.json'), 'utf8')) as Record<string, unknown>;
    const trailer = JSON.parse(await readFile(join(dest, 'trailer.json'), 'utf8')) as Record<string, unknown>;
    return { tree: await snapshotTree(join(dest, 'data')), header, trailer };
  } finally {
    await rm(dest, { recursive: true, force: true });
  }
}

/** Every locale's extraction equals the source (specials aside: they are not archived). */
export async function expectFaithful(tapeFile: string, source: TreeSnapshot, expectEqual: (a: unknown, b: unknown, what: string) => void): Promise<void> {
  for (const locale of EXTRACT_LOCALES) {
    const { tree } = await extractSnapshot(tapeFile, locale);
    expectEqual(comparable(tree), comparable(source), `GNU tar extraction in LC_ALL=${locale}`);
    expectEqual(tree.special, [], `no special files extracted in LC_ALL=${locale}`);
  }
}
