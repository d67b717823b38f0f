import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';

const run = promisify(execFile);
let dir: string | undefined;
let buildDir: string | undefined;
afterAll(async () => {
  if (dir) await rm(dir, { recursive: true, force: true });
  if (buildDir) await rm(join(process.cwd(), buildDir), { recursive: true, force: true });
});

describe('npx osls package', () => {
  it('builds the CloudFormation template with tables and queues, with no AWS credentials', async () => {
    dir = await mkdtemp(join(tmpdir(), 'sls-package-'));
    buildDir = `.esbuild-test-${process.pid}-${Date.now()}`;
    const env: NodeJS.ProcessEnv = { PATH: process.env.PATH, HOME: dir, SLS_TELEMETRY_DISABLED: '1', SLS_NOTIFICATIONS_MODE: 'off', TAPE_ARCHIVE_BUILD_DIR: buildDir };
    await run('npx', ['osls', 'package', '--stage', 'ci', '--package', join(dir, 'out')], { env, cwd: process.cwd(), timeout: 120_000 });
    const template = JSON.parse(await readFile(join(dir, 'out', 'cloudformation-template-update-stack.json'), 'utf8'));
    const r = template.Resources as Record<string, { Type: string; Properties: Record<string, any> }>;
    expect(r.CatalogTable?.Properties).toMatchObject({
      TableName: 'tape-archive-ci-catalog',
      BillingMode: 'PAY_PER_REQUEST',
      GlobalSecondaryIndexes: [expect.objectContaining({ IndexName: 'byPlacement' })],
    });
    expect(r.ManifestTable?.Properties.TableName).toBe('tape-archive-ci-manifests');
    for (const q of ['TaskQueue', 'ScanQueue', 'ResultQueue']) {
      expect(r[q]?.Type).toBe('AWS::SQS::Queue');
      expect(r[q]?.Properties.RedrivePolicy.deadLetterTargetArn).toEqual({ 'Fn::GetAtt': [`${q}Dlq`, 'Arn'] });
    }
    const functions = Object.entries(r).filter(([, x]) => x.Type === 'AWS::Lambda::Function');
    expect(functions.length).toBe(15);
    for (const [, f] of functions) expect(f.Properties.Runtime).toBe('nodejs22.x');

    // Least privilege: each function's own role holds exactly what its job needs.
    const actionsOf = (fn: string) => {
      const role = r[`${fn}IamRoleLambdaExecution`];
      expect(role, `role of ${fn}`).toBeDefined();
      const statements = role!.Properties.Policies.flatMap((p: any) => p.PolicyDocument.Statement);
      return new Set<string>(statements.flatMap((s: any) => s.Action).filter((a: string) => !a.startsWith('logs:')));
    };
    const read = ['dynamodb:GetItem', 'dynamodb:Query', 'dynamodb:Scan'];
    const write = [...read, 'dynamodb:PutItem', 'dynamodb:UpdateItem', 'dynamodb:DeleteItem', 'dynamodb:ConditionCheckItem'];
    const send = ['sqs:SendMessage', 'sqs:GetQueueUrl'];
    const expected: Record<string, string[]> = {
      Tapes: read,
      Targets: read,
      Task: read,
      OpenTape: write,
      CloseTape: write,
      Assign: write,
      ImportTargets: [...write, ...send],
      Archive: [...write, ...send],
      Confirm: [...write, ...send],
      ReconcileNow: [...write, ...send],
      Reconcile: [...write, ...send],
      DiscoverNow: [...write, ...send],
      Rescan: [...write, ...send],
      ScheduledImport: send,
      Results: [...write, 'sqs:ReceiveMessage', 'sqs:DeleteMessage', 'sqs:GetQueueAttributes', 'sqs:ChangeMessageVisibility'],
    };
    for (const [fn, actions] of Object.entries(expected)) expect([...actionsOf(fn)].sort(), fn).toEqual([...actions].sort());
    const queueResources = (fn: string) =>
      r[`${fn}IamRoleLambdaExecution`]!.Properties.Policies.flatMap((p: any) => p.PolicyDocument.Statement)
        .filter((s: any) => s.Action.includes('sqs:SendMessage'))
        .flatMap((s: any) => s.Resource.map((x: any) => x['Fn::GetAtt'][0]));
    expect(queueResources('ImportTargets')).toEqual(['ScanQueue']);
    expect(queueResources('Archive')).toEqual(['TaskQueue']);
    expect(queueResources('Confirm')).toEqual(['TaskQueue']);

    // Every route is authenticated and described by the OpenAPI document, and vice versa.
    const routes = Object.values(r).filter((x) => x.Type === 'AWS::ApiGatewayV2::Route');
    for (const route of routes) expect(route.Properties.AuthorizationType, route.Properties.RouteKey).toBe('AWS_IAM');
    const openapi = JSON.parse(await readFile(join(process.cwd(), 'docs/openapi.json'), 'utf8'));
    const documented = Object.entries(openapi.paths as Record<string, Record<string, unknown>>).flatMap(([path, ops]) => Object.keys(ops).map((m) => `${m.toUpperCase()} ${path}`));
    expect(routes.map((x) => x.Properties.RouteKey).sort()).toEqual(documented.sort());
  }, 180_000);
});
