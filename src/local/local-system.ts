/**
 * The whole system on one machine: the embedded stack, the results pump (what the
 * SQS-triggered Lambda does on AWS), a periodic reconcile (the schedule on AWS), and the tape
 * agent as its own process with a virtual tape library. Used by `npm run demo` and `npm run dev`.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdir, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createClients, destroyClients } from '../lib/aws/clients.ts';
import { createJobContext, type JobContext } from '../lib/jobs/context.ts';
import { discover } from '../lib/jobs/discover.ts';
import { startBackgroundWork } from './background-work.ts';
import { VirtualTapeLibrary } from '../lib/tape/virtual-library.ts';
import { startEmbeddedStack, type EmbeddedStack } from './embedded-stack.ts';
import { createInterface } from 'node:readline';

const repoRoot = resolve(fileURLToPath(new URL('../..', import.meta.url)));

/**
 * Node flags of the agent process, as in deploy/systemd/tape-agent.service: a bounded heap,
 * so that V8 collects rather than grows (the agent's memory does not grow with a target).
 */
export const AGENT_NODE_FLAGS = ['--max-old-space-size=256'];

export interface LocalSystem {
  stack: EmbeddedStack;
  ctx: JobContext;
  vtl: VirtualTapeLibrary;
  /** Environment pointing run-job and the agent at this system. */
  env: NodeJS.ProcessEnv;
  /** The agent process running now (it is restarted when it dies). */
  readonly agent: ChildProcess;
  stop(): Promise<void>;
}

