/**
 * Installing the agent on a tape server as docs/operations.md says ("Installing the agent"):
 * the bundle is built (`npm run bundle:agent`), installed by deploy/install-agent.sh into a
 * prefix by a user that is not root, and the installed agent (only Node at run time, no
 * node_modules) runs a write against the embedded stack with a virtual tape; the tape file
 * is read back by GNU tar. And the repository install, `npm ci --omit=dev`, works.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { chmod, chown, copyFile, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createHarness, type Harness } from '../support/agent-harness.ts';
import { extractWithGnuTar, makeTarget, treeDigest } from '../support/sample-data.ts';
import { createTestStack, type TestStack } from '../support/test-stack.ts';
import { waitUntil } from '../support/wait.ts';

const run = promisify(execFile);
const NOBODY = 65534;
let stack: TestStack;
let h: Harness;
let dir: string;
let agent: ChildProcess | undefined;

/** As a user that is not root: `nobody` when the tests run as root (CI), else the user running them. */
const asUser = (cmd: string, args: string[]): [string, string[]] =>
  process.getuid?.() === 0 ? ['setpriv', [`--reuid=${NOBODY}`, `--regid=${NOBODY}`, '--clear-groups', '--', cmd, ...args]] : [cmd, args];

async function ownedByUser(path: string): Promise<void> {
  await mkdir(path, { recursive: true });
  if (process.getuid?.() === 0) await chown(path, NOBODY, NOBODY);
}

beforeAll(async () => {
  stack = await createTestStack();
  h = await createHarness(stack); // run-job in-process and the results pump; no agent of the repository
  dir = await mkdtemp(join(tmpdir(), 'install-'));
  await chmod(dir, 0o755);
});
afterAll(async () => {
  if (agent && agent.exitCode === null) {
    const exited = new Promise((r) => agent!.once('exit', r));
    agent.kill('SIGTERM');
    await exited;
  }
  await h?.close();
  await stack?.close();
  await rm(dir, { recursive: true, force: true });
});

describe('installing the agent on a tape server', () => {
  it('the bundle installed into a prefix by a user who is not root runs an archive with only Node', async () => {
    // On the build machine: the bundle.
    const bundle = join(dir, 'build', 'tape-agent.mjs');
    await run(join(process.cwd(), 'node_modules/.bin/tsx'), ['src/local/bundle-agent.ts', '--outfile', bundle]);
    await chmod(join(dir, 'build'), 0o755);
    // On the tape server, as the agent's user: the install script from the repository.
    await copyFile('deploy/install-agent.sh', join(dir, 'install-agent.sh'));
    const prefix = join(dir, 'prefix');
    await ownedByUser(prefix);
    const [cmd, args] = asUser('sh', [join(dir, 'install-agent.sh'), prefix, bundle]);
    const installed = await run(cmd, args, { cwd: dir });
    expect(installed.stdout).toMatch(new RegExp(`installed ${prefix}/bin/tape-agent \\(Node.js v\\d+`));

    // Its virtual tape, its config, its data: all the user's own; nothing from the repository.
    const home = join(dir, 'home');
    await ownedByUser(home);
    const env = { PATH: process.env.PATH, HOME: home, ...stack.env };
    const vtl = join(home, 'vtl');
    const [c1, a1] = asUser(join(prefix, 'bin/tape-agent'), ['vtl', 'create', vtl, 'inst1', '--capacity', '100M']);
    await run(c1, a1, { env, cwd: home });
    const config = join(home, 'agent.json');
    await writeFile(
      config,
      JSON.stringify({ drives: [{ kind: 'virtual', id: 'vtl0', library: vtl }], heartbeatInterval: 2, visibilityTimeout: 10, waitTimeSeconds: 1 }),
    );
    await chmod(config, 0o644);
    const [c2, a2] = asUser(join(prefix, 'bin/tape-agent'), ['run', '--config', config]);
    agent = spawn(c2, a2, { env, cwd: home, stdio: ['ignore', 'pipe', 'pipe'] });
    const lines: string[] = [];
    createInterface({ input: agent.stdout! }).on('line', (l) => lines.push(l));
    let stderr = '';
    agent.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
    await waitUntil(async () => lines.some((l) => l.includes('"agent started"')), 30_000, `the installed agent starts (stderr: ${stderr})`);
    // Its log is JSON lines only, on stdout.
    for (const l of lines) expect(() => JSON.parse(l), l).not.toThrow();

    const source = await makeTarget(join(dir, 'data', 'inst-1'), [300_000, 1000, 0]);
    await writeFile(join(dir, 'list.txt'), `${source}\n`);
    expect((await h.cli(['import', join(dir, 'list.txt')])).code).toBe(0);
    await waitUntil(
      async () => (await stack.ctx.catalog.listAllTargets()).some((t) => t.path === source && t.scan === 'complete'),
      30_000,
      'scan by the installed agent',
    );
    expect((await h.cli(['open_tape', '--new', 'inst1', '--capacity', '100M'])).code).toBe(0);
    expect((await h.cli(['assign'])).code).toBe(0);
    const archived = await h.cli(['archive']);
    expect(archived.code, archived.err).toBe(0);
    expect((await h.cli(['confirm', 'next'])).code).toBe(0);
    const { data } = await extractWithGnuTar(join(vtl, 'tapes', 'inst1', 'file-0001'));
    expect(data).toEqual(await treeDigest(source));
  }, 180_000);

  it('the install script refuses a missing bundle and says how to build it', async () => {
    const r = await run('sh', ['deploy/install-agent.sh', join(dir, 'nowhere'), join(dir, 'missing.mjs')]).then(
      () => ({ code: 0, stderr: '' }),
      (e: { code: number; stderr: string }) => e,
    );
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/no agent bundle at .*missing\.mjs; build it with "npm run bundle:agent"/);
  });

  it('the repository install without dev dependencies works (npm ci --omit=dev: no patch-package needed)', async () => {
    const repo = join(dir, 'repo');
    await mkdir(repo);
    for (const f of ['package.json', 'package-lock.json']) await copyFile(f, join(repo, f));
    const r = await run('npm', ['ci', '--omit=dev', '--prefer-offline', '--no-audit', '--no-fund'], { cwd: repo, timeout: 170_000 });
    expect(r.stderr).not.toMatch(/patch-package: not found/);
    await run(process.execPath, ['-e', "import('ssh2').then(() => import('@aws-sdk/client-sqs'))"], { cwd: repo });
  }, 180_000);
});
