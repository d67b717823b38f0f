/**
 * The local system as operators start it: the agent is supervised like systemd would (killed,
 * it is restarted and says so), a second stack on taken ports says what holds them, and
 * commands without credentials or a stack say what to set up: no stack traces, no SDK notice.
 */
import { execFile } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort } from '../../src/local/free-port.ts';
import { startLocalSystem, type LocalSystem } from '../../src/local/local-system.ts';
import { waitUntil } from '../support/wait.ts';

const run = promisify(execFile);
let dir: string;
let system: LocalSystem | undefined;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'local-system-'));
});
afterAll(async () => {
  await system?.stop();
  await rm(dir, { recursive: true, force: true });
});

/** Runs a command in an empty directory with no AWS settings at all; resolves with its exit code and output. */
async function bare(cmd: string, args: string[], cwd = dir): Promise<{ code: number; out: string }> {
  const env: NodeJS.ProcessEnv = { PATH: process.env.PATH, HOME: dir };
  return run(cmd, args, { cwd, env, timeout: 60_000 }).then(
    (r) => ({ code: 0, out: r.stdout + r.stderr }),
    (e: { code: number; stdout: string; stderr: string }) => ({ code: e.code, out: e.stdout + e.stderr }),
  );
}

describe('the local system', () => {
  it('restarts a killed agent at once and says so, as systemd would', async () => {
    const notices: string[] = [];
    const lines: string[] = [];
    system = await startLocalSystem({
      workDir: join(dir, 'work'),
      dynamodbPort: await freePort(),
      sqsPort: await freePort(),
      agentLog: (l) => lines.push(l),
      notice: (m) => notices.push(m),
    });
    const first = system.agent.pid;
    process.kill(first!, 'SIGKILL');
    await waitUntil(async () => notices.some((n) => /the tape agent died \(SIGKILL\); restarting it in 1 s/.test(n)), 10_000, 'the death noticed');
    await waitUntil(async () => notices.includes('the tape agent is running again'), 60_000, 'the restart');
    expect(system.agent.pid).not.toBe(first);
    expect(system.agent.exitCode).toBeNull();
    expect(lines.filter((l) => l.includes('"agent started"'))).toHaveLength(2);
  }, 120_000);

  it('a second stack on the same ports refuses to start and says what to do', async () => {
    const blocker: Server = createServer();
    const port = await freePort();
    await new Promise<void>((r) => blocker.listen(port, '127.0.0.1', () => r()));
    try {
      // (from the repository, where tsx resolves; the port check comes before anything is written)
      const r = await bare(
        join(process.cwd(), 'node_modules/.bin/tsx'),
        ['src/cli/stack.ts', '--work-dir', join(dir, 'stack'), '--dynamodb-port', String(port), '--sqs-port', String(await freePort())],
        process.cwd(),
      );
      expect(r.code, r.out).toBe(1);
      expect(r.out).toMatch(new RegExp(`port ${port} \\(DynamoDB Local\\) is already in use: is "npm run dev".*--dynamodb-port PORT`));
      expect(r.out).not.toMatch(/\n\s+at /);
    } finally {
      blocker.close();
    }
  });

  it('run-job and the agent without credentials or a stack say what to set up, without a stack trace or the SDK notice', async () => {
    const job = await bare(process.execPath, [join(process.cwd(), 'bin/run-job.js'), 'tapes']);
    expect(job.code).toBe(1);
    expect(job.out).toMatch(/^error: no AWS credentials were found .*npm run dev/m);
    const { writeFile } = await import('node:fs/promises');
    await writeFile(join(dir, 'agent.json'), JSON.stringify({ drives: [{ kind: 'virtual', id: 'v', library: join(dir, 'vtl') }] }));
    const agent = await bare(process.execPath, [join(process.cwd(), 'bin/tape-agent.js'), 'run', '--config', join(dir, 'agent.json')]);
    expect(agent.code).toBe(1);
    expect(agent.out).toMatch(/error: no AWS credentials were found .*agent\.env/);
    const selftest = await bare(process.execPath, [
      join(process.cwd(), 'bin/tape-agent.js'),
      'selftest',
      '--vtl',
      join(dir, 'vtl'),
      '--files',
      'x',
      '--yes-erase',
    ]);
    expect(selftest.code).toBe(2);
    expect(selftest.out).toMatch(/--files "x": give a whole number of 3 or more/);
    for (const r of [job, agent, selftest]) {
      expect(r.out).not.toMatch(/\n\s+at /);
      expect(r.out).not.toMatch(/NodeVersionSupportWarning/);
    }
  });
});
