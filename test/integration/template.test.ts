import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import { FUNCTIONS } from '../../src/lib/resources/access.ts';
import { permissionsFor, type Permissions } from '../../src/lib/resources/iam.ts';

const run = promisify(execFile);
const capitalize = (s: string) => s[0]!.toUpperCase() + s.slice(1);

/** resource -> sorted actions of a function's role in the template (logs aside). */
function templatePermissions(r: Record<string, { Properties: Record<string, any> }>, fn: string): Permissions {
  const role = r[`${capitalize(fn)}IamRoleLambdaExecution`];
  if (!role) throw new Error(`no role for function ${fn}`);
  const out = new Map<string, Set<string>>();
  for (const st of role.Properties.Policies.flatMap((p: any) => p.PolicyDocument.Statement)) {
    const actions = (st.Action as string[]).filter((a) => !a.startsWith('logs:'));
    if (!actions.length) continue;
    for (const res of st.Resource as any[]) {
      const id = res['Fn::GetAtt'] ? res['Fn::GetAtt'][0] : `${res['Fn::Join'][1][0]['Fn::GetAtt'][0]}/${res['Fn::Join'][1][1]}`;
      const set = out.get(id) ?? new Set<string>();
      for (const a of actions) set.add(a);
      out.set(id, set);
    }
  }
  return Object.fromEntries([...out].sort(([a], [b]) => (a < b ? -1 : 1)).map(([k, v]) => [k, [...v].sort()]));
}
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
    const env: NodeJS.ProcessEnv = {
      PATH: process.env.PATH,
      HOME: dir,
      SLS_TELEMETRY_DISABLED: '1',
      SLS_NOTIFICATIONS_MODE: 'off',
      TAPE_ARCHIVE_BUILD_DIR: buildDir,
    };
    await run('npx', ['osls', 'package', '--stage', 'ci', '--package', join(dir, 'out')], { env, cwd: process.cwd(), timeout: 120_000 });
    const template = JSON.parse(await readFile(join(dir, 'out', 'cloudformation-template-update-stack.json'), 'utf8'));
    const r = template.Resources as Record<string, { Type: string; DeletionPolicy?: string; UpdateReplacePolicy?: string; Properties: Record<string, any> }>;
    // The catalog survives `osls remove` and a replacement, with point-in-time recovery on.
    for (const t of ['CatalogTable', 'ManifestTable']) {
      expect(r[t], t).toMatchObject({ DeletionPolicy: 'Retain', UpdateReplacePolicy: 'Retain' });
      expect(r[t]!.Properties.PointInTimeRecoverySpecification).toEqual({ PointInTimeRecoveryEnabled: true });
    }
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
    expect(functions.length).toBe(Object.keys(FUNCTIONS).length);
    for (const [, f] of functions) expect(f.Properties.Runtime).toBe('nodejs24.x');

    // Least privilege, derived from the declarations: each function's own role holds exactly
    // what src/lib/resources/access.ts says its code touches, on exactly those resources.
    expect(functions.map(([id]) => id.replace(/LambdaFunction$/, '')).sort()).toEqual(Object.keys(FUNCTIONS).map(capitalize).sort());
    for (const [fn, decl] of Object.entries(FUNCTIONS)) {
      expect(r[`${capitalize(fn)}LambdaFunction`]!.Properties.Handler, `handler of ${fn}`).toBe(`src/handlers/${decl.handler}`);
      expect(templatePermissions(r, fn), `IAM statements of ${fn}`).toEqual(permissionsFor(decl.access));
    }
    // The defect this pins: applying a discover result imports targets and sends their scans.
    expect(templatePermissions(r, 'results').ScanQueue).toEqual(['sqs:GetQueueUrl', 'sqs:SendMessage']);

    // Every route is authenticated and described by the OpenAPI document, and vice versa.
    const routes = Object.values(r).filter((x) => x.Type === 'AWS::ApiGatewayV2::Route');
    for (const route of routes) expect(route.Properties.AuthorizationType, route.Properties.RouteKey).toBe('AWS_IAM');
    const openapi = JSON.parse(await readFile(join(process.cwd(), 'docs/openapi.json'), 'utf8'));
    const documented = Object.entries(openapi.paths as Record<string, Record<string, unknown>>).flatMap(([path, ops]) =>
      Object.keys(ops).map((m) => `${m.toUpperCase()} ${path}`),
    );
    expect(routes.map((x) => x.Properties.RouteKey).sort()).toEqual(documented.sort());
  }, 180_000);
});
