import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createHarness, type Harness } from '../support/agent-harness.ts';
import { createTestStack, type TestStack } from '../support/test-stack.ts';
import { waitUntil } from '../support/wait.ts';

let stack: TestStack;
let h: Harness;
beforeAll(async () => {
  stack = await createTestStack();
  h = await createHarness(stack);
  await h.startAgent();
});
afterAll(async () => {
  await h?.close();
  await stack?.close();
});

const paths = async () => (await stack.ctx.catalog.listAllTargets()).map((t) => t.path).sort();

describe('scheduled import', () => {
  it('imports new directories under a root that match the pattern, idempotently', async () => {
    const root = join(h.dir, 'telescope');
    for (const d of ['2026-11-01/obs-1', '2026-11-01/obs-2', '2026-11-02/obs-3', '2026-11-02/calib', 'notes/obs-9'])
      await mkdir(join(root, d), { recursive: true });
    const args = ['discover', '--root', `localhost:${root}`, '--pattern', '2026-*/obs-*'];
    expect((await h.cli(args)).code).toBe(0);
    const expected = ['2026-11-01/obs-1', '2026-11-01/obs-2', '2026-11-02/obs-3'].map((d) => join(root, d));
    await waitUntil(async () => (await paths()).length === 3, 30_000, 'three targets imported');
    expect(await paths()).toEqual(expected);
    await waitUntil(async () => (await stack.ctx.catalog.listAllTargets()).every((t) => t.scan === 'complete'), 30_000, 'scanned');

    // Firing again changes nothing; a new night's directory is picked up.
    const before = await stack.ctx.catalog.listAllTargets();
    await mkdir(join(root, '2026-11-03/obs-4'), { recursive: true });
    expect((await h.cli(args)).code).toBe(0);
    await waitUntil(async () => (await paths()).length === 4, 30_000, 'the new directory imported');
    const after = await stack.ctx.catalog.listAllTargets();
    for (const t of before) expect(after.find((a) => a.id === t.id)).toEqual(t);
  });

  it('refuses a bad pattern or root with a clear error and enqueues nothing', async () => {
    const r1 = await h.cli(['discover', '--root', '/data', '--pattern', '../*']);
    expect(r1.code).toBe(2);
    expect(r1.err).toMatch(/import pattern "..\/\*" is invalid/);
    const r2 = await h.cli(['discover', '--root', 'relative/dir', '--pattern', '*']);
    expect(r2.code).toBe(2);
    expect(r2.err).toMatch(/not an absolute path/);
    const r3 = await h.cli(['discover']);
    expect(r3.code).toBe(2);
    expect(r3.err).toMatch(/no import roots/);
  });
});
