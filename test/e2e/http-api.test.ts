/**
 * The HTTP API end to end: serverless-offline serving serverless.yml (routes and the
 * SQS-triggered results handler) on the emulators, the real agent, and run-job --api.
 */
import { randomUUID } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startOfflineGateway, type OfflineGateway } from '../../src/local/offline-gateway.ts';
import { createHarness, type Harness } from '../support/agent-harness.ts';
import { extractWithGnuTar, makeTarget, treeDigest } from '../support/sample-data.ts';
import { createTestStack, type TestStack } from '../support/test-stack.ts';
import { snapshotCatalog } from '../support/catalog-helpers.ts';
import { waitUntil } from '../support/wait.ts';

const TOKEN = `tok-${randomUUID()}`;
const stage = `h${randomUUID().replace(/-/g, '').slice(0, 10)}`;
let stack: TestStack;
let h: Harness;
let gw: OfflineGateway;

beforeAll(async () => {
  stack = await createTestStack({ prefix: `tape-archive-${stage}` });
  h = await createHarness(stack, { resultsPump: false });
  gw = await startOfflineGateway({ stage, env: { ...stack.env, TAPE_ARCHIVE_API_TOKEN: TOKEN } });
  await h.startAgent();
}, 120_000);
afterAll(async () => {
  await gw?.stop();
  await h?.close();
  await stack?.close();
});

const api = (args: string[], token = TOKEN) => h.cli(['--api', gw.url, ...args], { TAPE_ARCHIVE_API_TOKEN: token });
/** Runs a job that must succeed; on failure the assertion shows what it printed. */
const ok = async (args: string[]) => {
  const r = await api(args);
  expect({ args, code: r.code, err: r.err }).toEqual({ args, code: 0, err: '' });
  return r.out;
};

