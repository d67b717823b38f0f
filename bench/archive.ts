/**
 * npm run bench:archive: the agent's write path (local source -> tar with per-file SHA-256 ->
 * the listing that finds additions -> virtual tape, filemark = fsync) on ~2 GiB of mixed file sizes, against the baseline
 * `tar cf - DIR | tee FILE | openssl sha256` (+ `sync FILE`, since a tape file is only
 * written once it is on the medium) on the same data in the same run, warm page cache.
 * Runs alternate (ABBA) and the best of each counts. Last line:
 *   archive ratio R (X MB/s vs baseline Y MB/s)      R = X / Y, target >= 0.9
 *
 *   npm run bench:archive -- [--gib 2] [--runs 3]
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import type { ManifestEntry } from '../src/lib/domain/manifest.ts';
import { VirtualTapeLibrary } from '../src/lib/tape/virtual-library.ts';
import { FORMAT, writeTargetFile } from '../src/lib/tape-format/index.ts';
import { listLocalDirectory, localSource, scanLocalDirectory } from '../src/lib/source/local-directory.ts';
import { alternate, generateMixed, option } from './data.ts';

const GIB = Number(option('gib', '2'));
const RUNS = Number(option('runs', '3'));
const MB = 1e6;

const work = await mkdtemp(join(tmpdir(), 'bench-archive-'));
try {
  const data = join(work, 'data');
  await mkdir(data);
  let t = performance.now();
  const g = await generateMixed(data, Math.round(GIB * 1024 ** 3));
  console.log(`data: ${g.files} files, ${(g.bytes / MB).toFixed(0)} MB, made in ${((performance.now() - t) / 1000).toFixed(1)} s`);
  execFileSync('sync');

  t = performance.now();
  const manifest: ManifestEntry[] = [];
  for await (const e of scanLocalDirectory(data)) manifest.push(e);
  console.log(`scan (not timed below): ${manifest.length} entries in ${((performance.now() - t) / 1000).toFixed(1)} s`);

  const vtl = new VirtualTapeLibrary(join(work, 'vtl'));
  await vtl.createTape('bench', { capacityBytes: 10 * g.bytes });
  const drive = vtl.drive('bench0');
  await drive.load('bench');
  const out = join(work, 'baseline.tar');

  const baseline = () => {
    spawnSync('rm', ['-f', out]);
    const t0 = performance.now();
    const r = spawnSync('bash', ['-c', `set -o pipefail; tar cf - -C "${data}" . | tee "${out}" | openssl sha256 >/dev/null && sync "${out}"`]);
    if (r.status !== 0) throw new Error(`baseline failed: ${r.stderr}`);
    return (performance.now() - t0) / 1000;
  };
  const ours = async () => {
    await drive.seekFile(0);
    const t0 = performance.now();
    const writer = await drive.openWriter();
    await writeTargetFile({
      writer,
      header: {
        format: FORMAT,
        tapeName: 'bench',
        fileNumber: 1,
        taskId: 'bench',
        target: { id: 'bench', host: 'localhost', path: data },
        scanId: 'scan',
        writtenAt: new Date().toISOString(),
        manifest,
      },
      source: localSource(data, manifest),
      listing: () => listLocalDirectory(data), // as the agent does: nothing added since the scan
    });
    await writer.close(); // fsync: the filemark
    return (performance.now() - t0) / 1000;
  };

  const best = await alternate(RUNS, g.bytes, baseline, ours, 'archive');
  const x = best.ours;
  const y = best.baseline;
  console.log('(MB/s of file content; best run of each; both persist their output before the clock stops)');
  console.log(`archive ratio ${(x / y).toFixed(2)} (${x.toFixed(0)} MB/s vs baseline ${y.toFixed(0)} MB/s)`);
} finally {
  await rm(work, { recursive: true, force: true });
}
