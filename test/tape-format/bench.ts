/**
 * Throughput benchmark: writeTargetFile(localSource) into a plain file, against the baseline
 * pipeline `tar cf - DIR | tee FILE | openssl sha256` on the same data (warm page cache).
 *
 *   npx tsx test/tape-format/bench.ts [--gib 1] [--runs 6] [--keep] [--data DIR] [--gen-only] [--sink null]
 *
 * --data DIR reuses (or creates, when missing) a data set in DIR and leaves it in place.
 *
 * Data: a temp dir with many 4-64 KiB files (half the bytes) and some 1-100 MiB files.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import type { ManifestEntry } from '../../src/lib/domain/manifest.ts';
import { localSource, scanLocalDirectory, writeTargetFile } from '../../src/lib/tape-format/index.ts';
import { PlainFileWriter } from './helpers.ts';

const args = process.argv.slice(2);
const opt = (name: string, def: number) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? Number(args[i + 1]) : def;
};
const GIB = opt('gib', 1);
const RUNS = opt('runs', 6);
const KEEP = args.includes('--keep');
const GEN_ONLY = args.includes('--gen-only');
const DATA_ARG = args.includes('--data') ? args[args.indexOf('--data') + 1] : undefined;
/** --sink null: both sides write to /dev/null (pipeline cost without page-cache writes). */
const SINK_NULL = args.includes('--sink') && args[args.indexOf('--sink') + 1] === 'null';

