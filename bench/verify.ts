/**
 * npm run bench:verify: the confirm (and scrub) path, a full read-back verify of a tape file
 * of ~2 GiB of mixed file sizes from the virtual tape (tar parse, SHA-256 of every file, each
 * member checked against the manifest read alongside, the trailer's list through its digest),
 * against the baseline `openssl sha256 TAPEFILE` on the same file in the same run, warm page
 * cache. The verify hashes on two threads (hash-worker.ts: the second takes files while it keeps
 * up). Runs alternate (ABBA) and the best of each counts. Last line:
 *   verify ratio R (X MB/s vs baseline Y MB/s)      R = X / Y, target >= 0.9
 *
 *   npm run bench:verify -- [--gib 2] [--runs 3]
 */
import { spawnSync } from 'node:child_process';
import { mkdir, mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import type { ManifestEntry } from '../src/lib/domain/manifest.ts';
import { listLocalDirectory, localSource, scanLocalDirectory } from '../src/lib/source/local-directory.ts';
import { VirtualTapeLibrary } from '../src/lib/tape/virtual-library.ts';
import { FORMAT, HashSession, readTargetFile, writeTargetFile } from '../src/lib/tape-format/index.ts';
import { alternate, generateMixed, option } from './data.ts';

const GIB = Number(option('gib', '2'));
const RUNS = Number(option('runs', '3'));

const work = await mkdtemp(join(tmpdir(), 'bench-verify-'));
try {
  const data = join(work, 'data');
  await mkdir(data);
  const g = await generateMixed(data, Math.round(GIB * 1024 ** 3));
  const manifest: ManifestEntry[] = [];
  for await (const e of scanLocalDirectory(data)) manifest.push(e);
  const vtl = new VirtualTapeLibrary(join(work, 'vtl'));
  await vtl.createTape('bench', { capacityBytes: 10 * g.bytes });
  const drive = vtl.drive('bench0');
  await drive.load('bench');
  const writer = await drive.openWriter();
  const target = { id: 'bench', host: 'localhost', path: data };
  await writeTargetFile({
    writer,
    header: { format: FORMAT, tapeName: 'bench', fileNumber: 0, taskId: 'bench', target, scanId: 'scan', writtenAt: new Date().toISOString(), manifest },
    source: localSource(data, manifest),
    listing: () => listLocalDirectory(data),
  });
  await writer.close();
  await rm(data, { recursive: true, force: true });
  const tapeFile = vtl.tapeFilePath('bench', 0);
  const bytes = (await stat(tapeFile)).size;
  console.log(`tape file: ${g.files} files, ${(bytes / 1e6).toFixed(0)} MB`);

  const baseline = () => {
    const t0 = performance.now();
    const r = spawnSync('openssl', ['sha256', tapeFile]);
    if (r.status !== 0) throw new Error(`baseline failed: ${r.stderr}`);
    return (performance.now() - t0) / 1000;
  };
  let share = 0;
  const ours = async () => {
    await drive.seekFile(0);
    const hashWorker = new HashSession();
    const t0 = performance.now();
    // As the verify task gives it: the catalog's manifest, as a reader.
    const report = await readTargetFile(
      drive.readFile(),
      {
        targetId: 'bench',
        manifest: () =>
          (async function* () {
            yield* manifest;
          })(),
      },
      { hashWorker },
    );
    const s = (performance.now() - t0) / 1000;
    share = hashWorker.taken.bytes / g.bytes;
    if (!report.ok) throw new Error(`verify failed: ${JSON.stringify(report.bad.slice(0, 3))}`);
    return s;
  };
  const best = await alternate(RUNS, bytes, baseline, ours, 'verify');
  console.log('(MB/s of tape file bytes; best run of each; both read the whole tape file from the page cache)');
  console.log(`(the verify's second thread hashed ${(100 * share).toFixed(0)}% of the file bytes in its last run; the rest were hashed on the main thread)`);
  console.log(`verify ratio ${(best.ours / best.baseline).toFixed(2)} (${best.ours.toFixed(0)} MB/s vs baseline ${best.baseline.toFixed(0)} MB/s)`);
} finally {
  await rm(work, { recursive: true, force: true });
}
