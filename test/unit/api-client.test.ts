import { describe, expect, it } from 'vitest';
import { createApiClient } from '../../src/cli/api-client.ts';
import { ConflictError, NotFoundError, UsageError } from '../../src/lib/errors.ts';

const json = (status: number, body: unknown) => new Response(JSON.stringify(body), { status, headers: { 'content-type': 'application/json' } });

describe('run-job --api client', () => {
  it('maps routes, path parameters, query strings, the token and idempotency keys', async () => {
    const seen: { url: string; method: string; headers: Record<string, string>; body?: string }[] = [];
    const call = createApiClient('http://gw.example/base/', 'tok', async (url, init) => {
      seen.push({
        url: String(url),
        method: init!.method!,
        headers: init!.headers as Record<string, string>,
        ...(init!.body ? { body: String(init!.body) } : {}),
      });
      return json(200, { ok: true });
    });
    await call('open_tape', { name: 'tape 1', capacity: '18T' });
    await call('targets', { state: 'assigned', tape: 'tape1' });
    await call('task', { taskId: '6f1f0c1e-0000-4000-8000-000000000000' });
    expect(seen.map((s) => `${s.method} ${s.url}`)).toEqual([
      'POST http://gw.example/base/tapes/tape%201/open',
      'GET http://gw.example/base/targets?state=assigned&tape=tape1',
      'GET http://gw.example/base/tasks/6f1f0c1e-0000-4000-8000-000000000000',
    ]);
    expect(JSON.parse(seen[0]!.body!)).toEqual({ capacity: '18T' });
    expect(seen[0]!.headers.authorization).toBe('Bearer tok');
    expect(seen[0]!.headers['idempotency-key']).toMatch(/^[0-9a-f-]{36}$/);
    expect(seen[1]!.headers['idempotency-key']).toBeUndefined();
  });

  it('turns error answers back into the same error classes', async () => {
    const answers = [
      json(400, { error: { code: 'BAD_USAGE', message: 'bad' } }),
      json(404, { error: { code: 'NOT_FOUND', message: 'gone' } }),
      json(409, { error: { code: 'CONFLICT', message: 'busy' } }),
    ];
    const call = createApiClient('http://gw', undefined, async () => answers.shift()!);
    await expect(call('tapes', {})).rejects.toThrow(UsageError);
    await expect(call('tapes', {})).rejects.toThrow(NotFoundError);
    await expect(call('archive', {})).rejects.toThrow(ConflictError);
  });

  it('retries a request lost in transit with the same key until the first attempt has answered', async () => {
    const keys: string[] = [];
    let n = 0;
    const call = createApiClient('http://gw', 'tok', async (_url, init) => {
      keys.push((init!.headers as Record<string, string>)['idempotency-key']!);
      n++;
      if (n === 1) throw new TypeError('fetch failed: other side closed');
      if (n === 2) return json(409, { error: { code: 'CONFLICT', message: 'a request with Idempotency-Key k is still running; retry in a moment' } });
      return json(200, { imported: [] });
    });
    expect(await call('import', { content: '/x' })).toEqual({ imported: [] });
    expect(n).toBe(3);
    expect(new Set(keys).size).toBe(1);
  });
});
