/**
 * What every Lambda handler shares: the job context built once per container from the
 * environment (the one place that reads it is config.ts), and the middy middleware that turns
 * errors into answers.
 */
import type { MiddlewareObj } from '@middy/core';
import { createClients } from '../lib/aws/clients.ts';
import { loadConfig } from '../lib/config.ts';
import { isArchiveError } from '../lib/errors.ts';
import { createJobContext, restrict, type JobContext } from '../lib/jobs/context.ts';
import { FUNCTIONS, type FunctionName } from '../lib/resources/access.ts';
import { createLogger } from '../lib/log.ts';

/** The log of every handler (src/lib/log.ts): the same JSON lines as the agent's. */
export const handlerLog = createLogger({ service: 'lambda' });

let cached: JobContext | undefined;
const restricted = new Map<FunctionName, JobContext>();

/**
 * The context of a function: built lazily so a cold start pays for it once (tests inject
 * their own with setJobContext), restricted to what the function declares
 * (resources/access.ts), which is also what its IAM role allows.
 */
export function jobContext(fn: FunctionName): JobContext {
  if (!cached) {
    const config = loadConfig();
    cached = createJobContext(config, createClients(config));
  }
  let ctx = restricted.get(fn);
  if (!ctx) {
    ctx = restrict(cached, FUNCTIONS[fn].access, `function ${fn}`);
    restricted.set(fn, ctx);
  }
  return ctx;
}

export function setJobContext(ctx: JobContext | undefined): void {
  cached = ctx;
  restricted.clear();
}

export interface HttpResult {
  statusCode: number;
  headers: Record<string, string>;
  body: string;
}

export function jsonResult(statusCode: number, body: unknown): HttpResult {
  return { statusCode, headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) };
}

/**
 * Maps ArchiveError to its HTTP status with a JSON body {error: {code, message}}; anything
 * else is a 500 whose details go to the log, not to the caller.
 * https://docs.aws.amazon.com/apigateway/latest/developerguide/http-api-develop-integrations-lambda.html
 */
export const httpErrors = (): MiddlewareObj<unknown, HttpResult> => ({
  onError: async (request) => {
    const e = request.error;
    if (isArchiveError(e)) {
      request.response = jsonResult(e.status, { error: { code: e.code, message: e.message } });
      return;
    }
    handlerLog('error', 'unhandled error', { error: String(e), stack: (e as Error)?.stack });
    request.response = jsonResult(500, { error: { code: 'INTERNAL', message: 'internal error; see the function log' } });
  },
});
