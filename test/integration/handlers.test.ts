import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { archive, closeTape, importTargets, openTape, tapes, targets } from '../../src/handlers/jobs.ts';
import { setJobContext } from '../../src/handlers/runtime.ts';
import { createTestStack, type TestStack } from '../support/test-stack.ts';
import { snapshotCatalog } from '../support/catalog-helpers.ts';

let stack: TestStack;
beforeAll(async () => {
  stack = await createTestStack();
  setJobContext(stack.ctx);
});
afterAll(async () => {
  setJobContext(undefined);
  await stack?.close();
});

// Lambda passes (event, context); the handlers do not use the context.
const lambdaContext = {} as never;
const body = (x: unknown) => ({ body: JSON.stringify(x) });

describe('Lambda handlers (API Gateway HTTP API events)', () => {
  it('run the jobs and answer JSON', async () => {
    const imported = await importTargets(body({ content: '/data/h1\n/data/h2\n', source: 'api' }), lambdaContext);
    expect(imported.statusCode).toBe(200);
    expect(JSON.parse(imported.body).imported).toHaveLength(2);
    const opened = await openTape({ pathParameters: { name: 'tapeH' }, body: JSON.stringify({ capacity: '1T' }) }, lambdaContext);
    expect(JSON.parse(opened.body)).toMatchObject({ registered: true, tape: { name: 'tapeH', capacityBytes: 1e12 } });
    const list = await tapes({ queryStringParameters: null }, lambdaContext);
    expect(JSON.parse(list.body).tapes).toMatchObject([{ name: 'tapeH', online: true }]);
    const t = await targets({ queryStringParameters: { state: 'imported' } }, lambdaContext);
    expect(JSON.parse(t.body).targets).toHaveLength(2);
  });

  it('map errors to 400/404/409 with a code and a message, changing nothing', async () => {
    const before = await snapshotCatalog(stack);
    const cases: [Promise<{ statusCode: number; body: string }>, number, string, RegExp][] = [
      [importTargets({ body: '{not json' }, lambdaContext), 400, 'BAD_USAGE', /not JSON/],
      [importTargets(body({ content: '/x', source: 's', extra: true }), lambdaContext), 400, 'BAD_USAGE', /Unrecognized key.*extra/i],
      [importTargets(body({ content: 'relative', source: 's' }), lambdaContext), 400, 'INVALID_INPUT', /not an absolute path/],
      [closeTape({ pathParameters: { name: 'nosuch' }, body: JSON.stringify({ yes: true }) }, lambdaContext), 404, 'NOT_FOUND', /not registered/],
      [targets({ queryStringParameters: { state: 'bogus' } }, lambdaContext), 400, 'BAD_USAGE', /unknown state/],
      [archive({ body: '[]' }, lambdaContext), 400, 'BAD_USAGE', /JSON object/],
    ];
    for (const [p, status, code, message] of cases) {
      const r = await p;
      expect(r.statusCode).toBe(status);
      const err = JSON.parse(r.body).error;
      expect(err.code).toBe(code);
      expect(err.message).toMatch(message);
    }
    expect(await snapshotCatalog(stack)).toEqual(before);
  });
});