/** Deterministic pseudo-random generator (xorshift32). */
function rng(seed: number) {
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

async function generate(dir: string, totalBytes: number): Promise<{ files: number; bytes: number }> {
  const rand = rng(42);
  const pool = Buffer.allocUnsafe(128 * 1024 * 1024);
  for (let i = 0; i < pool.length; i += 4) pool.writeUInt32LE((rand() * 0x100000000) >>> 0, i);
  let bytes = 0;
  let files = 0;
  // half the bytes in many small files (4-64 KiB), in directories of ~200 files
  let d = 0;
  while (bytes < totalBytes / 2) {
    const sub = join(dir, 'small', `d${String(d++).padStart(4, '0')}`);
    await mkdir(sub, { recursive: true });
    for (let i = 0; i < 200 && bytes < totalBytes / 2; i++) {
      const size = 4096 + Math.floor(rand() * 60 * 1024);
      const off = Math.floor(rand() * (pool.length - size));
      await writeFile(join(sub, `f${i}.dat`), pool.subarray(off, off + size));
      bytes += size;
      files++;
    }
  }
  // the rest in large files (1-100 MiB)
  await mkdir(join(dir, 'large'));
  let j = 0;
  while (bytes < totalBytes) {
    const size = Math.min(totalBytes - bytes, (1 + Math.floor(rand() * 99)) * 1024 * 1024 + Math.floor(rand() * 4096));
    const fh = join(dir, 'large', `big${j++}.bin`);
    const parts: Buffer[] = [];
    let left = size;
    while (left > 0) {
      const n = Math.min(left, 64 * 1024 * 1024);
      const off = Math.floor(rand() * (pool.length - n));
      parts.push(pool.subarray(off, off + n));
      left -= n;
    }
    await writeFile(fh, Buffer.concat(parts));
    bytes += size;
    files++;
  }
  return { files, bytes };
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

const MiB = 1024 * 1024;

async function main() {
  const work = await mkdtemp(join(tmpdir(), 'tape-format-bench-'));
  const data = DATA_ARG ?? join(work, 'data');
  try {
    let t = performance.now();
    let g: { files: number; bytes: number };
    if (DATA_ARG && existsSync(DATA_ARG)) {
      g = { files: 0, bytes: Number(execFileSync('du', ['-sb', '--apparent-size', DATA_ARG]).toString().split('\t')[0]) };
    } else {
      await mkdir(data, { recursive: true });
      g = await generate(data, Math.round(GIB * 1024 * MiB));
      console.log(`data: ${g.files} files, ${(g.bytes / MiB).toFixed(0)} MiB in ${((performance.now() - t) / 1000).toFixed(1)} s`);
      execFileSync('sync');
    }
    if (GEN_ONLY) return;

    t = performance.now();
    const manifest: ManifestEntry[] = [];
    for await (const e of scanLocalDirectory(data)) manifest.push(e);
    const scanS = (performance.now() - t) / 1000;
    console.log(`scan (hash everything): ${manifest.length} entries in ${scanS.toFixed(2)} s = ${(g.bytes / MiB / scanS).toFixed(0)} MiB/s`);

    const out = SINK_NULL ? '/dev/null' : join(work, 'out.tar');
    const baseline: number[] = [];
    const ours: number[] = [];
    let baseBytes = 0;
    let ourBytes = 0;
    const runBaseline = async () => {
      if (!SINK_NULL) await rm(out, { force: true });
      execFileSync('sync');
      const t0 = performance.now();
      const res = spawnSync('bash', ['-c', `set -o pipefail; tar cf - -C "${data}" . | tee "${out}" | openssl sha256`], { encoding: 'utf8' });
      const s = (performance.now() - t0) / 1000;
      if (res.status !== 0) throw new Error(`baseline failed: ${res.stderr}`);
      if (!SINK_NULL) baseBytes = Number(execFileSync('stat', ['-c', '%s', out]).toString());
      baseline.push(s);
      return s;
    };
    const runOurs = async () => {
      if (!SINK_NULL) await rm(out, { force: true });
      execFileSync('sync');
      const t0 = performance.now();
      const w = await PlainFileWriter.create(out);
      const { bytes } = await writeTargetFile({
        writer: w,
        header: {
          tapeName: 'BENCH',
          fileNumber: 1,
          taskId: 'bench',
          target: { id: 'bench', host: 'localhost', path: data },
          scanId: 'scan',
          writtenAt: new Date().toISOString(),
          manifest,
        },
        source: localSource(data, manifest),
      });
      await w.close();
      const s = (performance.now() - t0) / 1000;
      ourBytes = bytes;
      ours.push(s);
      return s;
    };
    // warm-up (page cache), not counted
    spawnSync('bash', ['-c', `tar cf - -C "${data}" . | tee "${out}" | openssl sha256 >/dev/null`]);
    const rate = (s: number) => `${(g.bytes / MiB / s).toFixed(0)} MiB/s`;
    for (let r = 0; r < RUNS; r++) {
      // ABBA order: neither side always runs first
      const order = r % 2 === 0 ? [runBaseline, runOurs] : [runOurs, runBaseline];
      for (const f of order) await f();
      console.log(`run ${r + 1}: baseline ${baseline.at(-1)!.toFixed(2)} s (${rate(baseline.at(-1)!)}), writeTargetFile ${ours.at(-1)!.toFixed(2)} s (${rate(ours.at(-1)!)})`);
    }
    const b = median(baseline);
    const o = median(ours);
    const bBest = Math.min(...baseline);
    const oBest = Math.min(...ours);
    console.log(`median: baseline ${b.toFixed(2)} s = ${rate(b)}; writeTargetFile ${o.toFixed(2)} s = ${rate(o)}; ratio ${(b / o).toFixed(2)}`);
    console.log(`best:   baseline ${bBest.toFixed(2)} s = ${rate(bBest)}; writeTargetFile ${oBest.toFixed(2)} s = ${rate(oBest)}; ratio ${(bBest / oBest).toFixed(2)}`);
    console.log('(rates are file content bytes per second; ratio = baseline time / writeTargetFile time)');
    console.log(`tar bytes: baseline ${baseBytes}, ours ${ourBytes}`);
  } finally {
    if (!KEEP) await rm(work, { recursive: true, force: true });
    else console.log(`kept ${work}`);
  }
}

await main();
