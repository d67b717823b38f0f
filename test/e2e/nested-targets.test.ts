/**
 * Nested targets end to end (run-job, the real agent, the virtual tape library): a parent and
 * its child imported together are archived each on its own, and GNU tar lists none of the
 * child's members in the parent's tape file (a sibling sharing the child's name as a prefix
 * stays in it); a child imported after its parent was scanned gets the parent rescanned
 * before it is written; a grandchild imported after its parent (the child) is on tape leaves
 * that file as it is, which where_is and restore still find it in, and the parent's next
 * rescan (for a new copy in another pool) leaves it out of the new tape file.
 */
import { execFile } from 'node:child_process';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { targetId } from '../../src/lib/domain/target.ts';
import { createHarness, type Harness } from '../support/agent-harness.ts';
import { makeTarget } from '../support/sample-data.ts';
import { createTestStack, type TestStack } from '../support/test-stack.ts';
import { waitUntil } from '../support/wait.ts';

const run = promisify(execFile);
let stack: TestStack;
let h: Harness;
let d: Record<'parent' | 'child' | 'grandchild' | 'other' | 'late', string>;
const id = (path: string) => targetId('localhost', path);

const ok = async (args: string[]) => {
  const r = await h.cli(args);
  expect(r.code, `${args.join(' ')}: ${r.out}\n${r.err}`).toBe(0);
  return r.out;
};
const importJson = async (name: string, paths: string[]) => {
  await writeFile(join(h.dir, name), paths.join('\n') + '\n');
  return JSON.parse(await ok(['--json', 'import', join(h.dir, name)]));
};
const scanned = (paths: string[]) =>
  waitUntil(async () => (await stack.ctx.catalog.listAllTargets()).filter((t) => paths.includes(t.path)).every((t) => t.scan === 'complete'), 30_000, 'scans');
/** The data members of a target's copy in `pool` on its tape, as GNU tar lists them (relative to the target). */
async function members(path: string, pool = 'default'): Promise<string[]> {
  const c = (await stack.ctx.catalog.getTargetCopies(id(path)))!.copies.find((x) => x.pool === pool)!;
  const file = join(h.dir, 'vtl', 'tapes', c.tapeName!, `file-${String(c.fileNumber).padStart(4, '0')}`);
  const { stdout } = await run('tar', ['-tf', file]);
  return stdout
    .split('\n')
    .filter((m) => m.startsWith('data/') && m !== 'data/')
    .map((m) => m.slice('data/'.length).replace(/\/$/, ''));
}
type Match = { targetId: string; dir: string; path: string; current: boolean; copies: { pool: string; tape?: string; state: string }[] };
const whereIs = async (pattern: string) => (JSON.parse(await ok(['--json', 'where_is', pattern])) as { matches: Match[] }).matches;

beforeAll(async () => {
  stack = await createTestStack();
  h = await createHarness(stack);
  await h.startAgent();
  await h.vtl.createTape('n1', { capacityBytes: 100_000_000 });
  await h.vtl.createTape('off1', { capacityBytes: 100_000_000 });
  const data = join(h.dir, 'data');
  d = {
    parent: await makeTarget(join(data, 'season'), [1000, 1100, 1200]),
    child: await makeTarget(join(data, 'season', 'obs1'), [2000, 2100, 2200]),
    grandchild: join(data, 'season', 'obs1', 'night'),
    other: await makeTarget(join(data, 'other'), [3000]),
    late: await makeTarget(join(data, 'other', 'late'), [4000]),
  };
  await mkdir(d.grandchild);
  await writeFile(join(d.grandchild, 'grand.dat'), 'the grandchild file\n');
  // Not a target: shares the child's name as a prefix, and stays in the parent.
  await mkdir(join(d.parent, 'obs1b'));
  await writeFile(join(d.parent, 'obs1b', 'keep.dat'), 'kept in the parent\n');
}, 60_000);
afterAll(async () => {
  await h?.close();
  await stack?.close();
});

