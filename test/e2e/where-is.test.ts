/**
 * where_is (issue 12): two targets with the same names are archived and confirmed through
 * run-job, the real agent and the virtual tape library; where_is finds a file by base name, by
 * relative path and by glob (with and without a literal base name, across the archive and in
 * one target), with its size, its SHA-256 as on the data host, and its copy (pool, tape, file
 * number, state). An index of an older scan that is on no tape is not shown. Bad input is
 * refused with exit 2 or 1, and a pattern matching nothing says so with exit 40.
 */
import { createHash } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createHarness, type Harness } from '../support/agent-harness.ts';
import { makeTarget } from '../support/sample-data.ts';
import { createTestStack, type TestStack } from '../support/test-stack.ts';
import { waitUntil } from '../support/wait.ts';

let stack: TestStack;
let h: Harness;
let paths: string[] = [];
const ids: string[] = [];

interface Match {
  targetId: string;
  dir: string;
  path: string;
  type: string;
  size: number;
  sha256?: string;
  current: boolean;
  copies: { pool: string; tape?: string; fileNumber?: number; state: string }[];
}
const whereIs = async (...args: string[]) => {
  const r = await h.cli(['--json', 'where_is', ...args]);
  expect(r.code, r.err).toBe(0);
  return JSON.parse(r.out) as { kind: string; matches: Match[]; truncated: boolean; message: string };
};
const sha256 = async (file: string) =>
  createHash('sha256')
    .update(await readFile(file))
    .digest('hex');

beforeAll(async () => {
  stack = await createTestStack();
  h = await createHarness(stack);
  await h.startAgent();
  await h.vtl.createTape('w1', { capacityBytes: 100_000_000 });
  // Each target: file-0.dat, sub/file-1.dat, sub/deeper/file-2.dat.
  paths = [await makeTarget(join(h.dir, 'data', 'night-1'), [3000, 2000, 1000]), await makeTarget(join(h.dir, 'data', 'night-2'), [3100, 2100, 1100])];
  await writeFile(join(h.dir, 'list.txt'), paths.join('\n') + '\n');
  expect((await h.cli(['import', join(h.dir, 'list.txt')])).code).toBe(0);
  await waitUntil(async () => (await stack.ctx.catalog.listAllTargets()).every((t) => t.scan === 'complete'), 30_000, 'scans');
  for (const p of paths) ids.push((await stack.ctx.catalog.listAllTargets()).find((t) => t.path === p)!.id);
  for (const args of [['open_tape', '--new', 'w1'], ['assign'], ['archive', '--all'], ['confirm', '--all']]) {
    const r = await h.cli(args);
    expect(r.code, `${args.join(' ')}: ${r.out}\n${r.err}`).toBe(0);
  }
}, 120_000);
afterAll(async () => {
  await h?.close();
  await stack?.close();
});

