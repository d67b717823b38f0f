import { execFile } from 'node:child_process';
import { copyFile, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import { agentConfigSchema } from '../../src/agent/config.ts';
import { AGENT_NODE_FLAGS } from '../../src/local/local-system.ts';

const run = promisify(execFile);
const UNIT = join(process.cwd(), 'deploy/systemd/tape-agent.service');
let dir: string | undefined;
afterAll(async () => {
  if (dir) await rm(dir, { recursive: true, force: true });
});

/** systemd's own parser; .ci/run installs Debian's systemd package for it. */
async function verify(path: string): Promise<{ code: number; output: string }> {
  try {
    const r = await run('systemd-analyze', ['verify', path]);
    return { code: 0, output: r.stdout + r.stderr };
  } catch (e) {
    const err = e as { code?: number | string; stdout?: string; stderr?: string };
    if (err.code === 'ENOENT') throw new Error('systemd-analyze is missing: apt-get install -y systemd');
    return { code: Number(err.code), output: `${err.stdout ?? ''}${err.stderr ?? ''}` };
  }
}

const seconds = (v: string) => {
  let total = 0;
  for (const [, n, u] of v.matchAll(/(\d+)\s*(h|min|s)?/g)) total += Number(n) * (u === 'h' ? 3600 : u === 'min' ? 60 : 1);
  return total;
};

describe('the tape agent systemd unit', () => {
  it('passes systemd-analyze verify; a broken copy does not', async () => {
    const ok = await verify(UNIT);
    expect(ok, ok.output).toMatchObject({ code: 0 });
    dir = await mkdtemp(join(tmpdir(), 'unit-'));
    const broken = join(dir, 'tape-agent.service');
    await copyFile(UNIT, broken);
    await writeFile(
      broken,
      (await readFile(broken, 'utf8')).replace(/^ExecStart=.*$/m, 'ExecStart=/opt/missing/node /opt/tape-archive/lib/tape-agent/tape-agent.mjs run'),
    );
    const bad = await verify(broken);
    expect(bad.code).not.toBe(0);
    expect(bad.output).toMatch(/\/opt\/missing\/node is not executable/);
  });

  it('runs as a non-root user, restarts on failure, and waits longer than the graceful drain', async () => {
    const unit = await readFile(UNIT, 'utf8');
    const value = (k: string) => new RegExp(`^${k}=(.*)$`, 'm').exec(unit)?.[1];
    expect(value('User')).toBe('tape-archive');
    expect(value('SupplementaryGroups')).toBe('tape');
    expect(value('Restart')).toBe('on-failure');
    const example = agentConfigSchema.parse(JSON.parse(await readFile(join(process.cwd(), 'deploy/agent.example.json'), 'utf8')));
    expect(seconds(value('TimeoutStopSec')!)).toBeGreaterThan(example.drainTimeoutSeconds);
    // The agent's heap is bounded as the local system runs it (bench:scale measures that one).
    expect(value('ExecStart')).toBe(`/usr/bin/node ${AGENT_NODE_FLAGS.join(' ')} /opt/tape-archive/lib/tape-agent/tape-agent.mjs run`);
  });
});
