/**
 * Target directories rebuilt byte for byte (content, modes, mtimes) every time, so a catalog
 * written once (test/fixtures/catalog-0.3) still matches its sources in a later test run.
 */
import { createHash } from 'node:crypto';
import { chmod, mkdir, rm, utimes, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

/** Where the fixture's targets live: their absolute paths are in the catalog. */
export const FIXTURE_ROOT = '/tmp/tape-archive-fixture-0.3';

const T0 = Date.parse('2026-11-01T00:00:00Z') / 1000;

/** `size` deterministic bytes from `seed` (a SHA-256 chain). */
export function content(seed: string, size: number): Buffer {
  const out = Buffer.alloc(size);
  let block = createHash('sha256').update(seed).digest();
  for (let at = 0; at < size; at += block.length) {
    block.copy(out, at);
    block = createHash('sha256').update(block).digest();
  }
  return out;
}

/** Target `n` of the fixture: `FIXTURE_ROOT/data/run-n` with three files in two directories. */
export async function makeFixtureTarget(n: number): Promise<string> {
  const root = join(FIXTURE_ROOT, 'data', `run-${n}`);
  await rm(root, { recursive: true, force: true });
  await mkdir(join(root, 'sub'), { recursive: true });
  const files: [string, number][] = [
    ['frame-0.fits', 20_000 + n * 1000],
    ['frame-1.fits', 7_000 + n * 10],
    ['sub/notes.txt', 300 + n],
  ];
  for (const [name, size] of files) {
    const path = join(root, name);
    await writeFile(path, content(`${n}:${name}`, size));
    await chmod(path, 0o644);
    await utimes(path, T0 + n, T0 + n);
  }
  for (const dir of [join(root, 'sub'), root]) {
    await chmod(dir, 0o755);
    await utimes(dir, T0 + n, T0 + n);
  }
  return root;
}
