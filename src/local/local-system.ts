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
import { reconcile } from '../lib/jobs/reconcile.ts';
import { discover } from '../lib/jobs/discover.ts';
import { startResultsPump } from '../lib/results/results-pump.ts';
import { VirtualTapeLibrary } from '../lib/tape/virtual-library.ts';
import { startEmbeddedStack, type EmbeddedStack } from './embedded-stack.ts';
import { createInterface } from 'node:readline';

const repoRoot = resolve(fileURLToPath(new URL('../..', import.meta.url)));

export interface LocalSystem {
  stack: EmbeddedStack;
  ctx: JobContext;
  vtl: VirtualTapeLibrary;
  /** Environment pointing run-job and the agent at this system. */
  env: NodeJS.ProcessEnv;
  agent: ChildProcess;
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
  /** false when serverless-offline's SQS-triggered handler applies results instead. */
  resultsPump?: boolean;
}): Promise<LocalSystem> {
  const workDir = resolve(opts.workDir);
  await mkdir(workDir, { recursive: true });
  const stack = await startEmbeddedStack({
    dataDir: join(workDir, 'dynamodb'),
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
  const pump = opts.resultsPump === false ? { stop: async () => undefined } : await startResultsPump(ctx, { waitTimeSeconds: 1 });
  const timer = setInterval(() => void reconcile(ctx, { olderThanSeconds: 600 }).catch(() => undefined), (opts.reconcileEverySeconds ?? 60) * 1000);
  timer.unref();
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
      },
      null,
      2,
    ),
  );
  const agent = spawn(process.execPath, [join(repoRoot, 'bin/tape-agent.js'), 'run', '--config', agentConfig], {
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const agentLog = opts.agentLog ?? (() => undefined);
  const started = new Promise<void>((resolveStarted, reject) => {
    agent.once('exit', (code) => reject(new Error(`the tape agent exited (code ${code}) before it started`)));
    createInterface({ input: agent.stdout!, crlfDelay: Number.POSITIVE_INFINITY }).on('line', (line) => {
      agentLog(line);
      if (line.includes('"agent started"')) resolveStarted();
    });
  });
  const stop = async () => {
    clearInterval(timer);
    if (importTimer) clearInterval(importTimer);
    if (agent.exitCode === null) {
      const exited = new Promise((r) => agent.once('exit', r));
      agent.kill('SIGTERM');
      await exited;
    }
    await pump.stop();
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
  await reconcile(ctx, { olderThanSeconds: 0 }).catch(() => undefined);
  return { stack, ctx, vtl, env, agent, stop };
}