describe('HTTP API over serverless-offline', () => {
  it('runs the whole workflow through run-job --api, with results applied by the SQS-triggered handler', async () => {
    const src = await makeTarget(join(h.dir, 'data', 'api-1'), [120_000, 3000]);
    const list = join(h.dir, 'api.txt');
    await writeFile(list, src + '\n');
    expect(await ok(['import', list])).toMatch(/imported 1 target/);
    await waitUntil(async () => (await stack.ctx.catalog.listAllTargets()).every((t) => t.scan === 'complete'), 30_000, 'scan');
    await h.vtl.createTape('apitape', { capacityBytes: 50_000_000 });
    expect(await ok(['open_tape', '--new', 'apitape', '--capacity', '50M'])).toMatch(/registered and online/);
    expect(await ok(['assign'])).toMatch(/assigned 1 target/);
    expect(await ok(['archive'])).toMatch(/apitape file 1: archived 2 file/);
    expect(await ok(['confirm', 'next'])).toMatch(/every checksum matches/);
    const tapes = JSON.parse(await ok(['--json', 'tapes'])).tapes;
    expect(tapes).toMatchObject([{ name: 'apitape', filesWritten: 1, filesConfirmed: 1 }]);
    const { data } = await extractWithGnuTar(h.vtl.tapeFilePath('apitape', 1));
    expect(data).toEqual(await treeDigest(src));
    // The same output in-process and over the API.
    expect(await ok(['targets'])).toBe((await h.cli(['targets'])).out);
    // The query commands and the copies jobs, over the gateway too (query-string numbers and flags).
    expect(await ok(['tape_detail', 'apitape', '1', '-v'])).toBe((await h.cli(['tape_detail', 'apitape', '1', '-v'])).out);
    expect(await ok(['tape_detail', 'apitape', '1', '-v'])).toMatch(/^[0-9a-f]{64} {2}file-0\.dat$/m);
    expect(await ok(['where_is', 'file-0.dat', '--limit', '5'])).toBe((await h.cli(['where_is', 'file-0.dat', '--limit', '5'])).out);
    expect(JSON.parse(await ok(['--json', 'where_is', 'file-*.dat'])).matches.map((m: { copies: unknown[] }) => m.copies)).toEqual([
      [{ pool: 'default', tape: 'apitape', fileNumber: 1, state: 'confirmed' }],
      [{ pool: 'default', tape: 'apitape', fileNumber: 1, state: 'confirmed' }],
    ]);
    expect((await api(['where_is', 'nothing-like-it.dat'])).code).toBe(40);
    expect(JSON.parse(await ok(['--json', 'unassigned']))).toMatchObject({ count: 0 });
    expect(JSON.parse(await ok(['--json', 'migrate']))).toMatchObject({ migrated: 0 });
    expect(await ok(['set_copies', '--all-imported', '--pools', 'default'])).toMatch(/0 target\(s\) changed, 1 already had it/);
    expect(await ok(['targets', '--state', 'safe'])).toMatch(/api-1/);
    expect(await ok(['activate_tape', 'apitape'])).toMatch(/already the online tape/);
    expect(await ok(['close_tape', '--yes'])).toMatch(/apitape closed and offline/);
    // The jobs beyond the seed's, over the gateway too.
    expect(await ok(['reconcile', '--older-than', '3600'])).toMatch(/re-sent 0 scan\(s\), 0 write\(s\), 0 verify\(s\)/);
    expect(await ok(['rescan', '--failed'])).toMatch(/rescan requested for 0 target/);
    expect(await ok(['discover', '--root', `localhost:${join(h.dir, 'data')}`, '--pattern', 'api-*'])).toMatch(/looking for api-\* under localhost:/);
    const task = JSON.parse(await ok(['--json', 'task', (await stack.ctx.catalog.getTapeFile('apitape', 1))!.taskId]));
    expect(task).toMatchObject({ kind: 'write', state: 'succeeded', outcome: 'archived' });
    // restore and cancel over the gateway; the restore's report is applied by the SQS-triggered handler
    const id = JSON.parse(await ok(['--json', 'targets'])).targets[0].id as string;
    const to = join(h.dir, 'restored-api');
    expect(await ok(['restore', id, '--to', to])).toMatch(/complete and verified: \d+ restored/);
    expect(await treeDigest(to)).toEqual(await treeDigest(src));
    const done = JSON.parse(await ok(['--json', 'restore', id, '--to', to, '--no-wait'])).tasks[0].taskId as string;
    await ok(['task', done, '--wait']);
    const late = await api(['cancel', done]);
    expect(late.code).toBe(1);
    expect(late.err).toMatch(/already succeeded; nothing to cancel/);
  });

  it('refuses missing and wrong credentials with 401 and 403, and bad input with 400, changing nothing', async () => {
    const before = await snapshotCatalog(stack);
    const raw = (path: string, init: RequestInit = {}) => fetch(gw.url + path, init);
    const auth = { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' };
    const cases: [Promise<Response>, number, RegExp][] = [
      [raw('/tapes'), 401, /missing credentials/],
      [raw('/imports', { method: 'POST', body: '{"content":"/x"}' }), 401, /missing credentials/],
      [raw('/tapes', { headers: { authorization: 'Bearer nope' } }), 403, /not valid/],
      [raw('/imports', { method: 'POST', headers: auth, body: '{"content":"/x","evil":1}' }), 400, /Unrecognized key/i],
      [raw('/imports', { method: 'POST', headers: auth, body: 'not json' }), 400, /not JSON/],
      [raw('/imports', { method: 'POST', headers: auth, body: JSON.stringify({ content: 'x'.repeat(5.5 * 1024 * 1024) }) }), 400, /request body is over/],
      [raw('/tapes/bad%20name/open', { method: 'POST', headers: auth }), 400, /tape name "bad name" is invalid/],
      [raw('/targets?state=nope', { headers: auth }), 400, /unknown state/],
      [raw('/tasks/not-a-uuid', { headers: auth }), 400, /taskId/],
    ];
    for (const [p, status, message] of cases) {
      const r = await p;
      const body = (await r.json()) as { error: { message: string } };
      expect({ status: r.status, message: body.error.message }).toMatchObject({ status, message: expect.stringMatching(message) });
    }
    const wrong = await api(['tapes'], 'wrong-token');
    expect(wrong.code).toBe(1);
    expect(wrong.err).toMatch(/not valid .*TAPE_ARCHIVE_API_TOKEN/);
    expect(await snapshotCatalog(stack)).toEqual(before);
  });

  it('replays a retried mutating call by its Idempotency-Key and refuses the key with another body', async () => {
    const headers = { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json', 'idempotency-key': `k-${randomUUID()}` };
    const body = JSON.stringify({ content: '/data/idem-http\n', source: 'http' });
    const first = await fetch(`${gw.url}/imports`, { method: 'POST', headers, body });
    const second = await fetch(`${gw.url}/imports`, { method: 'POST', headers, body });
    expect(first.status).toBe(200);
    expect(await second.text()).toBe(await first.text());
    const other = await fetch(`${gw.url}/imports`, { method: 'POST', headers, body: JSON.stringify({ content: '/data/other-http\n' }) });
    expect(other.status).toBe(409);
  });
});
