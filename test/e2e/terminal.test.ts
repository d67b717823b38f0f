/**
 * The operator's terminal tells the truth (issue 10): run-job in a real pseudo-terminal
 * (util-linux `script`), Ctrl-C sent as the byte a keyboard sends, and the bytes the
 * terminal received checked: the message, the exit code, the restore sequences, the final
 * frame of the progress bar. The agent is real; the writes are slowed by the virtual library.
 */
import { spawn } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createHarness, type Harness } from '../support/agent-harness.ts';
import { makeTarget } from '../support/sample-data.ts';
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

interface Pty {
  output: () => string;
  send: (bytes: string) => void;
  exited: Promise<number | null>;
}

/** `run-job ARGS` on a pseudo-terminal of 120 columns; stdin of `script` is the keyboard. */
function runInPty(args: string[]): Pty {
  const command = ['stty cols 120 rows 40;', 'exec', process.execPath, join(process.cwd(), 'bin/run-job.js'), ...args.map((a) => `'${a}'`)].join(' ');
  const p = spawn('script', ['-qefc', command, '/dev/null'], { env: { ...process.env, ...stack.env, TERM: 'xterm' } });
  let out = '';
  p.stdout.on('data', (d: Buffer) => (out += d.toString('latin1')));
  p.stderr.on('data', (d: Buffer) => (out += d.toString('latin1')));
  return { output: () => out, send: (b) => p.stdin.write(b), exited: new Promise((r) => p.on('close', (code) => r(code))) };
}

async function assignedTape(name: string, bytes: number): Promise<string> {
  const path = await makeTarget(join(h.dir, 'data', name), [bytes]);
  const list = join(h.dir, `${name}.txt`);
  await writeFile(list, `${path}\n`);
  expect((await h.cli(['import', list])).code).toBe(0);
  const id = (await stack.ctx.catalog.listAllTargets()).find((t) => t.path === path)!.id;
  await waitUntil(async () => (await stack.ctx.catalog.getTarget(id))?.scan === 'complete', 30_000, 'scan');
  await h.vtl.createTape(name, { capacityBytes: 100_000_000 });
  expect((await h.cli(['open_tape', '--new', name])).code).toBe(0);
  expect((await h.cli(['assign'])).code).toBe(0);
  return id;
}

describe('run-job on a terminal', () => {
  it('Ctrl-C twice while archive waits: exit 130, says the write goes on and how to follow it, restores the terminal; the write completes', async () => {
    await assignedTape('ctrlc', 3_000_000);
    await h.vtl.injectFault('ctrlc', { kind: 'slow', bytesPerSecond: 1_000_000 });
    const pty = runInPty(['archive']);
    await waitUntil(async () => /writing .* task [0-9a-f-]{36}/.test(pty.output()) && pty.output().includes('%'), 30_000, 'the bar is drawn');
    const taskId = /task ([0-9a-f-]{36})/.exec(pty.output())![1]!;
    expect(pty.output()).toContain('\x1b[?25l'); // the bar hid the cursor
    // The first Ctrl-C asks archive to stop after this write (exit 41, batch-exit-codes.test.ts); the second ends the wait.
    pty.send('\x03');
    await waitUntil(async () => pty.output().includes('stop requested: stopping after the current item'), 10_000, 'the stop to be acknowledged');
    pty.send('\x03');
    expect(await pty.exited).toBe(130);
    const out = pty.output();
    expect(out).toContain(
      `interrupted: the write of ${join(h.dir, 'data', 'ctrlc')} to ctrlc file 1 continues on the agent (task ${taskId}); follow it with "run-job task ${taskId} --wait".`,
    );
    const restored = out.lastIndexOf('\x1b[?25h');
    expect(restored).toBeGreaterThan(out.lastIndexOf('\x1b[?25l'));
    expect(out.lastIndexOf('\x1b[?7h')).toBeGreaterThan(out.lastIndexOf('\x1b[?7l'));
    expect(out).not.toMatch(/\n\s+at /); // no stack trace

    // The write went on without the terminal; task --wait follows it with the same bar to its end.
    const follow = runInPty(['task', taskId, '--wait']);
    expect(await follow.exited).toBe(0);
    expect((await stack.ctx.tasks.get(taskId))?.state).toBe('succeeded');
    expect(follow.output()).toMatch(/archived 1 file\(s\)/);
    expect(follow.output()).toMatch(/mean [\d.]+ [kMG]?B\/s/);
  });

  it('the last frame of the bar shows the final figures, and the end line the elapsed time and mean rate', async () => {
    await assignedTape('frame', 2_000_000);
    await h.vtl.injectFault('frame', { kind: 'slow', bytesPerSecond: 1_000_000 });
    const pty = runInPty(['archive']);
    expect(await pty.exited).toBe(0);
    const out = pty.output();
    const file = (await stack.ctx.catalog.getTapeFile('frame', 1))!;
    // Frames are redrawn in place (carriage return); the last one is complete.
    const frames = out.split(/\r|\x1b\[1G|\x1b\[2K/).filter((f) => f.includes('%'));
    const last = frames.at(-1)!;
    expect(last).toMatch(/100% \| ([\d.]+ [kMG]?B) \/ \1 \|/);
    expect(last, JSON.stringify(last)).toMatch(/\| [\d.]+ [kMG]?B\/s \| ETA 0s/);
    for (const f of frames) expect(f).not.toMatch(/NaN|NF|Infinity|undefined/);
    expect(out).toMatch(
      new RegExp(`frame file 1: archived 1 file\\(s\\), ${file.bytes} bytes on tape \\([\\d.]+ [kMG]?B in [\\d.]+ s, mean [\\d.]+ [kMG]?B/s\\)`),
    );
  });
});
