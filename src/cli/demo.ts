/**
 * `npm run demo`: the seed's whole workflow on the embedded default. Starts the local system
 * (emulators, results pump, agent, virtual tape library) in a fresh work dir, makes sample
 * data, and runs: import, open tape1, assign, archive until tape1 is full, confirm, close
 * tape1, open tape2, assign the rest, archive, confirm; then a second pool: open off1 in pool
 * offsite, raise every target's copy policy to default,offsite, assign, archive and confirm
 * there; prints the tapes and targets tables; then checks every copy's tape file with GNU tar
 * against its source. Exit 0 only if every target is safe (two confirmed copies) and every
 * file checks out.
 */
import { execFile } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { Command } from 'commander';
import { startLocalSystem } from '../local/local-system.ts';
import { main as runJob } from './run-job.ts';

const run = promisify(execFile);
const o = new Command('demo')
  .option('--work-dir <dir>', 'where the demo keeps its data, catalog and virtual tapes (emptied first)', '.tape-archive/demo')
  .option('--targets <n>', 'number of sample targets', '8')
  .option('--verbose', 'show the agent log')
  .parse()
  .opts<{ workDir: string; targets: string; verbose?: boolean }>();

const workDir = resolve(o.workDir);
const say = (s: string) => console.log(s);

async function makeSampleData(root: string, n: number): Promise<string[]> {
  const paths: string[] = [];
  for (let i = 0; i < n; i++) {
    const dir = join(root, `telescope`, `2026-11-${String(i + 1).padStart(2, '0')}`, `obs-${i}`);
    await mkdir(join(dir, 'raw'), { recursive: true });
    await writeFile(join(dir, 'raw', 'frame-000.fits'), randomBytes(2_000_000 + i * 150_000));
    await writeFile(join(dir, 'raw', 'frame-001.fits'), randomBytes(1_000_000));
    await writeFile(join(dir, 'observation log.txt'), `observation ${i}\n`);
    await writeFile(join(dir, 'empty.flag'), '');
    paths.push(dir);
  }
  return paths;
}

async function digestTree(root: string, rel = ''): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  for (const name of await readdir(join(root, rel))) {
    const p = join(rel, name);
    if ((await stat(join(root, p))).isDirectory()) Object.assign(out, await digestTree(root, p));
    else
      out[p] = createHash('sha256')
        .update(await readFile(join(root, p)))
        .digest('hex');
  }
  return out;
}

async function job(env: NodeJS.ProcessEnv, args: string[]): Promise<number> {
  say(`\n$ run-job ${args.join(' ')}`);
  const code = await runJob(args, {
    out: say,
    err: (s) => console.error(s),
    env,
    pollIntervalMs: 200,
    ...(process.stderr.isTTY ? { progressStream: process.stderr } : {}),
  });
  if (code !== 0) say(`(exit ${code})`);
  return code;
}

