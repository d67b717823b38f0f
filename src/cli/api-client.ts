/**
 * Runs jobs over the HTTP gateway instead of in-process (`run-job --api URL`). Errors come
 * back as the same error classes, so output and exit codes are the same either way.
 */
import { randomUUID } from 'node:crypto';
import {
  ArchiveError,
  ConflictError,
  OnlineTapeChangedError,
  IllegalTransitionError,
  NotFoundError,
  UsageError,
  ValidationError,
  errorMessage,
} from '../lib/errors.ts';
import type { JobName, JobOutput } from '../lib/jobs/registry.ts';
import { jobOutputSchemas } from '../lib/jobs/output-schemas.ts';
import { HTTP_ROUTES } from '../lib/resources/routes.ts';
import { formatIssues } from '../lib/validation.ts';
import { retry } from '../lib/concurrency.ts';
import { severalOnline } from '../lib/jobs/tapes.ts';

export class ApiError extends ArchiveError {
  override readonly name = 'ApiError';
  readonly code: string;
  readonly status: number;
  constructor(message: string, code: string, status: number) {
    super(message);
    this.code = code;
    this.status = status;
  }
}

const ERRORS: Record<string, new (m: string) => ArchiveError> = {
  BAD_USAGE: UsageError,
  INVALID_INPUT: ValidationError,
  NOT_FOUND: NotFoundError,
  ILLEGAL_TRANSITION: IllegalTransitionError,
  CONFLICT: ConflictError,
  ONLINE_TAPE_CHANGED: OnlineTapeChangedError,
};

/** The server still runs the first attempt of this idempotency key: ask again shortly. */
class StillRunning extends Error {
  constructor(readonly res: Response) {
    super('the first attempt is still running');
  }
}

/**
 * Sends until there is an answer (retry helper, concurrency.ts): a request lost in transit is
 * sent again with the same idempotency key (3 tries in all), and while the server answers 409
 * "still running" it is asked again, about once a second, for up to half a minute.
 */
async function retrySameKey(send: () => Promise<Response>, origin: string): Promise<Response> {
  let lost = 0;
  try {
    return await retry(
      async () => {
        let res: Response;
        try {
          res = await send();
        } catch (e) {
          if (++lost >= 3) throw new Error(`cannot reach the API at ${origin} (${errorMessage(e)}); is the gateway running ("npm run dev:api")?`);
          throw e;
        }
        if (res.status === 409 && (await res.clone().text()).includes('is still running')) throw new StillRunning(res);
        return res;
      },
      {
        attempts: 32,
        initialDelayMs: 500,
        factor: 1.5,
        maxDelayMs: 1000,
        retryable: (e) => e instanceof StillRunning || !(e instanceof Error && e.message.startsWith('cannot reach the API')),
      },
    );
  } catch (e) {
    if (e instanceof StillRunning) return e.res;
    throw e;
  }
}

export function createApiClient(baseUrl: string, token: string | undefined, fetchImpl: typeof fetch = fetch) {
  let base: URL;
  try {
    base = new URL(baseUrl);
  } catch {
    throw new UsageError(`--api "${baseUrl}" is not a URL; give the gateway's base URL, e.g. http://localhost:3000.`);
  }

  async function call<N extends JobName>(name: N, input: unknown): Promise<JobOutput<N>> {
    const route = HTTP_ROUTES[name];
    const fields = { ...((input ?? {}) as Record<string, unknown>) };
    let path = route.path;
    for (const [param, field] of Object.entries(route.pathParams ?? {})) {
      let value = fields[field];
      delete fields[field];
      if (value === undefined && (name === 'close_tape' || name === 'tape_detail')) {
        // The route names the tape: the online one (of --pool) is looked up first, as in-process.
        const online = (await call('tapes', {})).tapes.filter((t) => t.online && (fields.pool === undefined || t.pool === fields.pool));
        if (online.length > 1) throw severalOnline(online.map((t) => ({ pool: t.pool, tapeName: t.name })));
        if (!online[0]) throw new NotFoundError(`no tape is online${fields.pool === undefined ? '' : ` in pool ${String(fields.pool)}`}; name the tape.`);
        value = online[0].name;
      }
      path = path.replace(`{${param}}`, encodeURIComponent(String(value ?? '')));
    }
    const url = new URL(base.pathname.replace(/\/$/, '') + path, base);
    if (route.method === 'GET') for (const [k, v] of Object.entries(fields)) if (v !== undefined) url.searchParams.set(k, String(v));
    const headers: Record<string, string> = { accept: 'application/json' };
    if (token) headers.authorization = `Bearer ${token}`;
    if (route.method !== 'GET') headers['idempotency-key'] = randomUUID(); // the same key on the retry below
    if (route.method === 'POST') headers['content-type'] = 'application/json';
    const init: RequestInit = { method: route.method, headers, ...(route.method === 'POST' ? { body: JSON.stringify(fields) } : {}) };
    let res: Response;
    try {
      res = await fetchImpl(url, init);
    } catch {
      // The request may or may not have reached the server: retry with the same idempotency
      // key, waiting while the server says the first attempt is still running.
      res = await retrySameKey(() => fetchImpl(url, init), base.origin);
    }
    const text = await res.text();
    let body: unknown;
    try {
      body = JSON.parse(text);
    } catch {
      throw new ApiError(`the API answered ${res.status} with something that is not JSON: ${text.slice(0, 200)}`, 'BAD_RESPONSE', 502);
    }
    if (res.ok) {
      // The answer must be what the contract says (docs/openapi.json), or it is not used.
      const parsed = jobOutputSchemas[name].safeParse(body);
      if (!parsed.success) {
        throw new ApiError(`the API's answer to ${name} does not match the documented contract: ${formatIssues(parsed.error)}`, 'BAD_RESPONSE', 502);
      }
      return body as JobOutput<N>;
    }
    const err = (body as { error?: { code?: string; message?: string } }).error;
    const message = err?.message ?? `the API answered ${res.status}`;
    const Cls = err?.code ? ERRORS[err.code] : undefined;
    if (Cls) throw new Cls(message);
    throw new ApiError(res.status === 401 || res.status === 403 ? `${message} (set TAPE_ARCHIVE_API_TOKEN)` : message, err?.code ?? 'HTTP_ERROR', res.status);
  }
  return call;
}
