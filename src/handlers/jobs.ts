/**
 * One Lambda handler per job, behind the HTTP gateway (API Gateway HTTP API, payload v2).
 * Each maps the request to the job's input; validation and behaviour live in the job
 * registry, shared with the local runner. Every route is authenticated; mutating routes
 * honour an `Idempotency-Key` header.
 */
import { createHash } from 'node:crypto';
import middy from '@middy/core';
import { IdempotencyStore } from '../lib/catalog/idempotency.ts';
import { ConflictError, isArchiveError, UsageError, errorMessage } from '../lib/errors.ts';
import type { JobContext } from '../lib/jobs/context.ts';
import { runJob, type JobName } from '../lib/jobs/registry.ts';
import { HTTP_ROUTES } from '../lib/resources/routes.ts';
import { FUNCTIONS, type FunctionDecl, type FunctionName } from '../lib/resources/access.ts';
import { authenticate, type AuthEvent } from './middleware/authenticate.ts';
import { httpErrors, jobContext, jsonResult, type HttpResult } from './runtime.ts';

export interface HttpEvent extends AuthEvent {
  body?: string | null;
  isBase64Encoded?: boolean;
  pathParameters?: Record<string, string | undefined> | null;
  queryStringParameters?: Record<string, string | undefined> | null;
}

/** Lambda's synchronous payload limit is 6 MB; an import list of that size is ~50k targets. */
export const MAX_BODY_BYTES = 5 * 1024 * 1024;
const IDEMPOTENCY_KEY_RE = /^[A-Za-z0-9_.:-]{8,128}$/;

function bodyText(event: HttpEvent): string {
  if (!event.body) return '';
  const text = event.isBase64Encoded ? Buffer.from(event.body, 'base64').toString('utf8') : event.body;
  if (Buffer.byteLength(text) > MAX_BODY_BYTES) throw new UsageError(`request body is over ${MAX_BODY_BYTES} bytes; split the import list into smaller files.`);
  return text;
}

function parseBody(event: HttpEvent): Record<string, unknown> {
  const text = bodyText(event);
  if (!text) return {};
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (e) {
    throw new UsageError(`request body is not JSON: ${errorMessage(e)}`);
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new UsageError('request body must be a JSON object');
  return value as Record<string, unknown>;
}

type InputMapper = (event: HttpEvent) => unknown;

const fromBody: InputMapper = (e) => parseBody(e);
const fromQuery: InputMapper = (e) => {
  if (bodyText(e)) throw new UsageError('this route takes no request body; pass options as query parameters.');
  return { ...(e.queryStringParameters ?? {}) };
};
const withPath =
  (param: string, key: string, from: InputMapper = fromBody): InputMapper =>
  (e) => {
    const input = from(e) as Record<string, unknown>;
    if (key in input) throw new UsageError(`"${key}" comes from the URL path; remove it from the request.`);
    return { ...input, [key]: e.pathParameters?.[param] };
  };

function header(event: HttpEvent, name: string): string | undefined {
  return Object.entries((event as { headers?: Record<string, string | undefined> }).headers ?? {}).find(([k]) => k.toLowerCase() === name)?.[1];
}

async function idempotent(ctx: JobContext, event: HttpEvent, job: JobName, run: () => Promise<HttpResult>): Promise<HttpResult> {
  const key = header(event, 'idempotency-key');
  if (key === undefined) return run();
  if (!IDEMPOTENCY_KEY_RE.test(key)) throw new UsageError('Idempotency-Key must be 8-128 letters, digits or "_.:-"; a UUID is a good choice.');
  const store = new IdempotencyStore(ctx.catalog.db, ctx.catalog.tableName);
  const requestHash = createHash('sha256')
    .update(JSON.stringify([job, event.pathParameters ?? {}, event.queryStringParameters ?? {}, bodyText(event)]))
    .digest('hex');
  const claim = await store.claim(key, requestHash, ctx.now());
  if (claim.kind === 'mismatch') throw new ConflictError(`Idempotency-Key ${key} was already used with a different request; use a new key for a new request.`);
  if (claim.kind === 'in-progress') throw new ConflictError(`a request with Idempotency-Key ${key} is still running; retry in a moment to get its answer.`);
  if (claim.kind === 'replay')
    return { ...jsonResult(claim.statusCode, null), body: claim.body, headers: { 'content-type': 'application/json', 'idempotent-replayed': 'true' } };
  let result: HttpResult;
  try {
    result = await run();
  } catch (e) {
    if (!isArchiveError(e) || e.status >= 500) {
      await store.release(key);
      throw e;
    }
    result = jsonResult(e.status, { error: { code: e.code, message: e.message } });
  }
  await store.complete(key, result.statusCode, result.body);
  return result;
}

/** The handler of function `fn` (resources/access.ts says which job it runs and whether it mutates). */
export function jobHandler(fn: FunctionName, toInput: InputMapper) {
  const decl: FunctionDecl = FUNCTIONS[fn];
  const name = decl.job as JobName;
  return middy<HttpEvent, HttpResult>(async (event: HttpEvent) => {
    const ctx = jobContext(fn);
    const run = async () => jsonResult(HTTP_ROUTES[name].okStatus, await runJob(ctx, name, toInput(event)));
    return decl.mutating ? idempotent(ctx, event, name, run) : run();
  })
    .use(httpErrors())
    .use(authenticate(() => ({ token: jobContext(fn).config.apiToken, trustGatewayAuth: jobContext(fn).config.trustGatewayAuth })));
}

export const tapes = jobHandler('tapes', fromQuery);
export const status = jobHandler('status', fromQuery);
export const openTape = jobHandler('openTape', withPath('name', 'name'));
export const closeTape = jobHandler('closeTape', withPath('name', 'tape'));
export const enableTape = jobHandler('enableTape', withPath('name', 'name'));
export const removeTape = jobHandler('removeTape', withPath('name', 'name'));
export const importTargets = jobHandler('importTargets', fromBody);
export const assign = jobHandler('assign', fromBody);
export const archive = jobHandler('archive', fromBody);
export const confirm = jobHandler('confirm', fromBody);
export const targets = jobHandler('targets', fromQuery);
export const setCopies = jobHandler('setCopies', fromBody);
export const migrate = jobHandler('migrate', fromBody);
export const unassigned = jobHandler('unassigned', fromQuery);
export const tapeDetail = jobHandler('tapeDetail', withPath('name', 'tape', fromQuery));
export const activateTape = jobHandler('activateTape', withPath('name', 'name'));
export const reconcile = jobHandler('reconcileNow', fromBody);
export const task = jobHandler('task', withPath('id', 'taskId', fromQuery));
export const discover = jobHandler('discoverNow', fromBody);
export const restore = jobHandler('restore', fromBody);
export const cancel = jobHandler('cancel', withPath('id', 'taskId'));
export const rebuildCatalog = jobHandler('rebuildCatalog', fromBody);
export const scrub = jobHandler('scrubNow', fromBody);
export const repair = jobHandler('repair', fromBody);
export const atRisk = jobHandler('atRisk', fromQuery);
export const snapshotTape = jobHandler('snapshotTape', fromBody);
export const fetchSnapshot = jobHandler('fetchSnapshot', fromBody);
export const whereIs = jobHandler('whereIs', fromQuery);
export const rescan = jobHandler('rescan', fromBody);
