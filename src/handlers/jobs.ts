/**
 * One Lambda handler per job, behind the HTTP gateway (API Gateway HTTP API, payload v2).
 * Each only maps the request to the job's input; validation and behaviour live in the job
 * registry, shared with the local runner.
 */
import middy from '@middy/core';
import { UsageError } from '../lib/errors.ts';
import { runJob, type JobName } from '../lib/jobs/registry.ts';
import { httpErrors, jobContext, jsonResult, type HttpResult } from './runtime.ts';

export interface HttpEvent {
  body?: string | null;
  isBase64Encoded?: boolean;
  pathParameters?: Record<string, string | undefined> | null;
  queryStringParameters?: Record<string, string | undefined> | null;
}

const MAX_BODY_BYTES = 6 * 1024 * 1024;

function parseBody(event: HttpEvent): Record<string, unknown> {
  if (!event.body) return {};
  const text = event.isBase64Encoded ? Buffer.from(event.body, 'base64').toString('utf8') : event.body;
  if (Buffer.byteLength(text) > MAX_BODY_BYTES) throw new UsageError(`request body is over ${MAX_BODY_BYTES} bytes`);
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (e) {
    throw new UsageError(`request body is not JSON: ${(e as Error).message}`);
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new UsageError('request body must be a JSON object');
  return value as Record<string, unknown>;
}

type InputMapper = (event: HttpEvent) => unknown;

const fromBody: InputMapper = (e) => parseBody(e);
const fromQuery: InputMapper = (e) => ({ ...(e.queryStringParameters ?? {}) });
const withPathName =
  (key: string): InputMapper =>
  (e) => ({ ...parseBody(e), [key]: e.pathParameters?.name });

export function jobHandler(name: JobName, toInput: InputMapper, okStatus = 200) {
  return middy<HttpEvent, HttpResult>(async (event: HttpEvent) => jsonResult(okStatus, await runJob(jobContext(), name, toInput(event)))).use(httpErrors());
}

export const tapes = jobHandler('tapes', fromQuery);
export const openTape = jobHandler('open_tape', withPathName('name'));
export const importTargets = jobHandler('import', fromBody);
export const assign = jobHandler('assign', fromBody);
export const archive = jobHandler('archive', fromBody, 202);
export const confirm = jobHandler('confirm', fromBody, 202);
export const closeTape = jobHandler('close_tape', withPathName('tape'));
export const targets = jobHandler('targets', fromQuery);
