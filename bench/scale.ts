/**
 * npm run bench:scale: a large catalog and a large target, on the local system (DynamoDB
 * Local, local SQS, the real agent process, the virtual tape library).
 *
 * DynamoDB Local runs in memory (see below).
 *
 *  1. A target of FILES files (default 1,000,000, 1,000 a directory) goes through the agent as
 *     an operator's would: import (the agent scans it and stores its manifest and name index
 *     page by page), open_tape, assign, archive (write), confirm (verify). The agent's peak RSS
 *     (VmHWM of its process) is read before it stops.
 *  2. TARGETS - 1 more targets of SMALL files each go straight into the catalog (targets,
 *     copies, manifests with their name index), so the catalog holds at least
 *     FILES + (TARGETS - 1) * SMALL files in TARGETS targets.
 *  3. LOOKUPS where_is lookups of base names picked at random from both (the job as run-job
 *     runs it, in-process): p50 and p95, against the 1 s target.
 *
 * Last two lines:
 *   scale where_is p50 A ms p95 B ms
 *   scale peak rss C MB
 *
 *   npm run bench:scale -- [--files 1000000] [--targets 2000] [--small 50] [--lookups 100]
 */
import { readFileSync } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { main as runJobCli } from '../src/cli/run-job.ts';
import { newCopies } from '../src/lib/domain/copies.ts';
import type { ManifestEntry } from '../src/lib/domain/manifest.ts';
import { targetId, type Target } from '../src/lib/domain/target.ts';
import { runJob } from '../src/lib/jobs/registry.ts';
import { mapLimit } from '../src/lib/concurrency.ts';
import { startLocalSystem } from '../src/local/local-system.ts';
import { option, rng } from './data.ts';

const FILES = Number(option('files', '1000000'));
const TARGETS = Number(option('targets', '2000'));
const SMALL = Number(option('small', '50'));
const LOOKUPS = Number(option('lookups', '100'));
const PER_DIR = 1000;

const seconds = (t0: number) => ((performance.now() - t0) / 1000).toFixed(1);
const fileName = (i: number) => `frame-${String(i).padStart(7, '0')}.fits`;
const smallName = (t: number, i: number) => `obs-${String(t).padStart(4, '0')}-${String(i).padStart(3, '0')}.dat`;

