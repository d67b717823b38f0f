/**
 * Scrub and repair (issue 13) through run-job, the real agent process and the virtual tape
 * library: a byte flipped on one copy's tape is found by scrub, the copy is marked bad, the
 * target is at risk, repair writes a new copy from the other copy (the source has changed
 * since, so it cannot have come from there), confirm passes and the target is safe again;
 * the same with the other copy bad too and the source unchanged; and a kill -9 of the agent
 * in the middle of a scrub, after which scrub runs again without duplicates.
 */
import { readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Copy } from '../../src/lib/domain/copies.ts';
import { createHarness, type Harness } from '../support/agent-harness.ts';
import { extractWithGnuTar, makeTarget, treeDigest } from '../support/sample-data.ts';
import { createTestStack, type TestStack } from '../support/test-stack.ts';
import { waitUntil } from '../support/wait.ts';

let stack: TestStack;
let h: Harness;
const paths: string[] = [];
const digests = new Map<string, Map<string, string>>();
const ids: string[] = [];

beforeAll(async () => {
  stack = await createTestStack();
  h = await createHarness(stack);
  await h.startAgent();
  for (const t of ['p1', 'p2', 'o1', 'o2']) await h.vtl.createTape(t, { capacityBytes: 100_000_000 });
});
afterAll(async () => {
  await h?.close();
  await stack?.close();
});

const ok = async (args: string[]) => {
  const r = await h.cli(args);
  expect(r.code, `${args.join(' ')}: ${r.out}\n${r.err}`).toBe(0);
  return r;
};
const json = async (args: string[], code = 0) => {
  const r = await h.cli(['--json', ...args]);
  expect(r.code, `${args.join(' ')}: ${r.out}\n${r.err}`).toBe(code);
  return JSON.parse(r.out);
};
const copyOf = async (id: string, pool: string): Promise<Copy> => (await stack.ctx.catalog.getTargetCopies(id))!.copies.find((c) => c.pool === pool)!;
const flip = async (id: string, pool: string) => {
  const c = await copyOf(id, pool);
  await h.vtl.injectFault(c.tapeName!, { kind: 'flip-byte', fileNumber: c.fileNumber!, offset: 200_000 });
  return c;
};
const stagingEmpty = async () => (await readdir(join(h.dir, 'staging')).catch(() => [])).length === 0;

