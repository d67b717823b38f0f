/**
 * Runs the real tape agent (bin/tape-agent.js) as a child process against a test stack and a
 * virtual tape library in a temp dir, and the results pump in the test process: the same
 * pieces as production, wired over real HTTP.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { main as runJobMain, type StopRequest } from '../../src/cli/run-job.ts';
import { startResultsPump, type ResultsPump } from '../../src/lib/results/results-pump.ts';
import { VirtualTapeLibrary } from '../../src/lib/tape/virtual-library.ts';
import type { TestStack } from './test-stack.ts';
import { createInterface } from 'node:readline';

export interface AgentProcess {
  proc: ChildProcess;
  logs: Record<string, unknown>[];
  waitForLog(pred: (l: Record<string, unknown>) => boolean, timeoutMs?: number): Promise<Record<string, unknown>>;
  /** Sends a signal and waits for the exit code. */
  stop(signal?: NodeJS.Signals): Promise<number | null>;
}

export interface Harness {
  dir: string;
  vtl: VirtualTapeLibrary;
  pump: ResultsPump;
  agents: AgentProcess[];
  startAgent(config?: Record<string, unknown>): Promise<AgentProcess>;
  /** run-job in-process; `stop` stands for Ctrl-C between items (run-job-main.ts sets it on SIGINT). */
  cli(args: string[], env?: NodeJS.ProcessEnv, stop?: StopRequest): Promise<{ code: number; out: string; err: string }>;
  close(): Promise<void>;
}

export async function createHarness(stack: TestStack, opts: { resultsPump?: boolean } = {}): Promise<Harness> {
  const dir = await mkdtemp(join(tmpdir(), 'tape-e2e-'));
  const vtlDir = join(dir, 'vtl');
  const vtl = new VirtualTapeLibrary(vtlDir);
  // Without the pump, something else applies results (serverless-offline's SQS handler).
  const pump = opts.resultsPump === false ? { stop: async () => undefined } : await startResultsPump(stack.ctx, { waitTimeSeconds: 1 });
  const agents: AgentProcess[] = [];

  const startAgent = async (config: Record<string, unknown> = {}): Promise<AgentProcess> => {
    const configPath = join(dir, `agent-${agents.length}.json`);
    await writeFile(
      configPath,
      JSON.stringify({
        drives: [{ kind: 'virtual', id: 'vtl0', library: vtlDir }],
        scanConcurrency: 1,
        visibilityTimeout: 6,
        heartbeatInterval: 2,
        waitTimeSeconds: 1,
        drainTimeoutSeconds: 60,
        progressIntervalMs: 100,
        staging: { dir: join(dir, 'staging'), maxBytes: 1024 ** 3 },
        ...config,
      }),
    );
    const proc = spawn(process.execPath, [join(process.cwd(), 'bin/tape-agent.js'), 'run', '--config', configPath], {
      env: { ...process.env, ...stack.env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const logs: Record<string, unknown>[] = [];
    const waiters: { pred: (l: Record<string, unknown>) => boolean; resolve: (l: Record<string, unknown>) => void }[] = [];
    createInterface({ input: proc.stdout!, crlfDelay: Number.POSITIVE_INFINITY }).on('line', (line) => {
      let entry: Record<string, unknown>;
      try {
        entry = JSON.parse(line);
      } catch {
        entry = { msg: line };
      }
      logs.push(entry);
      for (const w of [...waiters]) {
        if (!w.pred(entry)) continue;
        waiters.splice(waiters.indexOf(w), 1);
        w.resolve(entry);
      }
    });
    let stderr = '';
    proc.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
    const exited = new Promise<number | null>((resolve) => proc.once('exit', (code) => resolve(code)));
    const agent: AgentProcess = {
      proc,
      logs,
      waitForLog(pred, timeoutMs = 30_000) {
        const found = logs.find(pred);
        if (found) return Promise.resolve(found);
        return new Promise((resolve, reject) => {
          const t = setTimeout(
            () => reject(new Error(`agent log not seen in ${timeoutMs} ms; stderr: ${stderr.slice(-2000)}; last logs: ${JSON.stringify(logs.slice(-5))}`)),
            timeoutMs,
          );
          waiters.push({
            pred,
            resolve: (l) => {
              clearTimeout(t);
              resolve(l);
            },
          });
        });
      },
      async stop(signal = 'SIGTERM') {
        if (proc.exitCode === null && proc.signalCode === null) proc.kill(signal);
        return exited;
      },
    };
    agents.push(agent);
    await agent.waitForLog((l) => l.msg === 'agent started');
    return agent;
  };

  return {
    dir,
    vtl,
    pump,
    agents,
    startAgent,
    async cli(args, env = {}, stop) {
      const out: string[] = [];
      const err: string[] = [];
      // exit_file is looked for in the harness's own directory, never in the repository's.
      const io = { out: (s: string) => out.push(s), err: (s: string) => err.push(s), env: { ...stack.env, ...env }, pollIntervalMs: 100, cwd: dir };
      const code = await runJobMain(args, { ...io, ...(stop ? { stop } : {}) });
      return { code, out: out.join('\n'), err: err.join('\n') };
    },
    async close() {
      await Promise.allSettled(agents.map((a) => a.stop('SIGKILL')));
      await pump.stop();
      await rm(dir, { recursive: true, force: true });
    },
  };
}