describe('where_is', () => {
  it('finds every file of a base name, with its size, checksum and confirmed copy', async () => {
    const r = await whereIs('file-1.dat');
    expect(r.kind).toBe('name');
    expect(r.matches.map((m) => [m.dir, m.path, m.size])).toEqual([
      [paths[0], 'sub/file-1.dat', 2000],
      [paths[1], 'sub/file-1.dat', 2100],
    ]);
    for (const [i, m] of r.matches.entries()) {
      expect(m.sha256).toBe(await sha256(join(paths[i]!, 'sub/file-1.dat')));
      expect(m).toMatchObject({ targetId: ids[i], current: true, copies: [{ pool: 'default', tape: 'w1', fileNumber: i + 1, state: 'confirmed' }] });
    }
    // The human form: where it is on the data host, then its copies.
    const human = await h.cli(['where_is', 'file-1.dat']);
    expect(human.code).toBe(0);
    expect(human.out).toContain(`:${paths[0]}/sub/file-1.dat  2.00 kB  sha256 ${r.matches[0]!.sha256}`);
    expect(human.out).toMatch(new RegExp(`${ids[1]}  default: w1 file 2 confirmed`));
    expect(human.out.split('\n').at(-1)).toBe('2 match(es) for "file-1.dat"');
  });

  it('finds an exact relative path, and a glob by base name or by path, across the archive or in one target', async () => {
    expect((await whereIs('sub/deeper/file-2.dat')).matches.map((m) => m.targetId)).toEqual(ids);
    expect((await whereIs('./sub/deeper/file-2.dat')).matches).toHaveLength(2);
    expect((await whereIs('*/file-1.dat')).matches.map((m) => m.path)).toEqual(['sub/file-1.dat', 'sub/file-1.dat']);
    // No literal base name: the whole index is read.
    const sub = await whereIs('sub/*');
    expect(sub.kind).toBe('glob');
    expect(sub.matches.map((m) => `${m.targetId} ${m.path} ${m.type}`).sort()).toEqual(
      ids.flatMap((id) => [`${id} sub/deeper dir`, `${id} sub/file-1.dat file`]).sort(),
    );
    // In one target: its manifest, page by page.
    const one = await whereIs('*.dat', '--target', ids[1]!);
    expect(one.matches.map((m) => m.path).sort()).toEqual(['file-0.dat', 'sub/deeper/file-2.dat', 'sub/file-1.dat']);
    expect(one.matches.every((m) => m.targetId === ids[1])).toBe(true);
    expect((await whereIs('file-0.dat', '--target', ids[0]!)).matches.map((m) => m.targetId)).toEqual([ids[0]]);
    // --limit: the first N, and says there are more.
    const limited = await whereIs('*.dat', '--limit', '2');
    expect(limited).toMatchObject({ truncated: true });
    expect(limited.matches).toHaveLength(2);
    expect(limited.message).toMatch(/2\+ match\(es\).*the first 2/);
  });

  it('leaves out the index of an older scan that is on no tape', async () => {
    const stale = { path: 'sub/file-1.dat', type: 'file' as const, size: 1, mtimeMs: 0, mode: 0o644, sha256: '0'.repeat(64) };
    await stack.ctx.manifests.write(ids[0]!, 'an-older-scan', [stale], { names: stack.ctx.names });
    const r = await whereIs('file-1.dat');
    expect(r.matches).toHaveLength(2);
    expect(r.matches.some((m) => m.sha256 === stale.sha256)).toBe(false);
  });

  it('a pattern matching nothing says so with exit 40; bad input is refused with what to do', async () => {
    for (const pattern of ['file-9.dat', 'deeper/file-2.dat', 'FILE-1.DAT', 'nosuch/*']) {
      const r = await h.cli(['where_is', pattern]);
      expect(r.code, pattern).toBe(40);
      expect(r.out).toMatch(new RegExp(`^nothing matches "${pattern.replace(/[.*]/g, '\\$&')}"`));
    }
    const none = await h.cli(['--json', 'where_is', 'file-9.dat']);
    expect(none.code).toBe(40);
    expect(JSON.parse(none.out)).toMatchObject({ matches: [], truncated: false });

    const bad: [string[], number, RegExp][] = [
      [['where_is', '--', '/abs/file-1.dat'], 2, /is absolute: give the name relative to its target's root/],
      [['where_is', 'sub/../file-0.dat'], 2, /has a "\.\." component/],
      [['where_is', 'sub/'], 2, /ends with "\/"/],
      [['where_is', ' '], 2, /it is empty/],
      [['where_is', 'file-1.dat', '--limit', 'many'], 2, /--limit "many" is not a number/],
      [['where_is', 'file-1.dat', '--limit', '0'], 2, /invalid input for where_is/],
      [['where_is', 'file-1.dat', '--target', 't-nosuch'], 1, /no target t-nosuch; target ids are listed by "targets"/],
      [['where_is'], 2, /missing required argument 'pattern'/],
    ];
    for (const [args, code, message] of bad) {
      const r = await h.cli(args);
      expect(r.code, args.join(' ')).toBe(code);
      expect(r.err, args.join(' ')).toMatch(message);
    }
  });
});