await rm(workDir, { recursive: true, force: true });
say(`demo work dir: ${workDir}`);
const system = await startLocalSystem({ workDir, ...(o.verbose ? { agentLog: (l: string) => console.log(`  agent: ${l}`) } : {}) });
let failed = false;
try {
  const { env, vtl } = system;
  const targets = await makeSampleData(join(workDir, 'data'), Number(o.targets));
  const list = join(workDir, 'import-list.txt');
  await writeFile(list, `# sample targets\n${targets.join('\n')}\n`);
  // Virtual cartridges: tape1 is small so it fills up, as in the seed's workflow.
  await vtl.createTape('tape1', { capacityBytes: 12_000_000 });
  await vtl.createTape('tape2', { capacityBytes: 1_000_000_000 });
  await vtl.createTape('off1', { capacityBytes: 1_000_000_000 });

  await job(env, ['import', list]);
  say('(waiting for the agent to scan every target)');
  for (;;) {
    const rows = (await system.ctx.catalog.listAllTargets()).filter((t) => t.scan === 'pending');
    if (rows.length === 0) break;
    await new Promise((r) => setTimeout(r, 200));
  }
  await job(env, ['targets']);
  await job(env, ['open_tape', '--new', 'tape1', '--capacity', '12M', '--barcode', 'ACT001L9']);
  await job(env, ['assign']);
  // tape1 fills up on purpose: exit 42, the predecessor's "archive failed (the tape is full)".
  if ((await job(env, ['archive', '--all'])) === 42) say('(42: tape1 is full, as planned; its targets left over go to tape2)');
  // The predecessor's batch loop: confirm next until it is not 0 (40: nothing left to confirm).
  for (let i = 0; i < 100 && (await job(env, ['confirm', 'next'])) === 0; i++) {
    if (!(await system.ctx.catalog.listTapeFiles('tape1')).some((f) => f.state === 'archived')) break;
  }
  await job(env, ['close_tape', 'tape1', '--yes']);
  await job(env, ['open_tape', '--new', 'tape2', '--capacity', '1G', '--barcode', 'ACT002L9']);
  await job(env, ['assign']);
  await job(env, ['archive', '--all']);
  for (let i = 0; i < 100 && (await job(env, ['confirm', 'next'])) === 0; i++) {
    if (!(await system.ctx.catalog.listTapeFiles('tape2')).some((f) => f.state === 'archived')) break;
  }
  await job(env, ['targets', '--state', 'at-risk']);

  say('\n# a second copy of everything, in pool offsite (a tape that leaves the building)');
  await job(env, ['open_tape', '--new', 'off1', '--pool', 'offsite', '--capacity', '1G', '--barcode', 'ACT101L9']);
  await job(env, ['set_copies', '--all-imported', '--pools', 'default,offsite']);
  await job(env, ['assign']);
  await job(env, ['archive', '--all']);
  await job(env, ['confirm', '--all', '--pool', 'offsite']);
  await job(env, ['tapes']);
  await job(env, ['targets']);
  await job(env, ['targets', '--state', 'safe']);

  say("\nchecking every copy's tape file with GNU tar against its source:");
  for (const { target: t, copies } of await system.ctx.catalog.listAllTargetCopies()) {
    if (copies.length !== 2 || new Set(copies.map((c) => c.tapeName)).size !== 2) {
      say(`  FAIL ${t.path}: copies ${copies.map((c) => `${c.pool}:${c.tapeName ?? '-'}`).join(', ')}; expected two, on two tapes`);
      failed = true;
    }
    for (const c of copies) {
      if (c.placement !== 'confirmed' || !c.tapeName || c.fileNumber === undefined) {
        say(`  FAIL ${t.path} (pool ${c.pool}): ${c.placement}${c.lastError ? ` (${c.lastError})` : ''}`);
        failed = true;
        continue;
      }
      const file = vtl.tapeFilePath(c.tapeName, c.fileNumber);
      const dest = await mkdtemp(join(workDir, 'extract-'));
      await run('tar', ['-xf', file, '-C', dest]);
      const header = JSON.parse(await readFile(join(dest, 'header.json'), 'utf8')) as { pool?: string };
      const same = JSON.stringify(await digestTree(join(dest, 'data'))) === JSON.stringify(await digestTree(t.path)) && header.pool === c.pool;
      say(`  ${same ? 'ok  ' : 'FAIL'} ${c.pool} ${c.tapeName} file ${c.fileNumber}: tar -xf ${file} == ${t.path} (header pool ${header.pool})`);
      if (!same) failed = true;
      await rm(dest, { recursive: true, force: true });
    }
  }
} catch (e) {
  failed = true;
  console.error(`demo failed: ${(e as Error).stack ?? String(e)}`);
} finally {
  await system.stop();
}
say(
  failed
    ? '\ndemo FAILED'
    : '\ndemo passed: every target has two confirmed copies on tapes of two pools, each identical to its source when read back with GNU tar.',
);
process.exit(failed ? 1 : 0);
