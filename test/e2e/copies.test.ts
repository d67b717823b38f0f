/**
 * Copies (issue 11): the seed's workflow with a two-pool policy, through run-job, the real
 * agent process and the virtual tape library. Import with --copies primary,offsite; open one
 * tape per pool; assign; archive until the primary tape is full; confirm; close it; open the
 * next; archive and confirm the rest. Every target ends with two confirmed copies on tapes of
 * two pools, each tape file extracted by GNU tar equal to its source and naming its pool. Bad
 * input (unknown pool, a pool named twice, a tape of another pool, lowering a policy below
 * its confirmed copies) is refused with a clear error and changes nothing.
 */
import { execFile } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import { promisify } from 'node:util';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createHarness, type Harness } from '../support/agent-harness.ts';
import { snapshotCatalog } from '../support/catalog-helpers.ts';
import { extractWithGnuTar, makeTarget, treeDigest } from '../support/sample-data.ts';
import { createTestStack, type TestStack } from '../support/test-stack.ts';
import { waitUntil } from '../support/wait.ts';

const run = promisify(execFile);
let stack: TestStack;
let h: Harness;

beforeAll(async () => {
  stack = await createTestStack();
  h = await createHarness(stack);
  await h.startAgent();
  await h.vtl.createTape('p1', { capacityBytes: 1_000_000 });
  await h.vtl.createTape('p2', { capacityBytes: 100_000_000 });
  await h.vtl.createTape('o1', { capacityBytes: 100_000_000 });
});
afterAll(async () => {
  await h?.close();
  await stack?.close();
});

interface Row {
  id: string;
  path: string;
  safe: boolean;
  copiesStatus: string;
  copies: { pool: string; status: string; tape?: string; fileNumber?: number; extra?: boolean }[];
}
const rows = async (args: string[] = []) => JSON.parse((await h.cli(['--json', 'targets', ...args])).out).targets as Row[];
const ok = async (args: string[]) => {
  const r = await h.cli(args);
  expect(r.code, `${args.join(' ')}: ${r.out}\n${r.err}`).toBe(0);
  return r;
};
/** A refused command: its exit code and message, and the catalog exactly as before. */
async function refused(args: string[], code: number, message: RegExp): Promise<void> {
  const before = await snapshotCatalog(stack);
  const r = await h.cli(args);
  expect(r.code, `${args.join(' ')}: ${r.out}`).toBe(code);
  expect(r.err).toMatch(message);
  expect(await snapshotCatalog(stack)).toEqual(before);
}

async function importTargets(name: string, n: number, copies: string): Promise<string[]> {
  const paths: string[] = [];
  for (let i = 0; i < n; i++) paths.push(await makeTarget(join(h.dir, 'data', `${name}-${i}`), [150_000, 100_000]));
  const list = join(h.dir, `${name}.txt`);
  await writeFile(list, paths.join('\n') + '\n');
  await ok(['import', list, '--copies', copies]);
  await waitUntil(
    async () => (await stack.ctx.catalog.listAllTargets()).filter((t) => paths.includes(t.path)).every((t) => t.scan === 'complete'),
    30_000,
    'scans',
  );
  return paths;
}

