import { execFile } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdir, readdir, readFile, lstat, readlink, writeFile, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

/** Makes a target directory with files of the given sizes (random content) in sub-directories. */
export async function makeTarget(dir: string, sizes: number[]): Promise<string> {
  await mkdir(join(dir, 'sub', 'deeper'), { recursive: true });
  for (const [i, size] of sizes.entries()) {
    const where = i % 3 === 0 ? dir : i % 3 === 1 ? join(dir, 'sub') : join(dir, 'sub', 'deeper');
    await writeFile(join(where, `file-${i}.dat`), randomBytes(size));
  }
  return dir;
}

/** Every regular file under `root` with its SHA-256, keyed by the relative name's bytes (base64). */
export async function treeDigest(root: string): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  const walk = async (dir: Buffer, rel: Buffer | null) => {
    for (const name of await readdir(dir, { encoding: 'buffer' })) {
      const full = Buffer.concat([dir, Buffer.from('/'), name]);
      const relName = rel ? Buffer.concat([rel, Buffer.from('/'), name]) : name;
      const st = await lstat(full);
      if (st.isDirectory()) await walk(full, relName);
      else if (st.isSymbolicLink()) out.set(relName.toString('base64'), 'link:' + (await readlink(full)));
      else if (st.isFile())
        out.set(
          relName.toString('base64'),
          createHash('sha256')
            .update(await readFile(full))
            .digest('hex'),
        );
    }
  };
  await walk(Buffer.from(root), null);
  return out;
}

/** Extracts a tape file with GNU tar and returns the digest of its data/ tree. */
export async function extractWithGnuTar(tapeFile: string): Promise<{ data: Map<string, string>; header: unknown; trailer: unknown }> {
  const dest = await mkdtemp(join(tmpdir(), 'gnutar-'));
  try {
    await run('tar', ['-xf', tapeFile, '-C', dest]);
    const header = JSON.parse(await readFile(join(dest, 'header.json'), 'utf8'));
    const trailer = JSON.parse(await readFile(join(dest, 'trailer.json'), 'utf8'));
    return { data: await treeDigest(join(dest, 'data')), header, trailer };
  } finally {
    await rm(dest, { recursive: true, force: true });
  }
}
