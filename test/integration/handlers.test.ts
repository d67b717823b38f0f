import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { archive, closeTape, importTargets, openTape, tapes, targets } from '../../src/handlers/jobs.ts';
import { setJobContext } from '../../src/handlers/runtime.ts';
import { createTestStack, type TestStack } from '../support/test-stack.ts';
import { snapshotCatalog } from '../support/catalog-helpers.ts';

const TOKEN = 'handler-test-token-0123456789';
let stack: TestStack;
beforeAll(async () => {
  stack = await createTestStack();
  setJobContext({ ...stack.ctx, config: { ...stack.ctx.config, apiToken: TOKEN, trustGatewayAuth: true } });
});
afterAll(async () => {
  setJobContext(undefined);
  await stack?.close();
});

// Lambda passes (event, context); the handlers do not use the context.
const lambdaContext = {} as never;
const auth = { authorization: `Bearer ${TOKEN}` };
const post = (x: unknown, headers: Record<string, string> = {}) => ({ body: JSON.stringify(x), headers: { ...auth, ...headers } });

describe('Lambda handlers (API Gateway HTTP API events)', () => {
  it('run the jobs and answer JSON', async () => {
    const imported = await importTargets(post({ content: '/data/h1\n/data/h2\n', source: 'api' }), lambdaContext);
    expect(imported.statusCode).toBe(200);
    expect(JSON.parse(imported.body).imported).toHaveLength(2);
    const opened = await openTape({ pathParameters: { name: 'tapeH' }, body: JSON.stringify({ capacity: '1T', new: true }), headers: auth }, lambdaContext);
    expect(JSON.parse(opened.body)).toMatchObject({ registered: true, tape: { name: 'tapeH', capacityBytes: 1e12 } });
    const list = await tapes({ queryStringParameters: null, headers: auth }, lambdaContext);
    expect(JSON.parse(list.body).tapes).toMatchObject([{ name: 'tapeH', online: true }]);
    const t = await targets({ queryStringParameters: { state: 'imported' }, headers: auth }, lambdaContext);
    expect(JSON.parse(t.body).targets).toHaveLength(2);
  });

  it('accept a request the AWS IAM authorizer has checked, but only on real Lambda', async () => {
    const signed = { requestContext: { authorizer: { iam: { userArn: 'arn:aws:iam::1:user/op' } } } };
    expect((await tapes(signed, lambdaContext)).statusCode).toBe(200);
    setJobContext({ ...stack.ctx, config: { ...stack.ctx.config, apiToken: TOKEN, trustGatewayAuth: false } });
    try {
      expect((await tapes(signed, lambdaContext)).statusCode).toBe(401);
    } finally {
      setJobContext({ ...stack.ctx, config: { ...stack.ctx.config, apiToken: TOKEN, trustGatewayAuth: true } });
    }
  });

  it('refuse missing or wrong credentials with 401/403, changing nothing', async () => {
    const before = await snapshotCatalog(stack);
    const cases: [Promise<{ statusCode: number; body: string }>, number, RegExp][] = [
      [tapes({}, lambdaContext), 401, /missing credentials/],
      [importTargets({ body: JSON.stringify({ content: '/x' }) }, lambdaContext), 401, /missing credentials/],
      [importTargets({ body: JSON.stringify({ content: '/x' }), headers: { authorization: 'Basic abc' } }, lambdaContext), 401, /malformed Authorization/],
      [importTargets({ body: JSON.stringify({ content: '/x' }), headers: { Authorization: 'Bearer wrong-token' } }, lambdaContext), 403, /not valid/],
    ];
    for (const [p, status, message] of cases) {
      const r = await p;
      expect(r.statusCode).toBe(status);
      expect(JSON.parse(r.body).error.message).toMatch(message);
    }
    expect(await snapshotCatalog(stack)).toEqual(before);
  });

  it('map bad input to 400/404/409 with a code and a message, changing nothing', async () => {
    const before = await snapshotCatalog(stack);
    const cases: [Promise<{ statusCode: number; body: string }>, number, string, RegExp][] = [
      [importTargets({ body: '{not json', headers: auth }, lambdaContext), 400, 'BAD_USAGE', /not JSON/],
      [importTargets(post({ content: '/x', source: 's', extra: true }), lambdaContext), 400, 'BAD_USAGE', /Unrecognized key.*extra/i],
      [importTargets(post({ content: 'relative', source: 's' }), lambdaContext), 400, 'INVALID_INPUT', /not an absolute path/],
      [importTargets(post({ content: 'x'.repeat(6 * 1024 * 1024) }), lambdaContext), 400, 'BAD_USAGE', /request body is over/],
      [
        closeTape({ pathParameters: { name: 'nosuch' }, body: JSON.stringify({ yes: true }), headers: auth }, lambdaContext),
        404,
        'NOT_FOUND',
        /not registered/,
      ],
      [openTape({ pathParameters: { name: 'bad name!' }, headers: auth }, lambdaContext), 400, 'BAD_USAGE', /tape name "bad name!" is invalid/],
      [
        openTape({ pathParameters: { name: 'tapeX' }, body: JSON.stringify({ name: 'other' }), headers: auth }, lambdaContext),
        400,
        'BAD_USAGE',
        /comes from the URL path/,
      ],
      [targets({ queryStringParameters: { state: 'bogus' }, headers: auth }, lambdaContext), 400, 'BAD_USAGE', /unknown state/],
      [targets({ queryStringParameters: { extra: '1' }, headers: auth }, lambdaContext), 400, 'BAD_USAGE', /Unrecognized key/i],
      [archive({ body: '[]', headers: auth }, lambdaContext), 400, 'BAD_USAGE', /JSON object/],
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

  it('replay a mutating call with the same Idempotency-Key and refuse the key with another body', async () => {
    const key = { 'idempotency-key': 'import-0001-abcdef' };
    const first = await importTargets(post({ content: '/data/idem\n', source: 'api' }, key), lambdaContext);
    expect(first.statusCode).toBe(200);
    expect(JSON.parse(first.body).imported).toHaveLength(1);
    const again = await importTargets(post({ content: '/data/idem\n', source: 'api' }, key), lambdaContext);
    expect(again.statusCode).toBe(200);
    expect(again.body).toBe(first.body); // the first answer, not "already known"
    expect(again.headers['idempotent-replayed']).toBe('true');
    const other = await importTargets(post({ content: '/data/other\n', source: 'api' }, key), lambdaContext);
    expect(other.statusCode).toBe(409);
    expect(JSON.parse(other.body).error.message).toMatch(/already used with a different request/);
    expect((await stack.ctx.catalog.listAllTargets()).some((t) => t.path === '/data/other')).toBe(false);
    const badKey = await importTargets(post({ content: '/data/k\n' }, { 'Idempotency-Key': 'short' }), lambdaContext);
    expect(badKey.statusCode).toBe(400);
  });
});
