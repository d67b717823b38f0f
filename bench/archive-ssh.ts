/**
 * Archive throughput over SSH: SshDataSource.stream -> writeTargetFile -> a virtual tape
 * (VirtualTapeLibrary writer, fsync at close), against the OpenSSH client pipeline
 * `ssh HOST tar cf - -C DIR . | tee FILE | openssl sha256` followed by `sync FILE` (the
 * baseline persists its file too, since our writer fsyncs at close), same data, same server,
 * same cipher on both sides.
 *
 *   npx tsx bench/archive-ssh.ts [--gib 2] [--runs 2] [--cipher aes128-gcm@openssh.com]
 *
 * Starts its own sshd (test/support/sshd.ts) and makes about 2 GiB of mixed files in a temp
 * dir (half the bytes in 4-64 KiB files, the rest in 1-100 MiB files, like
 * bench/data.ts). The scan is done beforehand and not timed. After one warm-up,
 * baseline and ours alternate `--runs` times; the best of each is kept. Both include
 * connecting. Everything generated is removed at the end.
 * Last line: `archive-ssh ratio R (X MB/s vs baseline Y MB/s)`, MB = 10^6 bytes of file content.
 */
import { spawn } from 'node:child_process';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import type { ManifestEntry } from '../src/lib/domain/manifest.ts';
import { SshDataSource } from '../src/lib/source/ssh-source.ts';
import { shellQuote } from '../src/lib/source/ssh/remote-scripts.ts';
import { writeTargetFile } from '../src/lib/tape-format/index.ts';
import { VirtualTapeLibrary } from '../src/lib/tape/virtual-library.ts';
import { sshSourceOptions, startSshd, type SshdFixture } from '../test/support/sshd.ts';
import { generateMixed, option } from './data.ts';

const opt = option;
const GIB = Number(opt('gib', '2'));
const RUNS = Number(opt('runs', '2'));
const CIPHER = opt('cipher', 'aes128-gcm@openssh.com');
const MiB = 1024 * 1024;

function sh(script: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const p = spawn('bash', ['-c', script], { stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    p.stderr.on('data', (b: Buffer) => (err += b.toString()));
    p.on('error', reject);
    p.on('close', (code) => (code === 0 ? resolve() : reject(new Error(`baseline exited ${code}: ${err}`))));
  });
}

async function baseline(sshd: SshdFixture, data: string, out: string): Promise<number> {
  await rm(out, { force: true });
  const ssh = [
    'ssh',
    `-p ${sshd.port}`,
    `-i ${shellQuote(sshd.privateKeyPath)}`,
    `-o UserKnownHostsFile=${shellQuote(sshd.knownHostsPath)}`,
    '-o StrictHostKeyChecking=yes -o BatchMode=yes -o IdentitiesOnly=yes',
    `-c ${CIPHER}`,
    `${sshd.username}@${sshd.host}`,
    shellQuote(`tar cf - -C ${shellQuote(data)} .`),
  ].join(' ');
  const t = performance.now();
  await sh(`set -o pipefail; ${ssh} | tee ${shellQuote(out)} | openssl sha256 >/dev/null && sync ${shellQuote(out)}`);
  return (performance.now() - t) / 1000;
}

async function ours(sshd: SshdFixture, data: string, manifest: ManifestEntry[], lib: VirtualTapeLibrary): Promise<number> {
  const drive = lib.drive('bench-drive');
  await drive.load('BENCH1');
  await rm(lib.tapeDir('BENCH1') + '/file-0000', { force: true });
  const t = performance.now();
  const src = new SshDataSource(sshSourceOptions(sshd, { ciphers: [CIPHER] }));
  try {
    const writer = await drive.openWriter();
    try {
      await writeTargetFile({
        writer,
        header: {
          tapeName: 'BENCH1',
          fileNumber: writer.fileNumber,
          taskId: 'bench',
          target: { id: 'bench', host: sshd.host, path: data },
          scanId: 'bench-scan',
          writtenAt: new Date().toISOString(),
          manifest,
        },
        source: src.stream(data, manifest),
        listing: () => src.list(data), // as the agent does: nothing added since the scan
      });
      await writer.close();
    } catch (e) {
      await writer.abort();
      throw e;
    }
  } finally {
    await src.close();
  }
  return (performance.now() - t) / 1000;
}

async function main() {
  const sshd = await startSshd();
  const work = await mkdtemp(join(tmpdir(), 'bench-archive-ssh-'));
  const data = join(work, 'data');
  try {
    let t = performance.now();
    await mkdir(data);
    const g = await generateMixed(data, Math.round(GIB * 1024 * MiB));
    await sh('sync');
    console.log(`data: ${g.files} files, ${(g.bytes / MiB).toFixed(0)} MiB, made in ${((performance.now() - t) / 1000).toFixed(1)} s`);
    console.log(`cipher: ${CIPHER} on both sides; sshd ${sshd.host}:${sshd.port}; each run includes connecting`);
    console.log(
      'baseline: ssh HOST tar cf - -C DIR . | tee FILE | openssl sha256, then sync FILE (our tape writer fsyncs at close, so the baseline persists its file too)',
    );

    const src = new SshDataSource(sshSourceOptions(sshd));
    t = performance.now();
    const manifest: ManifestEntry[] = [];
    for await (const e of src.scan(data)) manifest.push(e);
    await src.close();
    console.log(`scan (not timed in the ratio): ${manifest.length} entries in ${((performance.now() - t) / 1000).toFixed(1)} s`);

    const lib = new VirtualTapeLibrary(join(work, 'vtl'));
    await lib.createTape('BENCH1', { capacityBytes: 1024 * 1024 * MiB });
    const out = join(work, 'baseline.tar');

    t = performance.now();
    await baseline(sshd, data, out); // warm-up, not counted
    console.log(`warm-up ${((performance.now() - t) / 1000).toFixed(2)} s`);
    const base: number[] = [];
    const mine: number[] = [];
    const mb = g.bytes / 1e6;
    for (let r = 0; r < RUNS; r++) {
      const b = await baseline(sshd, data, out);
      base.push(b);
      await rm(out, { force: true });
      const o = await ours(sshd, data, manifest, lib);
      mine.push(o);
      console.log(`run ${r + 1}: baseline ${b.toFixed(2)} s (${(mb / b).toFixed(0)} MB/s), ours ${o.toFixed(2)} s (${(mb / o).toFixed(0)} MB/s)`);
    }
    const y = mb / Math.min(...base);
    const x = mb / Math.min(...mine);
    console.log(`archive-ssh ratio ${(x / y).toFixed(2)} (${x.toFixed(0)} MB/s vs baseline ${y.toFixed(0)} MB/s)`);
  } finally {
    await rm(work, { recursive: true, force: true });
    await sshd.stop();
  }
}

await main();
