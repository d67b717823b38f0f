/** `npm run demo` is the README's main job: it must pass on a fresh machine. */
import { execFile } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';

const run = promisify(execFile);
let dir: string | undefined;
afterAll(async () => {
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe('npm run demo', () => {
  it('runs the seed workflow on the embedded stack and checks every tape file with GNU tar', async () => {
    dir = await mkdtemp(join(tmpdir(), 'demo-'));
    const { stdout } = await run(process.execPath, ['--import', 'tsx', 'src/cli/demo.ts', '--work-dir', join(dir, 'work'), '--targets', '5'], {
      timeout: 240_000,
      maxBuffer: 16 * 1024 * 1024,
    });
    expect(stdout).toMatch(/end of medium/);
    expect(stdout).toMatch(/released [1-9] target\(s\) for the next tape/);
    // Every target twice: its default-pool copy on tape1 or tape2, its offsite copy on off1.
    expect(stdout.match(/^ {2}ok {3}default tape[12] file \d+: tar -xf/gm)).toHaveLength(5);
    expect(stdout.match(/^ {2}ok {3}offsite off1 file \d+: tar -xf .*\(header pool offsite\)$/gm)).toHaveLength(5);
    expect(stdout).toMatch(/demo passed/);
  }, 300_000);
});
