/**
 * npm run bench:restore: the agent's restore path (virtual tape -> tar parse -> each file
 * written under a temporary name while its SHA-256 is computed and compared with the catalog's
 * manifest -> renamed into place, modes and mtimes set) on ~2 GiB of mixed file sizes, against
 * the baseline `tar -xf TAPEFILE -C DIR && (cd DIR/data && sha256sum -c LIST)` on the same tape
 * file in the same run, warm page cache. Both restore into a RAM file system (/dev/shm) and
 * end with `sync`: this machine's disk write-back varies twofold from run to run (67 to 132
 * MB/s for the same tar) and would measure the disk, not the restore. Runs alternate (ABBA)
 * and the best of each counts. Last line:
 *   restore ratio R (X MB/s vs baseline Y MB/s)      R = X / Y, target >= 0.9
 *
 *   npm run bench:restore -- [--gib 2] [--runs 3]
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import type { ManifestEntry } from '../src/lib/domain/manifest.ts';
import { extractTargetFile } from '../src/lib/restore/extract.ts';
import { LocalDestination } from '../src/lib/restore/local-destination.ts';
import { listLocalDirectory, localSource, scanLocalDirectory } from '../src/lib/source/local-directory.ts';
import { VirtualTapeLibrary } from '../src/lib/tape/virtual-library.ts';
import { FORMAT, writeTargetFile } from '../src/lib/tape-format/index.ts';
import { alternate, generateMixed, option } from './data.ts';

const GIB = Number(option('gib', '2'));
const RUNS = Number(option('runs', '3'));
const MB = 1e6;

const work = await mkdtemp(join(tmpdir(), 'bench-restore-'));
try {
  const data = join(work, 'data');
  await mkdir(data);
  let t = performance.now();
  const g = await generateMixed(data, Math.round(GIB * 1024 ** 3));
  console.log(`data: ${g.files} files, ${(g.bytes / MB).toFixed(0)} MB, made in ${((performance.now() - t) / 1000).toFixed(1)} s`);

  const manifest: ManifestEntry[] = [];
  for await (const e of scanLocalDirectory(data)) manifest.push(e);
  const vtl = new VirtualTapeLibrary(join(work, 'vtl'));
  await vtl.createTape('bench', { capacityBytes: 10 * g.bytes });
  const drive = vtl.drive('bench0');
  await drive.load('bench');
  t = performance.now();
  const writer = await drive.openWriter();
  const header = { format: FORMAT, tapeName: 'bench', fileNumber: 0, taskId: 'bench', target: { id: 'bench', host: 'localhost', path: data } };
  await writeTargetFile({
    writer,
    header: { ...header, scanId: 'scan', writtenAt: new Date().toISOString(), manifest },
    source: localSource(data, manifest),
    listing: () => listLocalDirectory(data),
  });
  await writer.close();
  console.log(`tape file written (not timed below) in ${((performance.now() - t) / 1000).toFixed(1)} s`);
  await rm(data, { recursive: true, force: true });
  const tapeFile = vtl.tapeFilePath('bench', 0);
  const list = join(work, 'list.sha256');
  await writeFile(
    list,
    manifest
      .filter((e) => e.type === 'file')
      .map((e) => `${e.sha256}  ${e.path}\n`)
      .join(''),
  );
  const shm = await mkdtemp('/dev/shm/bench-restore-');
  const dest = join(shm, 'restored');

  const baseline = () => {
    spawnSync('rm', ['-rf', dest]);
    execFileSync('mkdir', ['-p', dest]);
    execFileSync('sync'); // the removal's write-back, not counted
    const t0 = performance.now();
    const r = spawnSync('bash', ['-c', `set -e; tar -xf "${tapeFile}" -b 512 -C "${dest}"; cd "${dest}/data"; sha256sum --quiet -c "${list}"; sync`]);
    if (r.status !== 0) throw new Error(`baseline failed: ${r.stderr}`);
    return (performance.now() - t0) / 1000;
  };
  const ours = async () => {
    spawnSync('rm', ['-rf', dest]);
    execFileSync('mkdir', ['-p', dest]);
    execFileSync('sync'); // the removal's write-back, not counted
    await drive.seekFile(0);
    const t0 = performance.now();
    const failures: string[] = [];
    const counts = await extractTargetFile({
      targetId: 'bench',
      blocks: drive.readFile(),
      manifest: (async function* () {
        yield* manifest;
      })(),
      selection: [],
      dest: new LocalDestination(dest),
      overwrite: false,
      owners: false,
      onFailure: (f) => failures.push(`${f.path}: ${f.reason}`),
    });
    execFileSync('sync');
    const s = (performance.now() - t0) / 1000;
    // Every entry (files and directories) restored, none failed.
    if (failures.length || counts.restored !== manifest.length)
      throw new Error(`restore failed: ${failures.slice(0, 3).join('; ')} (${counts.restored} of ${manifest.length} entries)`);
    return s;
  };

  const best = await alternate(RUNS, g.bytes, baseline, ours, 'restore');
  const x = best.ours;
  const y = best.baseline;
  console.log('(MB/s of file content; best run of each; both read the same tape file, check every SHA-256 and sync)');
  console.log(`restore ratio ${(x / y).toFixed(2)} (${x.toFixed(0)} MB/s vs baseline ${y.toFixed(0)} MB/s)`);
  await rm(shm, { recursive: true, force: true });
} finally {
  await rm(work, { recursive: true, force: true });
}