describe('nested targets', () => {
  it('a parent and its child imported together: each tape file holds its own files only', async () => {
    const r = await importJson('list1.txt', [d.parent, d.child, d.other]);
    expect(r.nested).toEqual([{ id: id(d.parent), host: 'localhost', path: d.parent, excludes: [d.child] }]);
    await scanned([d.parent, d.child, d.other]);

    // A child of a target already scanned, not yet written: the parent is rescanned first.
    await writeFile(join(h.dir, 'list2.txt'), `${d.late}\n`);
    const out = await ok(['import', join(h.dir, 'list2.txt')]);
    expect(out).toMatch(
      new RegExp(`nested: localhost:${d.other} \\(${id(d.other)}\\) was scanned but is not yet written: it was rescanned, leaving out ${d.late}`),
    );
    await scanned([d.other, d.late]);
    expect((await stack.ctx.catalog.getTarget(id(d.other)))?.excludes).toEqual([d.late]);

    for (const args of [['open_tape', '--new', 'n1'], ['assign'], ['archive', '--all'], ['confirm', '--all']]) await ok(args);
    const parent = await members(d.parent);
    expect(parent.filter((m) => m === 'obs1' || m.startsWith('obs1/'))).toEqual([]);
    expect(parent).toEqual(expect.arrayContaining(['file-0.dat', 'sub/file-1.dat', 'sub/deeper/file-2.dat', 'obs1b/keep.dat']));
    expect(await members(d.child)).toEqual(expect.arrayContaining(['file-0.dat', 'sub/deeper/file-2.dat', 'night/grand.dat']));
    expect((await members(d.other)).filter((m) => m.startsWith('late'))).toEqual([]);
    expect(await members(d.late)).toContain('file-0.dat');
    // Nothing twice: the child's file is found in the child only.
    expect((await whereIs('grand.dat')).map((m) => [m.dir, m.path])).toEqual([[d.child, 'night/grand.dat']]);
  });

  it('a grandchild imported once its parent is on tape: that file stays, and where_is and restore find it there', async () => {
    const r = await importJson('list3.txt', [d.grandchild]);
    expect(r.parents).toMatchObject([{ id: id(d.child), children: [d.grandchild], excludes: [d.grandchild], action: 'on-tape' }]);
    expect(r.parents[0].message).toMatch(
      /is already on tape: its tape files \(default: n1 file \d+\) keep the files of .*night they hold, and where_is and restore find them there too/,
    );
    expect((await stack.ctx.catalog.getTarget(id(d.child)))?.excludes).toBeUndefined();
    await scanned([d.grandchild]);
    const matches = await whereIs('grand.dat');
    expect(matches.map((m) => [m.dir, m.path, m.current, m.copies.map((c) => `${c.pool} ${c.tape ?? ''} ${c.state}`)])).toEqual([
      [d.child, 'night/grand.dat', true, ['default n1 confirmed']],
      [d.grandchild, 'grand.dat', true, ['default  unassigned']],
    ]);
    const to = join(h.dir, 'restored');
    await ok(['restore', id(d.child), 'night/grand.dat', '--to', to]);
    expect(await readFile(join(to, 'night', 'grand.dat'), 'utf8')).toBe('the grandchild file\n');
  });

  it("the parent's next rescan leaves the grandchild out; its old file keeps it", async () => {
    await ok(['open_tape', '--new', 'off1', '--pool', 'offsite']);
    await ok(['set_copies', id(d.child), '--pools', 'default,offsite']);
    await ok(['rescan', id(d.child)]);
    await scanned([d.child]);
    expect((await stack.ctx.catalog.getTarget(id(d.child)))?.excludes).toEqual([d.grandchild]);
    await ok(['assign']);
    await ok(['archive', '--all']);
    const offsite = await members(d.child, 'offsite');
    expect(offsite.filter((m) => m.startsWith('night'))).toEqual([]);
    expect(offsite).toContain('sub/deeper/file-2.dat');
    expect(await members(d.child, 'default')).toContain('night/grand.dat');
    expect(await members(d.grandchild)).toEqual(['grand.dat']);
    const matches = await whereIs('grand.dat');
    expect(matches.map((m) => [m.dir, m.current, m.copies.map((c) => `${c.pool} ${c.tape} ${c.state}`)])).toEqual([
      [d.child, false, ['default n1 confirmed']],
      [d.grandchild, true, ['default n1 archived']],
    ]);
    // The old file is restored from as before (it records the scan it was written from).
    const to = join(h.dir, 'restored-again');
    await ok(['restore', id(d.child), 'night/grand.dat', '--to', to, '--from', 'default']);
    expect(await readFile(join(to, 'night', 'grand.dat'), 'utf8')).toBe('the grandchild file\n');
  });
});