export async function startLocalSystem(opts: {
  workDir: string;
  configPath?: string;
  dynamodbPort?: number;
  sqsPort?: number;
  reconcileEverySeconds?: number;
  /** Scheduled import: fire discover for these roots every so many seconds (0 = never). */
  importRoots?: string[];
  importPattern?: string;
  importEverySeconds?: number;
  agentLog?: (line: string) => void;
  /** The agent's tape block size (default 256 KiB). */
  blockSize?: number;
  /** Said when the agent dies and is restarted (default: a JSON line through agentLog). */
  notice?: (message: string) => void;
  /** false when serverless-offline's SQS-triggered handler applies results instead. */
  resultsPump?: boolean;
  /** Keep DynamoDB Local's tables in memory, not in the work dir (faster; gone when it stops). */
  inMemory?: boolean;
}): Promise<LocalSystem> {
  const workDir = resolve(opts.workDir);
  await mkdir(workDir, { recursive: true });
  const stack = await startEmbeddedStack({
    ...(opts.inMemory ? {} : { dataDir: join(workDir, 'dynamodb') }),
    ...(opts.dynamodbPort ? { dynamodbPort: opts.dynamodbPort } : {}),
    ...(opts.sqsPort ? { sqsPort: opts.sqsPort } : {}),
    ...(opts.configPath ? { configPath: opts.configPath } : {}),
  });
  const env: NodeJS.ProcessEnv = {
    AWS_ENDPOINT_URL_DYNAMODB: stack.endpoints.dynamodb,
    AWS_ENDPOINT_URL_SQS: stack.endpoints.sqs,
    AWS_REGION: stack.config.region,
    TAPE_ARCHIVE_PREFIX: stack.config.prefix,
  };
  const clients = createClients(stack.config);
  const ctx = createJobContext(stack.config, clients);
  const background = await startBackgroundWork(ctx, {
    ...(opts.resultsPump === false ? { resultsPump: false } : {}),
    ...(opts.reconcileEverySeconds ? { reconcileEverySeconds: opts.reconcileEverySeconds } : {}),
  });
  const importEvery = opts.importRoots?.length && opts.importPattern ? (opts.importEverySeconds ?? 3600) : 0;
  const importTimer = importEvery
    ? setInterval(() => void discover(ctx, { roots: opts.importRoots!, pattern: opts.importPattern! }).catch(() => undefined), importEvery * 1000)
    : undefined;
  importTimer?.unref();

  const vtlDir = join(workDir, 'vtl');
  const vtl = new VirtualTapeLibrary(vtlDir);
  const agentConfig = join(workDir, 'agent.json');
  await writeFile(
    agentConfig,
    JSON.stringify(
      {
        drives: [{ kind: 'virtual', id: 'vtl0', library: vtlDir }],
        scanConcurrency: 2,
        visibilityTimeout: 60,
        heartbeatInterval: 10,
        waitTimeSeconds: 2,
        progressIntervalMs: 250,
        staging: { dir: join(workDir, 'staging'), maxBytes: 100 * 1024 ** 3 },
        ...(opts.blockSize ? { blockSize: opts.blockSize } : {}),
      },
      null,
      2,
    ),
  );
  const agentLog = opts.agentLog ?? (() => undefined);
  const notice = opts.notice ?? ((m: string) => agentLog(JSON.stringify({ level: 'warn', service: 'local-system', msg: m })));
  let stopping = false;
  let restarts = 0;
  let restartTimer: NodeJS.Timeout | undefined;
  const supervisor: { agent: ChildProcess } = { agent: undefined as unknown as ChildProcess };
  /** Starts the agent; resolves once it says it started. */
  const spawnAgent = (initial: boolean): Promise<void> => {
    const child = spawn(process.execPath, [...AGENT_NODE_FLAGS, join(repoRoot, 'bin/tape-agent.js'), 'run', '--config', agentConfig], {
      env: { ...process.env, ...env },
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    supervisor.agent = child;
    const startedAt = Date.now();
    return new Promise<void>((resolveStarted, reject) => {
      let up = false;
      createInterface({ input: child.stdout!, crlfDelay: Number.POSITIVE_INFINITY }).on('line', (line) => {
        agentLog(line);
        if (!up && line.includes('"agent started"')) {
          up = true;
          resolveStarted();
        }
      });
      child.once('exit', (code, signal) => {
        if (!up) reject(new Error(`the tape agent exited (${signal ?? `code ${code}`}) before it started; its log is above`));
        // The first start failing fails the system; a restart that fails is tried again.
        if (stopping || (!up && initial)) return;
        // As systemd would (Restart=on-failure): say so at once, and start it again; its tasks
        // come back from the queue (or from reconcile) and run again safely.
        // 1 s, then longer while it keeps dying within seconds of its start (up to 30 s).
        const quick = Date.now() - startedAt < 10_000;
        const delay = Math.min(30_000, 1000 * 2 ** (quick ? restarts : 0));
        restarts = quick ? restarts + 1 : 0;
        notice(`the tape agent died (${signal ?? `exit code ${code}`}); restarting it in ${delay / 1000} s`);
        restartTimer = setTimeout(() => {
          spawnAgent(false).then(
            () => notice('the tape agent is running again'),
            (e: unknown) => notice(`the tape agent did not start again: ${String(e)}`),
          );
        }, delay);
        restartTimer.unref();
      });
    });
  };
  const started = spawnAgent(true);
  const stop = async () => {
    stopping = true;
    if (restartTimer) clearTimeout(restartTimer);
    if (importTimer) clearInterval(importTimer);
    const agent = supervisor.agent;
    if (agent.exitCode === null && agent.signalCode === null) {
      const exited = new Promise((r) => agent.once('exit', r));
      agent.kill('SIGTERM');
      await exited;
    }
    await background.stop();
    destroyClients(clients);
    await stack.stop();
  };
  try {
    await started;
  } catch (e) {
    await stop();
    throw e;
  }
  // The local queues keep nothing across a restart: whatever the catalog says is pending is
  // sent again now (safe: a task the catalog no longer wants is dropped); a task that was
  // running when the system died is re-driven once its heartbeat is missing (periodic pass).
  await background.catchUp();
  return {
    stack,
    ctx,
    vtl,
    env,
    get agent() {
      return supervisor.agent;
    },
    stop,
  };
}
