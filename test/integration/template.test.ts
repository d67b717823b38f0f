import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';

const run = promisify(execFile);
let dir: string | undefined;
afterAll(async () => {
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe('npx osls package', () => {
  it('builds the CloudFormation template with tables and queues, with no AWS credentials', async () => {
    dir = await mkdtemp(join(tmpdir(), 'sls-package-'));
    const env: NodeJS.ProcessEnv = { PATH: process.env.PATH, HOME: dir, SLS_TELEMETRY_DISABLED: '1', SLS_NOTIFICATIONS_MODE: 'off' };
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
    const functions = Object.values(r).filter((x) => x.Type === 'AWS::Lambda::Function');
    expect(functions.length).toBeGreaterThanOrEqual(8);
    for (const f of functions) expect(f.Properties.Runtime).toBe('nodejs22.x');
  }, 180_000);
});
