import { describe, expect, it } from 'vitest';
import { cloudFormationResources, createTableInput, CATALOG_TABLE, resourceNames } from '../../src/lib/resources/definitions.ts';

describe('resource definitions', () => {
  it('render the same tables for CloudFormation and for CreateTable', () => {
    const cfn = cloudFormationResources('svc-dev') as Record<string, { Type: string; Properties: Record<string, unknown> }>;
    const direct = createTableInput(CATALOG_TABLE, 'svc-dev-catalog');
    expect(cfn.CatalogTable!.Properties).toMatchObject(direct);
    expect(cfn.CatalogTable!.Properties.TableName).toBe(resourceNames('svc-dev').catalogTable);
  });
  it('give every queue a dead-letter queue', () => {
    const cfn = cloudFormationResources('svc-dev') as Record<string, { Type: string; Properties: Record<string, unknown> }>;
    for (const id of ['TaskQueue', 'ScanQueue', 'ResultQueue']) {
      expect(cfn[id]!.Properties.RedrivePolicy).toEqual({ deadLetterTargetArn: { 'Fn::GetAtt': [`${id}Dlq`, 'Arn'] }, maxReceiveCount: 5 });
      expect(cfn[`${id}Dlq`]!.Type).toBe('AWS::SQS::Queue');
    }
  });
});
