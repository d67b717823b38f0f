/** The copies model's pure parts: policy, derived status, index keys, policy changes, and the release-0.3 upgrade's requests. */
import { describe, expect, it } from 'vitest';
import { readFile } from 'node:fs/promises';
import { unmarshall } from '@aws-sdk/util-dynamodb';
import { copyCodec, copyIndexKey, isReleaseThreeTarget, targetCodec } from '../../src/lib/catalog/items.ts';
import { migrateTargetItems, parseReleaseThreeTarget } from '../../src/lib/catalog/upgrade.ts';
import { copiesStatus, describeCopies, overallStatus, parseCopyPolicy, planPolicyChange, tapesTaken, type Copy } from '../../src/lib/domain/copies.ts';
import type { Target } from '../../src/lib/domain/target.ts';
import { CatalogUpgradeError } from '../../src/lib/errors.ts';
import { itemsFromJson } from '../support/dynamodb-json.ts';

const now = '2026-01-01T00:00:00.000Z';
const copy = (pool: string, placement: Copy['placement'], tapeName?: string): Copy => ({
  targetId: 't',
  pool,
  placement,
  ...(tapeName ? { tapeName } : {}),
  importedAt: now,
  updatedAt: now,
  version: 1,
});
const target: Target = { id: 't', host: 'h', path: '/p', scan: 'complete', copies: ['primary', 'offsite'], importedAt: now, updatedAt: now, version: 1 };

describe('copy policy', () => {
  it('parses pools and refuses an empty, invalid or repeated pool', () => {
    expect(parseCopyPolicy('primary,offsite')).toEqual({ policy: ['primary', 'offsite'] });
    expect(parseCopyPolicy(['primary', 'offsite'])).toEqual({ policy: ['primary', 'offsite'] });
    expect(parseCopyPolicy('primary,,offsite')).toMatchObject({ error: expect.stringMatching(/empty pool/) });
    expect(parseCopyPolicy('primary,off site')).toMatchObject({ error: expect.stringMatching(/pool "off site" is invalid/) });
    expect(parseCopyPolicy(['primary', 'primary'])).toMatchObject({ error: expect.stringMatching(/names pool primary twice/) });
  });
});

describe('derived status', () => {
  it('is safe only when every required pool has a confirmed copy', () => {
    const policy = ['primary', 'offsite'];
    expect(describeCopies(copiesStatus(policy, [copy('primary', 'confirmed', 'p1'), copy('offsite', 'archived', 'o1')]))).toBe(
      '1/2 confirmed (missing: offsite)',
    );
    expect(copiesStatus(policy, [copy('primary', 'confirmed', 'p1'), copy('offsite', 'confirmed', 'o1')])).toMatchObject({ safe: true, confirmed: 2 });
    expect(copiesStatus(['primary'], [copy('primary', 'confirmed', 'p1'), copy('offsite', 'confirmed', 'o1')])).toMatchObject({
      safe: true,
      extra: ['offsite'],
    });
    expect(copiesStatus(policy, [copy('primary', 'confirm_failed', 'p1'), copy('offsite', 'confirmed', 'o1')])).toMatchObject({
      safe: false,
      missing: ['primary'],
    });
    expect(copiesStatus(policy, [copy('primary', 'confirmed', 'p1')])).toMatchObject({ safe: false, missing: ['offsite'] });
  });

  it('the one word of a target is that of the first required copy not yet confirmed', () => {
    expect(overallStatus({ target, copies: [copy('primary', 'confirmed', 'p1'), copy('offsite', 'assigned', 'o1')] })).toBe('assigned');
    expect(overallStatus({ target, copies: [copy('primary', 'confirmed', 'p1'), copy('offsite', 'confirmed', 'o1')] })).toBe('confirmed');
    expect(overallStatus({ target: { ...target, scan: 'pending' }, copies: [copy('primary', 'unassigned'), copy('offsite', 'unassigned')] })).toBe('imported');
    // A required pool without a copy record counts as not yet assigned.
    expect(overallStatus({ target, copies: [copy('primary', 'confirmed', 'p1')] })).toBe('scanned');
  });

  it('two copies never share a tape', () => {
    const copies = [copy('primary', 'archived', 'p1'), copy('offsite', 'assigned', 'o1'), copy('third', 'unassigned')];
    expect([...tapesTaken(copies, 'offsite')]).toEqual(['p1']);
    expect([...tapesTaken(copies)].sort()).toEqual(['o1', 'p1']);
  });

  it('the placement index finds a copy by its tape, or (unassigned) by its pool; the default pool keeps the keys of release 0.3', () => {
    expect(copyIndexKey(copy('offsite', 'assigned', 'o1'))).toBe('PLACE#assigned#o1');
    expect(copyIndexKey(copy('offsite', 'unassigned'))).toBe('PLACE#unassigned#offsite');
    expect(copyIndexKey(copy('default', 'unassigned'))).toBe('PLACE#unassigned');
  });
});

