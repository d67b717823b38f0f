/**
 * Benchmark data: a directory of mixed file sizes, half the bytes in many small files
 * (4-64 KiB, 200 a directory), half in large ones (1-100 MiB). Deterministic pseudo-random
 * content (not compressible, like science data).
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { parseArgs } from 'node:util';

/** `--name value` from the command line, or the default. */
export function option(name: string, def: string): string {
  // util.parseArgs, lenient: each benchmark reads only the options it knows
  const { values } = parseArgs({ args: process.argv.slice(2), options: { [name]: { type: 'string' } }, strict: false, allowPositionals: true });
  const v = values[name];
  return typeof v === 'string' ? v : def;
}

/**
 * Runs the baseline and ours alternately (ABBA: B O, O B, B O, ...), `runs` times each, after
 * one baseline run that warms the page cache; prints each run's rates (MB/s of `bytes`) and
 * returns the best rate of each. These machines are noisy: the best of alternating runs counts.
 */
export async function alternate(
  runs: number,
  bytes: number,
  baseline: () => number | Promise<number>,
  ours: () => Promise<number>,
  label: string,
): Promise<{ ours: number; baseline: number }> {
  await baseline(); // warm the page cache, not counted
  const b: number[] = [];
  const o: number[] = [];
  for (let r = 0; r < runs; r++) {
    if (r % 2 === 0) {
      b.push(await baseline());
      o.push(await ours());
    } else {
      o.push(await ours());
      b.push(await baseline());
    }
    console.log(`run ${r + 1}: baseline ${(bytes / 1e6 / b.at(-1)!).toFixed(0)} MB/s, ${label} ${(bytes / 1e6 / o.at(-1)!).toFixed(0)} MB/s`);
  }
  return { ours: bytes / 1e6 / Math.min(...o), baseline: bytes / 1e6 / Math.min(...b) };
}

/** Deterministic pseudo-random numbers in [0, 1) (xorshift32). */
export function rng(seed: number) {
  let x = seed >>> 0 || 1;
  return () => {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    return x / 0x100000000;
  };
}

export async function generateMixed(dir: string, totalBytes: number): Promise<{ files: number; bytes: number }> {
  const rand = rng(42);
  const pool = Buffer.allocUnsafe(128 * 1024 * 1024);
  for (let i = 0; i < pool.length; i += 4) pool.writeUInt32LE((rand() * 0x100000000) >>> 0, i);
  let bytes = 0;
  let files = 0;
  for (let d = 0; bytes < totalBytes / 2; d++) {
    const sub = join(dir, 'small', `d${String(d).padStart(4, '0')}`);
    await mkdir(sub, { recursive: true });
    for (let i = 0; i < 200 && bytes < totalBytes / 2; i++) {
      const size = 4096 + Math.floor(rand() * 60 * 1024);
      const off = Math.floor(rand() * (pool.length - size));
      await writeFile(join(sub, `f${i}.dat`), pool.subarray(off, off + size));
      bytes += size;
      files++;
    }
  }
  await mkdir(join(dir, 'large'), { recursive: true });
  for (let j = 0; bytes < totalBytes; j++) {
    const size = Math.min(totalBytes - bytes, (1 + Math.floor(rand() * 99)) * 1024 * 1024 + Math.floor(rand() * 4096));
    const parts: Buffer[] = [];
    for (let left = size; left > 0; ) {
      const n = Math.min(left, 64 * 1024 * 1024);
      const off = Math.floor(rand() * (pool.length - n));
      parts.push(pool.subarray(off, off + n));
      left -= n;
    }
    await writeFile(join(dir, 'large', `big${j}.bin`), Buffer.concat(parts));
    bytes += size;
    files++;
  }
  return { files, bytes };
}
