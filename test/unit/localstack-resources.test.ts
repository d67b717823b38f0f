import { readFile } from 'node:fs/promises';
import { describe, expect, it } from 'vitest';
import { localstackResources } from '../../src/cli/localstack-resources.ts';

describe('localstack/resources.json', () => {
  it('is what definitions.ts renders today (regenerate with npm run localstack:resources)', async () => {
    const committed = JSON.parse(await readFile('localstack/resources.json', 'utf8'));
    expect(committed).toEqual(localstackResources(committed.prefix));
    expect(committed.tables.map((t: { TableName: string }) => t.TableName)).toEqual(['tape-archive-dev-catalog', 'tape-archive-dev-manifests']);
  });
});