describe('policy change', () => {
  const copies: Copy[] = [copy('primary', 'confirmed', 'p1'), copy('offsite', 'confirmed', 'o1')];
  it('raising creates the missing copies; dropping a pool with data on tape needs force and keeps the copy as extra', () => {
    expect(planPolicyChange(['primary', 'offsite'], ['primary', 'offsite', 'vault'], copies)).toEqual({ create: ['vault'], release: [], keptAsExtra: [] });
    expect(planPolicyChange(['primary', 'offsite'], ['primary'], copies)).toMatchObject({ error: expect.stringMatching(/drops pool\(s\) offsite .*--force/) });
    expect(planPolicyChange(['primary', 'offsite'], ['primary'], copies, true)).toEqual({ create: [], release: [], keptAsExtra: ['offsite'] });
  });
  it('dropping a pool whose copy is only assigned releases it, without force', () => {
    expect(planPolicyChange(['primary', 'offsite'], ['primary'], [copy('primary', 'confirmed', 'p1'), copy('offsite', 'assigned', 'o1')])).toEqual({
      create: [],
      release: ['offsite'],
      keptAsExtra: [],
    });
  });
});

describe('a catalog written by release 0.3', () => {
  it('its targets are recognised, read for their scan, refused as copies, and migrated in one conditional transaction', async () => {
    const items = itemsFromJson(await readFile('test/fixtures/catalog-0.3/catalog.json', 'utf8')).map((i) => unmarshall(i));
    const old = items.filter(isReleaseThreeTarget);
    expect(old).toHaveLength(5);
    for (const i of old) {
      expect(targetCodec.fromItem(i)).toMatchObject({ id: i.id, scan: i.scan, copies: ['default'] });
      expect(() => copyCodec.fromItem(i)).toThrow(CatalogUpgradeError);
    }
    expect(old.map((i) => i.placement).sort()).toEqual(['archived', 'assigned', 'assigned', 'confirmed', 'unassigned']);

    const t = parseReleaseThreeTarget(old.find((i) => i.placement === 'archived')!);
    const [put, update] = migrateTargetItems('cat', t, 'default', now);
    const item = unmarshall(put!.Put!.Item!);
    expect(item).toMatchObject({
      pk: `TARGET#${t.id}`,
      sk: 'COPY#default',
      gsi1pk: `PLACE#archived#${t.tapeName}`,
      placement: 'archived',
      fileNumber: t.fileNumber,
    });
    expect(copyCodec.fromItem(item)).toMatchObject({ targetId: t.id, pool: 'default', placement: 'archived', version: 1 });
    expect(put!.Put!.ConditionExpression).toBe('attribute_not_exists(pk)');
    expect(update!.Update!.ConditionExpression).toBe('version = :v AND attribute_exists(placement)');
    expect(update!.Update!.UpdateExpression).toMatch(/REMOVE placement, tapeName, fileNumber, lastError, previousFiles, gsi1pk, gsi1sk$/);
  });
});
