/**
 * The predecessor's exit codes, for batch loops written for it (`while run-job archive; do :;
 * done`), through run-job, the real agent and the virtual tape library: 40 when there is
 * nothing to do, 41 when a stop was requested (a file named exit_file in the working directory,
 * or Ctrl-C to the real run-job process: it stops after the current item), 42 when an archive
 * failed (here: the tape is full).
 */
import { spawn } from 'node:child_process';
import { rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createHarness, type Harness } from '../support/agent-harness.ts';
import { snapshotCatalog } from '../support/catalog-helpers.ts';
import { makeTarget } from '../support/sample-data.ts';
import { createTestStack, type TestStack } from '../support/test-stack.ts';
import { waitUntil } from '../support/wait.ts';

let stack: TestStack;
let h: Harness;

beforeAll(async () => {
  stack = await createTestStack();
  h = await createHarness(stack);
  await h.startAgent();
  await h.vtl.createTape('b1', { capacityBytes: 100_000_000 });
});
afterAll(async () => {
  await h?.close();
  await stack?.close();
});

const placements = async () => (await stack.ctx.catalog.listAllTargetCopies()).map((t) => t.copies[0]!.placement).sort();

/** run-job as its own process in the harness directory, as a batch loop runs it. */
function runJobProcess(args: string[]) {
  const p = spawn(process.execPath, [join(process.cwd(), 'bin/run-job.js'), ...args], { cwd: h.dir, env: { ...process.env, ...stack.env } });
  let out = '';
  let err = '';
  p.stdout.on('data', (d: Buffer) => (out += d.toString()));
  p.stderr.on('data', (d: Buffer) => (err += d.toString()));
  const done = new Promise<number | null>((resolve) => p.on('close', resolve));
  return { p, out: () => out, err: () => err, done };
}

describe('exit codes of the predecessor', () => {
  it('40: nothing to archive, nothing to confirm', async () => {
    expect((await h.cli(['open_tape', '--new', 'b1'])).code).toBe(0);
    for (const args of [['archive'], ['archive', '--all'], ['archive', '--repeat'], ['confirm', 'next'], ['confirm', '--all']]) {
      const r = await h.cli(args);
      expect(r.code, `${args.join(' ')}: ${r.out}\n${r.err}`).toBe(40);
    }
    expect((await h.cli(['archive'])).out).toMatch(/no targets are assigned to b1/);
    expect((await h.cli(['confirm', 'next'])).out).toMatch(/nothing to confirm/);
  });

  it('41: exit_file in the working directory stops archive and confirm before they start anything', async () => {
    const paths = [];
    for (let i = 0; i < 3; i++) paths.push(await makeTarget(join(h.dir, 'data', `run-${i}`), [200_000, 100_000]));
    await writeFile(join(h.dir, 'list.txt'), paths.join('\n') + '\n');
    expect((await h.cli(['import', join(h.dir, 'list.txt')])).code).toBe(0);
    await waitUntil(async () => (await stack.ctx.catalog.listAllTargets()).every((t) => t.scan === 'complete'), 30_000, 'scans');
    expect((await h.cli(['assign'])).code).toBe(0);
    await writeFile(join(h.dir, 'exit_file'), '');
    const before = await snapshotCatalog(stack);
    for (const args of [['archive'], ['archive', '--all'], ['confirm', 'next']]) {
      const r = await h.cli(args);
      expect(r.code, args.join(' ')).toBe(41);
      expect(r.err).toMatch(new RegExp(`stop requested: ${join(h.dir, 'exit_file')} exists \\(remove it to go on\\); no (write|verify) was started`));
    }
    expect(await snapshotCatalog(stack)).toEqual(before);
    await rm(join(h.dir, 'exit_file'));
  });

  it('41: Ctrl-C to run-job archive --all stops it after the current write', async () => {
    // Slow writes (about 2 s each), so that Ctrl-C comes during the first.
    await h.vtl.injectFault('b1', { kind: 'slow', bytesPerSecond: 150_000 });
    const run = runJobProcess(['archive', '--all']);
    await waitUntil(async () => /writing .*\(1 of 3\)/.test(run.out()), 30_000, 'the first write to start');
    run.p.kill('SIGINT');
    const code = await run.done;
    expect(code, run.out() + run.err()).toBe(41);
    expect(run.err()).toMatch(/stop requested: stopping after the current item/);
    expect(run.out()).toMatch(/archive --all on b1: 1 archived .* 2 still assigned; stopped: stop requested: Ctrl-C was pressed/);
    expect(await placements()).toEqual(['archived', 'assigned', 'assigned']);
    await h.vtl.clearFaults('b1');
    // A batch loop picks up where it stopped, and ends with 40 when all is done.
    const rest = await h.cli(['archive', '--all']);
    expect(rest.code, rest.out + rest.err).toBe(0);
    expect((await h.cli(['archive'])).code).toBe(40);
    let confirms = 0;
    for (let code = 0; code === 0; confirms++) code = (await h.cli(['confirm', 'next'])).code;
    expect(confirms).toBe(4); // three files confirmed, then 40
    expect(await placements()).toEqual(['confirmed', 'confirmed', 'confirmed']);
  });

  it('42: an archive that fills the tape', async () => {
    const more = await makeTarget(join(h.dir, 'data', 'big'), [300_000, 300_000]);
    await writeFile(join(h.dir, 'big.txt'), more + '\n');
    expect((await h.cli(['import', join(h.dir, 'big.txt')])).code).toBe(0);
    await waitUntil(async () => (await stack.ctx.catalog.listAllTargets()).every((t) => t.scan === 'complete'), 30_000, 'scan');
    expect((await h.cli(['assign'])).code).toBe(0);
    // The cartridge ends 300 kB into this file.
    await h.vtl.injectFault('b1', { kind: 'end-of-medium', afterBytes: 300_000 });
    const r = await h.cli(['archive']);
    expect(r.code, r.out + r.err).toBe(42);
    expect(r.out).toMatch(/end of medium/);
    expect((await stack.ctx.catalog.getTape('b1'))?.state).toBe('full');
  });
});