describe('the seed workflow with a two-pool policy', () => {
  it('every target ends with two confirmed copies on tapes of two pools, each equal to its source under GNU tar', async () => {
    await ok(['open_tape', '--new', 'p1', '--pool', 'primary', '--capacity', '1000000']);
    await ok(['open_tape', '--new', 'o1', '--pool', 'offsite']);
    const paths = await importTargets('obs', 4, 'primary,offsite');
    expect((await rows()).map((t) => t.copiesStatus)).toEqual(Array(4).fill('0/2 confirmed (missing: primary, offsite)'));

    const waiting = JSON.parse((await ok(['--json', 'unassigned'])).out);
    expect(waiting).toMatchObject({
      count: 4,
      awaitingScan: 0,
      pools: [
        { pool: 'offsite', count: 4 },
        { pool: 'primary', count: 4 },
      ],
    });
    expect(waiting.bytes).toBe(2 * 4 * 250_000);
    const assigned = await ok(['assign']);
    expect(JSON.parse((await ok(['--json', 'unassigned'])).out)).toMatchObject({ count: 0, bytes: 0, pools: [] });
    expect(assigned.out).toMatch(/assigned 4 target\(s\) to p1 \(pool primary\)/);
    expect(assigned.out).toMatch(/assigned 4 target\(s\) to o1 \(pool offsite\)/);

    // Both pools, one after the other; p1 fills up after two files.
    const archived = await h.cli(['archive', '--all']);
    expect(archived.code, archived.err).toBe(42); // p1 filled up: the predecessor's "archive failed"
    expect(archived.out).toMatch(/pool offsite:[\s\S]*archive --all on o1: 4 archived/);
    expect(archived.out).toMatch(/pool primary:[\s\S]*archive --all on p1: 2 archived .*stopped: p1 is full/);
    expect((await stack.ctx.catalog.getTape('p1'))?.state).toBe('full');
    // A pool that cannot write is reported, the others go on, and the exit says something failed.
    const both = await h.cli(['archive']);
    expect(both.code).toBe(42);
    expect(both.out).toMatch(/pool offsite:\nno targets are assigned to o1/);
    expect(both.out).toMatch(/FAILED: pool primary: the online tape p1 is full/);

    // Two pools are online: confirm must be told which.
    await refused(['confirm', 'next'], 2, /several pools have an online tape \(offsite: o1, primary: p1\); say which with --pool POOL or --tape NAME/);
    await ok(['confirm', '--all', '--pool', 'primary']);
    await ok(['close_tape', 'p1', '--yes']);
    await ok(['open_tape', '--new', 'p2', '--pool', 'primary']);
    expect((await ok(['assign', 'p2'])).out).toMatch(/assigned 2 target\(s\) to p2/);
    await ok(['archive', '--repeat', '--pool', 'primary']); // the predecessor's name for --all
    await ok(['confirm', '--all', '--pool', 'primary']);
    expect((await rows(['--state', 'safe'])).length).toBe(0);
    await ok(['confirm', '--all', '--pool', 'offsite']);

    const all = await rows();
    expect(all.map((t) => t.path).sort()).toEqual([...paths].sort());
    expect((await rows(['--state', 'safe'])).length).toBe(4);
    expect((await rows(['--state', 'at-risk'])).length).toBe(0);
    expect((await h.cli(['status'])).out).toMatch(/copies: 4 target\(s\) safe .*, 0 at risk/);
    for (const t of all) {
      expect(t.safe, t.path).toBe(true);
      expect(t.copies.map((c) => [c.pool, c.status])).toEqual([
        ['primary', 'confirmed'],
        ['offsite', 'confirmed'],
      ]);
      const [p, o] = t.copies;
      expect(['p1', 'p2']).toContain(p!.tape);
      expect(o!.tape).toBe('o1');
      for (const c of t.copies) {
        const { data, header } = await extractWithGnuTar(h.vtl.tapeFilePath(c.tape!, c.fileNumber!));
        expect(data, `${t.path} on ${c.tape}`).toEqual(await treeDigest(t.path));
        expect(header).toMatchObject({ pool: c.pool, target: { id: t.id } });
      }
    }
    // tape_detail: one row per file; with a file number and -v, a list sha256sum -c accepts in the target directory.
    expect((await ok(['tape_detail', 'o1'])).out).toMatch(/tape o1 \(pool offsite\): 4 file\(s\)/);
    const first = all.find((t) => t.copies.some((c) => c.tape === 'o1' && c.fileNumber === 1))!;
    const list = (await ok(['tape_detail', 'o1', '1', '-v'])).out;
    expect(list.split('\n')).toHaveLength(2);
    await writeFile(join(h.dir, 'o1-1.sha256'), `${list}\n`);
    const check = await run('sha256sum', ['-c', '--strict', join(h.dir, 'o1-1.sha256')], { cwd: first.path });
    expect(check.stdout).toMatch(/file-0\.dat: OK\n.*file-1\.dat: OK/s);
    await refused(['tape_detail', 'o1', '99'], 1, /tape o1 has no file 99/);
    await refused(['tape_detail', 'nosuch'], 1, /tape nosuch is not registered/);
    await refused(['tapes', 'nosuch'], 1, /tape nosuch is not registered/);
    const p1 = (await ok(['status', 'p1'])).out;
    expect(p1).toMatch(/^tape p1 \(pool primary, closed\): confirmed 2 \(/m);
    expect(p1).toMatch(/^ {2}1 - 2 : confirmed$/m);
    expect(JSON.parse((await ok(['--json', 'status', 'o1'])).out).tape).toMatchObject({ layout: [{ from: 1, to: 4, state: 'confirmed' }], assigned: 0 });
    await refused(['status', 'nosuch'], 1, /tape nosuch is not registered/);
    expect(JSON.parse((await ok(['--json', 'tapes', 'o1', '-v'])).out).tapes.map((t: { name: string }) => t.name)).toEqual(['o1']);
    const tapes = JSON.parse((await h.cli(['--json', 'tapes'])).out).tapes as { name: string; pool: string; filesConfirmed: number }[];
    expect(tapes.map((t) => [t.name, t.pool, t.filesConfirmed])).toEqual([
      ['o1', 'offsite', 4],
      ['p1', 'primary', 2],
      ['p2', 'primary', 2],
    ]);
  });

  it('bad input gets a clear error and changes nothing', async () => {
    const list = join(h.dir, 'bad.txt');
    await writeFile(list, `${await makeTarget(join(h.dir, 'data', 'bad-0'), [1000])}\n`);
    await refused(
      ['import', list, '--copies', 'primary,ofsite'],
      1,
      /unknown pool\(s\) ofsite: no tape is registered in them .*open_tape NAME --new --pool ofsite/,
    );
    await refused(['import', list, '--copies', 'primary,primary'], 1, /names pool primary twice/);
    await refused(['archive', '--pool', 'nosuch'], 1, /unknown pool\(s\) nosuch/);
    await refused(['confirm', 'next', '--pool', 'primary', '--tape', 'o1'], 1, /tape o1 is in pool offsite, not primary/);

    await refused(['activate_tape', 'nosuch'], 1, /tape nosuch is not registered; activate_tape only brings a registered tape online/);
    await refused(['activate_tape', 'p1'], 1, /tape p1 is closed and cannot be opened/);
    expect((await ok(['activate_tape', 'o1'])).out).toMatch(/o1 is already the online tape of pool offsite/);

    // A target with a primary copy only: the offsite tape cannot take it.
    await importTargets('single', 1, 'primary');
    const single = (await rows()).find((t) => t.path.includes('single-0'))!;
    expect(single.copies.map((c) => c.pool)).toEqual(['primary']);
    await refused(['assign', 'o1', '--target', single.id], 1, /has no copy in pool offsite, the pool of tape o1 .*set_copies/);

    // Lowering a policy below its confirmed copies needs --force; the copy is then kept as extra, never deleted.
    const safe = (await rows(['--state', 'safe']))[0]!;
    await refused(['set_copies', safe.id, '--pools', 'primary'], 1, /drops pool\(s\) offsite that hold data on tape .*--force/);
    await refused(['set_copies', safe.id, '--pools', 'primary,primary'], 1, /names pool primary twice/);
    await refused(['set_copies', '--pools', 'primary'], 2, /name the targets whose copy policy changes, or use --all-imported/);
    await ok(['set_copies', safe.id, '--pools', 'primary', '--force']);
    const lowered = (await rows()).find((t) => t.id === safe.id)!;
    expect(lowered).toMatchObject({ safe: true, copiesStatus: 'safe' });
    expect(lowered.copies).toEqual([
      expect.objectContaining({ pool: 'primary', status: 'confirmed' }),
      expect.objectContaining({ pool: 'offsite', status: 'confirmed', extra: true }),
    ]);
  });
});