const work = await mkdtemp(join(tmpdir(), 'bench-scale-'));
// DynamoDB Local in memory: on disk it takes about 800 items/s here, which would measure the
// emulator's sqlite, not this code (real DynamoDB takes the batches in parallel).
const system = await startLocalSystem({ workDir: join(work, 'system'), inMemory: true });
try {
  const cli = async (args: string[]) => {
    const out: string[] = [];
    const code = await runJobCli(args, { out: (s) => out.push(s), err: (s) => out.push(s), env: system.env, pollIntervalMs: 1000, cwd: work });
    if (code !== 0) throw new Error(`run-job ${args.join(' ')}: exit ${code}\n${out.join('\n')}`);
    return out.join('\n');
  };

  // 1. The big target, through the agent.
  let t = performance.now();
  const big = join(work, 'data', 'big-target');
  for (let d = 0; d * PER_DIR < FILES; d++) {
    const dir = join(big, `night-${String(d).padStart(4, '0')}`);
    await mkdir(dir, { recursive: true });
    const n = Math.min(PER_DIR, FILES - d * PER_DIR);
    await mapLimit(
      Array.from({ length: n }, (_, i) => d * PER_DIR + i),
      64,
      (i) => writeFile(join(dir, fileName(i)), `frame ${i}\n`),
    );
  }
  console.log(`data: ${FILES} files in ${Math.ceil(FILES / PER_DIR)} directories, made in ${seconds(t)} s`);
  await writeFile(join(work, 'list.txt'), `${big}\n`);
  const id = targetId('localhost', big);
  t = performance.now();
  await cli(['import', join(work, 'list.txt')]);
  for (;;) {
    const target = await system.ctx.catalog.getTarget(id);
    if (target?.scan === 'complete') break;
    if (target?.scan === 'failed') throw new Error(`the scan failed: ${target.scanError}`);
    await new Promise((r) => setTimeout(r, 1000));
  }
  const scanned = (await system.ctx.catalog.getTarget(id))!;
  console.log(`scan (agent: sizes, SHA-256, manifest pages and name index): ${scanned.manifestPages} pages in ${seconds(t)} s`);
  await system.vtl.createTape('big1', { capacityBytes: 20 * 1024 ** 3 });
  await cli(['open_tape', '--new', 'big1']);
  await cli(['assign']);
  t = performance.now();
  console.log((await cli(['archive'])).split('\n').at(-1));
  console.log(`write (agent): ${seconds(t)} s`);
  t = performance.now();
  console.log((await cli(['confirm', 'next'])).split('\n').at(-1));
  console.log(`verify (agent): ${seconds(t)} s`);
  const status = readFileSync(`/proc/${system.agent.pid}/status`, 'utf8');
  const peakKb = Number(/VmHWM:\s+(\d+) kB/.exec(status)?.[1] ?? Number.NaN);

  // 2. The rest of the catalog, straight into the tables.
  t = performance.now();
  const now = new Date().toISOString();
  await mapLimit(
    Array.from({ length: TARGETS - 1 }, (_, k) => k),
    8,
    async (k) => {
      const path = `/data/generated/run-${String(k).padStart(4, '0')}`;
      const scanId = `scan-${k}`;
      const entries: ManifestEntry[] = Array.from({ length: SMALL }, (_, i) => ({
        path: `raw/${smallName(k, i)}`,
        type: 'file' as const,
        size: 1000 + i,
        mtimeMs: Date.parse(now),
        mode: 0o644,
        sha256: (k * SMALL + i).toString(16).padStart(64, '0'),
      }));
      const pages = await system.ctx.manifests.write(targetId('archive-host', path), scanId, entries, { names: system.ctx.names });
      const target: Target = {
        id: targetId('archive-host', path),
        host: 'archive-host',
        path,
        scan: 'complete',
        scanId,
        manifestPages: pages,
        fileCount: SMALL,
        totalBytes: entries.reduce((n, e) => n + e.size, 0),
        copies: ['default'],
        importedAt: now,
        updatedAt: now,
        version: 1,
      };
      await system.ctx.catalog.createTarget(target, newCopies(target, now));
    },
  );
  const total = FILES + (TARGETS - 1) * SMALL;
  console.log(`catalog: ${total} files in ${TARGETS} targets (${TARGETS - 1} generated in ${seconds(t)} s)`);

  // 3. where_is of base names, picked at random from the whole catalog.
  const random = rng(42);
  const ms: number[] = [];
  for (let n = 0; n < LOOKUPS; n++) {
    const fromBig = random() < FILES / total;
    const name = fromBig ? fileName(Math.floor(random() * FILES)) : smallName(Math.floor(random() * (TARGETS - 1)), Math.floor(random() * SMALL));
    const t0 = performance.now();
    const r = await runJob(system.ctx, 'where_is', { pattern: name });
    ms.push(performance.now() - t0);
    if (r.matches.length !== 1) throw new Error(`where_is ${name}: ${r.matches.length} matches, expected 1`);
  }
  ms.sort((a, b) => a - b);
  const pct = (p: number) => ms[Math.min(ms.length - 1, Math.ceil((p / 100) * ms.length) - 1)]!;
  console.log(`(where_is: ${LOOKUPS} lookups of a base name, each found once, through the job as run-job runs it; target < 1000 ms)`);
  console.log(`(peak rss: VmHWM of the agent process after the scan, write and verify of the ${FILES}-file target; target < 300 MB)`);
  console.log(`scale where_is p50 ${pct(50).toFixed(0)} ms p95 ${pct(95).toFixed(0)} ms`);
  console.log(`scale peak rss ${(peakKb / 1024).toFixed(0)} MB`);
} finally {
  await system.stop();
  await rm(work, { recursive: true, force: true });
}
