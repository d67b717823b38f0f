/**
 * The seed's whole workflow end to end: run-job (in-process) -> DynamoDB Local + local SQS ->
 * the real agent process -> virtual tape -> results pump -> catalog; every tape file read
 * back by GNU tar and compared with its source.
 */
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createHarness, type Harness } from '../support/agent-harness.ts';
import { extractWithGnuTar, makeTarget, treeDigest } from '../support/sample-data.ts';
import { createTestStack, type TestStack } from '../support/test-stack.ts';
import { waitUntil } from '../support/wait.ts';

let stack: TestStack;
let h: Harness;
const sources: string[] = [];

beforeAll(async () => {
  stack = await createTestStack();
  h = await createHarness(stack);
  for (let i = 0; i < 5; i++) sources.push(await makeTarget(join(h.dir, 'data', `run-${i}`), [200_000, 150_000, 1000, 0, 90_000]));
  await h.vtl.createTape('tape1', { capacityBytes: 1_600_000 });
  await h.vtl.createTape('tape2', { capacityBytes: 50_000_000 });
  await h.startAgent();
});
afterAll(async () => {
  await h?.close();
  await stack?.close();
});

async function allTargets() {
  return JSON.parse((await h.cli(['--json', 'targets'])).out).targets as { id: string; path: string; status: string; tape?: string; fileNumber?: number }[];
}

describe('the seed workflow on a virtual tape', () => {
  it('import scans every target on the agent', async () => {
    const list = join(h.dir, 'list.txt');
    await (await import('node:fs/promises')).writeFile(list, sources.join('\n') + '\n');
    expect((await h.cli(['import', list])).code).toBe(0);
    await waitUntil(async () => (await allTargets()).every((t) => t.status === 'scanned'), 30_000, 'all targets scanned');
  });

  it('archives until tape1 is full, leaving outstanding targets assigned', async () => {
    expect((await h.cli(['open_tape', '--new', 'tape1', '--capacity', '1.6M'])).code).toBe(0);
    expect((await h.cli(['assign'])).out).toMatch(/assigned 5 target/);
    const r = await h.cli(['archive', '--all']);
    expect(r.code).toBe(42); // the tape filled up: the predecessor's "archive failed";
    expect(r.out).toMatch(/end of medium/);
    const tape1 = (await stack.ctx.catalog.getTape('tape1'))!;
    expect(tape1.state).toBe('full');
    expect(tape1.writeInFlight).toBeUndefined();
    const targets = await allTargets();
    const archived = targets.filter((t) => t.status === 'archived');
    const outstanding = targets.filter((t) => t.status === 'assigned');
    expect(archived.length).toBeGreaterThanOrEqual(2);
    expect(outstanding.length).toBeGreaterThanOrEqual(1);
    expect(archived.length + outstanding.length).toBe(5);
    expect(archived.map((t) => t.fileNumber).sort()).toEqual(archived.map((_, i) => i + 1));
    // The tape holds exactly the label and the archived files; the discarded partial file is not counted.
    expect(await h.vtl.countFiles('tape1')).toBe(archived.length + 1);
    expect((await h.cli(['archive'])).code).toBe(1);
  });

  it('confirms every file on tape1 and closes it, releasing the rest', async () => {
    for (;;) {
      const r = await h.cli(['confirm', 'next']);
      expect(r.code).toBe(/nothing to confirm/.test(r.out) ? 40 : 0);
      if (r.code === 40) break;
      expect(r.out).toMatch(/confirmed: .* every checksum matches/);
    }
    const again = await h.cli(['confirm', '1']);
    expect(again.code).toBe(1);
    expect(again.err).toMatch(/already confirmed; use --retry/);
    expect((await h.cli(['confirm', '1', '--retry'])).out).toMatch(/confirmed/);
    const closed = await h.cli(['close_tape', '--yes']);
    expect(closed.code).toBe(0);
    expect(closed.out).toMatch(/released [1-9] target/);
  });

  it('archives the rest to tape2 and confirms it', async () => {
    expect((await h.cli(['open_tape', '--new', 'tape2', '--capacity', '50M'])).code).toBe(0);
    expect((await h.cli(['assign'])).code).toBe(0);
    const r = await h.cli(['archive', '--all']);
    expect(r.code).toBe(0);
    expect(r.out).toMatch(/no targets are assigned to tape2/);
    for (;;) {
      const c = await h.cli(['confirm', 'next']);
      expect(c.code).toBe(/nothing to confirm/.test(c.out) ? 40 : 0);
      if (c.code === 40) break;
    }
    const targets = await allTargets();
    expect(targets.every((t) => t.status === 'confirmed')).toBe(true);
    const tapes = JSON.parse((await h.cli(['--json', 'tapes'])).out).tapes;
    const onTape1 = targets.filter((t) => t.tape === 'tape1').length;
    expect(tapes).toMatchObject([
      { name: 'tape1', state: 'closed', online: false, filesWritten: onTape1, filesConfirmed: onTape1, targetsAssigned: 0 },
      { name: 'tape2', state: 'labelled', online: true, filesWritten: 5 - onTape1, filesConfirmed: 5 - onTape1, targetsAssigned: 0 },
    ]);
  });

  it('every tape file is read back by GNU tar, identical to its source', async () => {
    for (const t of await allTargets()) {
      const { data, header, trailer } = await extractWithGnuTar(h.vtl.tapeFilePath(t.tape!, t.fileNumber!));
      expect(data).toEqual(await treeDigest(t.path));
      expect(header).toMatchObject({ target: { id: t.id, path: t.path }, fileNumber: t.fileNumber, tapeName: t.tape });
      expect(trailer).toMatchObject({ complete: true });
    }
  });
});
