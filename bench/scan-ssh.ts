/**
 * Scan throughput over SSH: SshDataSource.scan against the OpenSSH client running
 * `find DIR -type f -print0 | xargs -0 sha256sum` on the same data, same server, same cipher.
 *
 *   npx tsx bench/scan-ssh.ts [--files 100000] [--runs 2] [--cipher aes128-gcm@openssh.com]
 *
 * Starts its own sshd (test/support/sshd.ts), makes N small files (1-4 KiB, 1000 per
 * directory) in a temp dir, warms the page cache, then alternates baseline and ours `--runs`
 * times and keeps the best of each. Both include connecting (handshake + key auth). The data is
 * removed at the end. Last line: `scan ratio R (X files/s vs baseline Y files/s)`, R = X / Y.
 */
import { spawn } from 'node:child_process';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { SshDataSource } from '../src/lib/source/ssh-source.ts';
import { shellQuote } from '../src/lib/source/ssh/remote-scripts.ts';
import { option, rng } from './data.ts';
import { sshSourceOptions, startSshd, type SshdFixture } from '../test/support/sshd.ts';

const opt = option;
const FILES = Number(opt('files', '100000'));
const RUNS = Number(opt('runs', '2'));
const CIPHER = opt('cipher', 'aes128-gcm@openssh.com');
const PER_DIR = 1000;

async function generate(dir: string, files: number): Promise<void> {
  const rand = rng(7);
  // small files (1-4 KiB), PER_DIR a directory
  const pool = Buffer.allocUnsafe(1024 * 1024);
  for (let i = 0; i < pool.length; i += 4) pool.writeUInt32LE((rand() * 0x100000000) >>> 0, i);
  for (let d = 0; d * PER_DIR < files; d++) {
    const sub = join(dir, `d${String(d).padStart(4, '0')}`);
    await mkdir(sub, { recursive: true });
    const jobs: Promise<void>[] = [];
    for (let i = 0; i < PER_DIR && d * PER_DIR + i < files; i++) {
      const size = 1024 + Math.floor(rand() * 3 * 1024);
      const off = Math.floor(rand() * (pool.length - size));
      jobs.push(writeFile(join(sub, `file-${String(i).padStart(4, '0')}.dat`), pool.subarray(off, off + size)));
    }
    await Promise.all(jobs);
  }
}

function run(cmd: string, argv: string[]): Promise<void> {
  return new Promise((resolve, reject) => {
    const p = spawn(cmd, argv, { stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    p.stderr.on('data', (b: Buffer) => (err += b.toString()));
    p.on('error', reject);
    p.on('close', (code) => (code === 0 ? resolve() : reject(new Error(`${cmd} exited ${code}: ${err}`))));
  });
}

async function baseline(sshd: SshdFixture, dir: string): Promise<number> {
  const t = performance.now();
  await run('ssh', [
    '-p',
    String(sshd.port),
    '-i',
    sshd.privateKeyPath,
    '-o',
    `UserKnownHostsFile=${sshd.knownHostsPath}`,
    '-o',
    'StrictHostKeyChecking=yes',
    '-o',
    'BatchMode=yes',
    '-o',
    'IdentitiesOnly=yes',
    '-c',
    CIPHER,
    `${sshd.username}@${sshd.host}`,
    `find ${shellQuote(dir)} -type f -print0 | xargs -0 sha256sum`,
  ]);
  return (performance.now() - t) / 1000;
}

async function ours(sshd: SshdFixture, dir: string): Promise<{ s: number; files: number }> {
  const t = performance.now();
  const src = new SshDataSource(sshSourceOptions(sshd, { ciphers: [CIPHER] }));
  let files = 0;
  try {
    for await (const e of src.scan(dir)) if (e.type === 'file') files++;
  } finally {
    await src.close();
  }
  return { s: (performance.now() - t) / 1000, files };
}

async function main() {
  const sshd = await startSshd();
  const work = await mkdtemp(join(tmpdir(), 'bench-scan-ssh-'));
  const data = join(work, 'data');
  try {
    let t = performance.now();
    await generate(data, FILES);
    await run('sync', []);
    console.log(`data: ${FILES} files of 1-4 KiB in ${Math.ceil(FILES / PER_DIR)} dirs, made in ${((performance.now() - t) / 1000).toFixed(1)} s`);
    console.log(`cipher: ${CIPHER} on both sides; sshd ${sshd.host}:${sshd.port}; each run includes connecting`);
    t = performance.now();
    await baseline(sshd, data); // warm-up: page cache and dentries, not counted
    console.log(`warm-up ${((performance.now() - t) / 1000).toFixed(2)} s`);
    const base: number[] = [];
    const mine: number[] = [];
    for (let r = 0; r < RUNS; r++) {
      const b = await baseline(sshd, data);
      base.push(b);
      const o = await ours(sshd, data);
      if (o.files !== FILES) throw new Error(`scan found ${o.files} files, expected ${FILES}`);
      mine.push(o.s);
      console.log(
        `run ${r + 1}: baseline ${b.toFixed(2)} s (${(FILES / b).toFixed(0)} files/s), SshDataSource.scan ${o.s.toFixed(2)} s (${(FILES / o.s).toFixed(0)} files/s)`,
      );
    }
    const y = FILES / Math.min(...base);
    const x = FILES / Math.min(...mine);
    console.log(`scan ratio ${(x / y).toFixed(2)} (${x.toFixed(0)} files/s vs baseline ${y.toFixed(0)} files/s)`);
  } finally {
    await rm(work, { recursive: true, force: true });
    await sshd.stop();
  }
}

await main();
