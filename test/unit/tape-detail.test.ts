/** tape_detail -v writes lines GNU sha256sum -c accepts, also for names with a backslash or a newline. */
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import { checksumLine } from '../../src/lib/jobs/tape-detail.ts';

const run = promisify(execFile);
let dir: string | undefined;
afterAll(async () => {
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe('checksum lines', () => {
  it('are checked by sha256sum -c --strict, hostile names included', async () => {
    dir = await mkdtemp(join(tmpdir(), 'sums-'));
    const names = ['plain.txt', 'with space', 'back\\slash', 'new\nline', 'trail\r', '-leading-dash'];
    const lines: string[] = [];
    for (const [i, name] of names.entries()) {
      const content = `content ${i}`;
      await writeFile(join(dir, name), content);
      lines.push(checksumLine(createHash('sha256').update(content).digest('hex'), name));
    }
    expect(lines[2]!.startsWith('\\')).toBe(true);
    await writeFile(join(dir, 'list'), `${lines.join('\n')}\n`);
    const { stdout } = await run('sha256sum', ['-c', '--strict', 'list'], { cwd: dir });
    expect(stdout.match(/: OK$/gm)).toHaveLength(names.length);
    // A wrong sum is caught: the list is really checked.
    await writeFile(join(dir, 'plain.txt'), 'changed');
    await expect(run('sha256sum', ['-c', '--strict', 'list'], { cwd: dir })).rejects.toMatchObject({ stdout: expect.stringMatching(/plain\.txt: FAILED/) });
  });
});
