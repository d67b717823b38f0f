/**
 * The HTTP gateway on one machine: serverless-offline serving serverless.yml's routes, and
 * (through serverless-offline-sqs) the SQS-triggered results handler, against the embedded
 * stack. API Gateway's authorizers are off (--noAuth); the handlers require the bearer token.
 */
import { spawn } from 'node:child_process';
import { rm } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { freePort } from './free-port.ts';

const repoRoot = resolve(fileURLToPath(new URL('../..', import.meta.url)));

export interface OfflineGateway {
  url: string;
  stop(): Promise<void>;
}

export async function startOfflineGateway(opts: {
  stage: string;
  /** Endpoints, prefix, API token: passed to the handlers. */
  env: NodeJS.ProcessEnv;
  httpPort?: number;
  log?: (line: string) => void;
  readyTimeoutMs?: number;
}): Promise<OfflineGateway> {
  const httpPort = opts.httpPort ?? (await freePort());
  const lambdaPort = await freePort();
  const buildDir = `.esbuild-${opts.stage}-${process.pid}`;
  const osls = join(dirname(createRequire(import.meta.url).resolve('osls/package.json')), 'bin/serverless.js');
  const proc = spawn(
    process.execPath,
    [osls, 'offline', 'start', '--noAuth', '--stage', opts.stage, '--httpPort', String(httpPort), '--lambdaPort', String(lambdaPort), '--host', '127.0.0.1'],
    {
      cwd: repoRoot,
      env: {
        ...process.env,
        ...opts.env,
        TAPE_ARCHIVE_BUILD_DIR: buildDir,
        SLS_TELEMETRY_DISABLED: '1',
        SLS_NOTIFICATIONS_MODE: 'off',
        AWS_ACCESS_KEY_ID: 'local',
        AWS_SECRET_ACCESS_KEY: 'local',
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  const log = opts.log ?? (() => undefined);
  let output = '';
  const exited = new Promise<void>((r) => proc.once('exit', () => r()));
  const stop = async () => {
    if (proc.exitCode === null && proc.signalCode === null) {
      proc.kill('SIGTERM');
      const t = setTimeout(() => proc.kill('SIGKILL'), 5000);
      await exited;
      clearTimeout(t);
    }
    await rm(join(repoRoot, buildDir), { recursive: true, force: true });
  };
  try {
    await new Promise<void>((resolveReady, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`serverless-offline not ready after ${opts.readyTimeoutMs ?? 60_000} ms:\n${output.slice(-3000)}`)),
        opts.readyTimeoutMs ?? 60_000,
      );
      const onData = (d: Buffer) => {
        const text = d.toString();
        output += text;
        for (const line of text.split('\n')) if (line.trim()) log(line);
        if (output.includes('Server ready')) {
          clearTimeout(timer);
          resolveReady();
        }
      };
      proc.stdout!.on('data', onData);
      proc.stderr!.on('data', onData);
      proc.once('exit', (code) => {
        clearTimeout(timer);
        reject(new Error(`serverless-offline exited (code ${code}) before it was ready:\n${output.slice(-3000)}`));
      });
    });
  } catch (e) {
    await stop();
    throw e;
  }
  return { url: `http://127.0.0.1:${httpPort}`, stop };
}
