/**
 * npm run bench:rebuild: rebuild_catalog of one tape holding 1,000 targets, on the local system
 * (DynamoDB Local in memory, the agent as its own process, the virtual tape library). The
 * targets are imported, scanned, archived and confirmed as an operator would; then every table
 * is deleted and bootstrapped empty, and `rebuild_catalog TAPE` is timed (the agent reads the
 * label and every tape file to its end and stores each manifest; the results pump applies
 * every report). Baselines in the same run, on the same tape: `tar -tf` of every tape file
 * (GNU tar reading the same bytes), and restore_catalog of a snapshot of the same catalog
 * (loading the same items). Runs alternate and the best of each counts. Last line:
 *   rebuild of T targets: X s (tar -t of every file: Y s; restore_catalog of the same catalog: Z s)
 *
 *   npm run bench:rebuild -- [--targets 1000] [--runs 2]
 */
import { spawnSync } from 'node:child_process';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { DeleteTableCommand, waitUntilTableNotExists } from '@aws-sdk/client-dynamodb';
import { main as runJobCli } from '../src/cli/run-job.ts';
import { createClients } from '../src/lib/aws/clients.ts';
import { loadConfig } from '../src/lib/config.ts';
import { bootstrap } from '../src/lib/resources/bootstrap.ts';
import { startLocalSystem } from '../src/local/local-system.ts';
import { option } from './data.ts';

const TARGETS = Number(option('targets', '1000'));
const RUNS = Number(option('runs', '2'));
const seconds = (t0: number) => (performance.now() - t0) / 1000;

const work = await mkdtemp(join(tmpdir(), 'bench-rebuild-'));
const system = await startLocalSystem({ workDir: join(work, 'system'), inMemory: true });
try {
  const cli = async (args: string[]) => {
    const out: string[] = [];
    const code = await runJobCli(args, { out: (s) => out.push(s), err: (s) => out.push(s), env: system.env, pollIntervalMs: 200, cwd: work });
    if (code !== 0) throw new Error(`run-job ${args.join(' ')}: exit ${code}\n${out.join('\n')}`);
    return out.join('\n');
  };
  const config = loadConfig(system.env);
  const clients = createClients(config);
  const emptyCatalog = async () => {
    for (const TableName of [config.names.catalogTable, config.names.manifestTable]) {
      await clients.dynamodb.send(new DeleteTableCommand({ TableName }));
      await waitUntilTableNotExists({ client: clients.dynamodb, maxWaitTime: 60 }, { TableName });
    }
    await bootstrap(config, clients);
  };

  let t = performance.now();
  const paths: string[] = [];
  for (let i = 0; i < TARGETS; i++) {
    const dir = join(work, 'data', `obs-${String(i).padStart(4, '0')}`);
    await mkdir(join(dir, 'raw'), { recursive: true });
    for (let f = 0; f < 3; f++) await writeFile(join(dir, 'raw', `frame-${f}.fits`), `target ${i} frame ${f}\n`.repeat(200));
    paths.push(dir);
  }
  await writeFile(join(work, 'list.txt'), `${paths.join('\n')}\n`);
  await system.vtl.createTape('big1', { capacityBytes: 100 * 1024 ** 3 });
  await cli(['open_tape', '--new', 'big1']);
  await cli(['import', join(work, 'list.txt')]);
  for (;;) {
    const out = JSON.parse(await cli(['--json', 'unassigned']));
    if (out.awaitingScan === 0 && out.count === TARGETS) break;
    await new Promise((r) => setTimeout(r, 1000));
  }
  await cli(['assign']);
  await cli(['archive', '--all']);
  console.log(`setup: ${TARGETS} targets imported, scanned and archived to big1 in ${seconds(t).toFixed(1)} s`);
  const snapshot = join(work, 'catalog.jsonl.gz');
  await cli(['snapshot_catalog', '--to', snapshot]);

  const tapeFiles = Array.from({ length: TARGETS }, (_, i) => system.vtl.tapeFilePath('big1', i + 1));
  const best = { rebuild: Infinity, tar: Infinity, restore: Infinity };
  for (let r = 0; r < RUNS; r++) {
    await emptyCatalog();
    t = performance.now();
    const out = await cli(['rebuild_catalog', 'big1']);
    best.rebuild = Math.min(best.rebuild, seconds(t));
    if (!out.includes(`big1: ${TARGETS} file(s)`)) throw new Error(`rebuild did not catalogue every file:\n${out}`);

    t = performance.now();
    for (const f of tapeFiles) {
      const tar = spawnSync('tar', ['-b', '512', '-tf', f], { stdio: ['ignore', 'ignore', 'inherit'] });
      if (tar.status !== 0) throw new Error(`tar -tf ${f} failed`);
    }
    best.tar = Math.min(best.tar, seconds(t));

    await emptyCatalog();
    t = performance.now();
    await cli(['restore_catalog', snapshot]);
    best.restore = Math.min(best.restore, seconds(t));
    console.log(
      `run ${r + 1}: rebuild ${best.rebuild.toFixed(1)} s, tar -t ${best.tar.toFixed(1)} s, restore_catalog ${best.restore.toFixed(1)} s (best so far)`,
    );
  }
  console.log(
    `rebuild of ${TARGETS} targets: ${best.rebuild.toFixed(1)} s (tar -t of every file: ${best.tar.toFixed(1)} s; restore_catalog of the same catalog: ${best.restore.toFixed(1)} s)`,
  );
} finally {
  await system.stop();
  await rm(work, { recursive: true, force: true });
}