describe('scrub finds rot, repair writes the copy again', () => {
  it('archives three targets in two pools and scrubs every copy good', async () => {
    await ok(['open_tape', '--new', 'p1', '--pool', 'primary']);
    await ok(['open_tape', '--new', 'o1', '--pool', 'offsite']);
    for (const n of ['a', 'b', 'c']) paths.push(await makeTarget(join(h.dir, 'data', n), [150_000, 100_000]));
    for (const p of paths) digests.set(p, await treeDigest(p));
    await writeFile(join(h.dir, 'list.txt'), `${paths.join('\n')}\n`);
    await ok(['import', join(h.dir, 'list.txt'), '--copies', 'primary,offsite']);
    await waitUntil(async () => (await stack.ctx.catalog.listAllTargets()).every((t) => t.scan === 'complete'), 30_000, 'scans');
    const targets = await stack.ctx.catalog.listAllTargets();
    for (const p of paths) ids.push(targets.find((t) => t.path === p)!.id);
    await ok(['assign']);
    await ok(['archive', '--all']);
    await ok(['confirm', '--all', '--pool', 'primary']);
    await ok(['confirm', '--all', '--pool', 'offsite']);
    expect((await json(['status'])).copies).toEqual({ safe: 3, atRisk: 0, bad: 0, overdueScrub: 0 });

    const s = await json(['scrub', '--wait']);
    expect(s.requested).toHaveLength(6);
    // One tape at a time, each in file-number order.
    const order = s.requested.map((q: { tape: string; fileNumber: number }) => `${q.tape}/${q.fileNumber}`);
    const byTape = (t: string) => order.filter((o: string) => o.startsWith(`${t}/`));
    expect(order).toEqual(order[0].startsWith('p1') ? [...byTape('p1'), ...byTape('o1')] : [...byTape('o1'), ...byTape('p1')]);
    expect(byTape('p1')).toEqual(['p1/1', 'p1/2', 'p1/3']);
    expect(s.results.map((r: { state: string }) => r.state)).toEqual(Array(6).fill('succeeded'));
    for (const id of ids) for (const pool of ['primary', 'offsite']) expect((await copyOf(id, pool)).lastVerify).toMatchObject({ ok: true, scrub: true });
    // Everything was just read back: nothing is older than a day.
    expect((await json(['scrub', '--older-than-days', '1'])).status).toBe('idle');
  });

  it('a flipped byte on one copy: scrub marks it bad, repair writes it again from the other copy, confirm makes it safe', async () => {
    const [b, pathB] = [ids[1]!, paths[1]!];
    const bad = await flip(b, 'primary');
    const r = await h.cli(['scrub', '--wait', '--tape', 'p1']);
    expect(r.code, r.out + r.err).toBe(1);
    expect(r.out).toMatch(/scrub done: 2 of 3 file\(s\) read back good, 1 BAD/);
    // The automatic repair could not start: the only primary tape online is the one that read back bad.
    expect(r.out).toMatch(/repair not started: the online tape p1 is the tape that read back bad/);
    const marked = await copyOf(b, 'primary');
    expect(marked).toMatchObject({ placement: 'confirm_failed', tapeName: 'p1', fileNumber: bad.fileNumber, lastVerify: { ok: false, scrub: true } });
    expect((await json(['status'])).copies).toMatchObject({ safe: 2, atRisk: 1, bad: 1 });
    const risk = await json(['at_risk']);
    expect(risk.targets).toEqual([expect.objectContaining({ id: b, reason: 'bad-copy', confirmed: 1, required: 2 })]);
    expect(risk.targets[0].bad).toEqual([expect.objectContaining({ pool: 'primary', tape: 'p1', fileNumber: bad.fileNumber })]);
    expect(risk.tapesWithErrors).toEqual([expect.objectContaining({ name: 'p1', badFiles: 1 })]);
    const row = (await json(['targets'])).targets.find((t: { id: string }) => t.id === b);
    expect(row.safe).toBe(false);

    // The source changes after its scan: a write from the source would fail, one from the other copy cannot.
    await writeFile(join(pathB, 'added-later.dat'), 'not in the manifest');
    await ok(['close_tape', 'p1', '--yes']);
    await ok(['open_tape', '--new', 'p2', '--pool', 'primary']);
    const rep = await json(['repair']);
    const offsite = await copyOf(b, 'offsite');
    expect(rep.assigned).toEqual([
      { id: b, pool: 'primary', tape: 'p2', badFile: `p1/${bad.fileNumber}`, from: 'copy', fromFile: `${offsite.tapeName}/${offsite.fileNumber}` },
    ]);
    const agent = h.agents[0]!;
    await ok(['archive', '--pool', 'primary']);
    await agent.waitForLog((l) => l.msg === 'repair: other copy staged' && l.targetId === b, 30_000);
    await ok(['confirm', 'next', '--pool', 'primary']);
    const fixed = await copyOf(b, 'primary');
    expect(fixed).toMatchObject({ placement: 'confirmed', tapeName: 'p2', fileNumber: 1 });
    expect(fixed.repairFrom).toBeUndefined();
    expect((await json(['status'])).copies).toMatchObject({ safe: 3, atRisk: 0, bad: 0 });
    expect((await json(['at_risk'])).targets).toEqual([]);
    const onTape = await extractWithGnuTar(h.vtl.tapeFilePath('p2', 1));
    expect(onTape.data).toEqual(digests.get(pathB));
    expect(await stagingEmpty()).toBe(true);
  });

  it('both copies bad and the source unchanged: repair writes both again from the source', async () => {
    const [c, pathC] = [ids[2]!, paths[2]!];
    await flip(c, 'primary');
    await flip(c, 'offsite');
    const r = await h.cli(['--json', 'scrub', '--wait', '--tape', 'p1,o1']);
    expect(r.code, r.err).toBe(1);
    const bad = JSON.parse(r.out).results.filter((x: { state: string }) => x.state !== 'succeeded');
    expect(bad.map((x: { tape: string; targetId: string }) => [x.tape, x.targetId]).sort()).toEqual([
      ['o1', c],
      ['p1', c],
    ]);
    // The primary copy was assigned to p2 at once (from o1 if it was read first and still good: archive then writes from the source).
    expect(await copyOf(c, 'primary'), JSON.stringify(bad)).toMatchObject({ placement: 'assigned', tapeName: 'p2' });
    expect(await copyOf(c, 'offsite')).toMatchObject({ placement: 'confirm_failed', tapeName: 'o1' });
    const copyRefused = await h.cli(['repair', '--target', c, '--from', 'copy']);
    expect(copyRefused.code).toBe(1);
    expect(copyRefused.out).toMatch(
      /refused .*\(offsite\): pool offsite has no writable online tape|refused .*\(offsite\): the online tape o1 is the tape that read back bad/,
    );

    await ok(['close_tape', 'o1', '--yes']);
    await ok(['open_tape', '--new', 'o2', '--pool', 'offsite']);
    const rep = await json(['repair', '--target', c]);
    expect(rep.assigned).toEqual([{ id: c, pool: 'offsite', tape: 'o2', badFile: expect.stringMatching(/^o1\//), from: 'source' }]);
    const staged = h.agents[0]!.logs.filter((l) => l.msg === 'repair: other copy staged').length;
    await ok(['archive', '--all']);
    await ok(['confirm', '--all', '--pool', 'primary']);
    await ok(['confirm', '--all', '--pool', 'offsite']);
    expect(h.agents[0]!.logs.filter((l) => l.msg === 'repair: other copy staged')).toHaveLength(staged);
    for (const [pool, tape] of [
      ['primary', 'p2'],
      ['offsite', 'o2'],
    ] as const) {
      const copy = await copyOf(c, pool);
      expect(copy).toMatchObject({ placement: 'confirmed', tapeName: tape });
      expect((await extractWithGnuTar(h.vtl.tapeFilePath(tape, copy.fileNumber!))).data).toEqual(digests.get(pathC));
    }
    expect((await json(['status'])).copies).toMatchObject({ safe: 3, atRisk: 0, bad: 0 });
  });

  it('a kill -9 of the agent mid-scrub: scrub again completes every read-back once, without duplicates', async () => {
    await h.vtl.injectFault('p2', { kind: 'slow', bytesPerSecond: 100_000 });
    const first = await json(['scrub', '--tape', 'p2']);
    expect(first.requested).toHaveLength(2);
    const agent = h.agents[0]!;
    await waitUntil(async () => (await stack.ctx.tasks.get(first.requested[0].taskId))?.state === 'running', 30_000, 'the first read-back running');
    expect(await agent.stop('SIGKILL')).toBe(null);
    await h.vtl.clearFaults('p2');
    // While the read-backs are unfinished, scrub asks for none of them again.
    const again = await json(['scrub', '--tape', 'p2']);
    expect(again.requested).toEqual([]);
    expect(again.alreadyRunning).toBe(2);
    await h.startAgent();
    for (const q of first.requested)
      await waitUntil(async () => (await stack.ctx.tasks.get(q.taskId))?.state === 'succeeded', 90_000, `read-back ${q.taskId} delivered again`);
    const files = await stack.ctx.catalog.listTapeFiles('p2');
    expect(files.map((f) => [f.fileNumber, f.state])).toEqual([
      [1, 'confirmed'],
      [2, 'confirmed'],
    ]);
    const verifies = (await stack.ctx.tasks.listUnfinished('verify')).filter((s) => s.tapeName === 'p2');
    expect(verifies).toEqual([]);
    expect((await json(['status'])).copies).toMatchObject({ safe: 3, atRisk: 0, bad: 0 });
  });

  it('the other copy cannot be read: the write fails without blaming the tape being written, and the next one reads the source', async () => {
    const [a, pathA] = [ids[0]!, paths[0]!];
    await flip(a, 'primary');
    expect((await h.cli(['scrub', '--wait', '--tape', 'p1'])).code).toBe(1);
    const offsite = await copyOf(a, 'offsite');
    expect(await copyOf(a, 'primary')).toMatchObject({ placement: 'assigned', tapeName: 'p2', repairFrom: { tapeName: 'o1', fileNumber: offsite.fileNumber } });
    await h.vtl.injectFault('o1', { kind: 'read-error', fileNumber: offsite.fileNumber!, afterBytes: 100_000 });
    const failed = await h.cli(['archive', '--pool', 'primary']);
    expect(failed.code).not.toBe(0);
    expect(failed.out + failed.err).toMatch(
      /the copy on o1 file \d+ could not be read .*nothing was written\. The next "archive" writes this copy from its source/,
    );
    expect((await stack.ctx.catalog.getTape('p2'))?.state).not.toBe('disabled');
    const after = await copyOf(a, 'primary');
    expect(after).toMatchObject({ placement: 'assigned', tapeName: 'p2' });
    expect(after.repairFrom).toBeUndefined();
    await ok(['archive', '--pool', 'primary']);
    await ok(['confirm', 'next', '--pool', 'primary']);
    const fixed = await copyOf(a, 'primary');
    expect(fixed).toMatchObject({ placement: 'confirmed', tapeName: 'p2' });
    expect((await extractWithGnuTar(h.vtl.tapeFilePath('p2', fixed.fileNumber!))).data).toEqual(digests.get(pathA));
    await h.vtl.clearFaults('o1');
    expect(await stagingEmpty()).toBe(true);
  });
});
