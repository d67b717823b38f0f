import { describe, expect, it } from 'vitest';
import { createApiClient } from '../../src/cli/api-client.ts';
import { ConflictError, NotFoundError, UsageError } from '../../src/lib/errors.ts';

const json = (status: number, body: unknown) => new Response(JSON.stringify(body), { status, headers: { 'content-type': 'application/json' } });

const NOW = '2026-12-02T10:00:00.000Z';
const OPENED = {
  tape: {
    name: 'tape 1',
    barcode: '',
    pool: 'default',
    capacityBytes: 18e12,
    state: 'registered',
    online: true,
    bytesUsed: 0,
    nextFileNumber: 1,
    filesWritten: 0,
    filesConfirmed: 0,
    createdAt: NOW,
    updatedAt: NOW,
  },
  registered: true,
  message: 'ok',
};
const TASK = { taskId: 't', kind: 'write', state: 'queued', bytesDone: 0, bytesTotal: 0, createdAt: NOW, updatedAt: NOW, stale: false };
const IMPORTED = { imported: [], alreadyKnown: [], duplicates: [], skipped: [], scansRequested: 0, copies: ['default'] };

describe('run-job --api client', () => {
  it('refuses an answer that does not match the contract, naming what is wrong', async () => {
    const call = createApiClient('http://gw', undefined, async () => json(200, { tapes: [{ name: 'x' }] }));
    await expect(call('tapes', {})).rejects.toThrow(/answer to tapes does not match the documented contract: tapes\[0\]\.barcode/);
  });

  it('maps routes, path parameters, query strings, the token and idempotency keys', async () => {
    const seen: { url: string; method: string; headers: Record<string, string>; body?: string }[] = [];
    const call = createApiClient('http://gw.example/base/', 'tok', async (url, init) => {
      seen.push({
        url: String(url),
        method: init!.method!,
        headers: init!.headers as Record<string, string>,
        ...(init!.body ? { body: String(init!.body) } : {}),
      });
      // A valid answer for each job asked (the client checks answers against the contract).
      return json(200, String(url).includes('/open') ? OPENED : String(url).includes('/targets') ? { targets: [] } : TASK);
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
      return json(200, IMPORTED);
    });
    expect(await call('import', { content: '/x' })).toEqual(IMPORTED);
    expect(n).toBe(3);
    expect(new Set(keys).size).toBe(1);
  });
});
