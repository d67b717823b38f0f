/**
 * Nested targets at import, on the catalog and queues (no agent; scans are completed by hand):
 * the excludes of new targets, and what import does about a parent already in the catalog in
 * each of its states (its scan requested again, rescanned, left as it is on tape or while
 * being written, a failed scan), each said in the answer; rescan and reconcile carry the
 * excludes; concurrent imports of a parent and its child still end with the child left out.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runJob, type JobName } from '../../src/lib/jobs/registry.ts';
import { targetId } from '../../src/lib/domain/target.ts';
import type { Placement } from '../../src/lib/domain/target.ts';
import { createTestStack, type TestStack } from '../support/test-stack.ts';
import { completeScan, snapshotCatalog } from '../support/catalog-helpers.ts';

let stack: TestStack;
beforeAll(async () => {
  stack = await createTestStack();
});
afterAll(async () => stack?.close());

const job = <N extends JobName>(name: N, input: unknown = {}) => runJob(stack.ctx, name, input);
const importList = (...paths: string[]) => job('import', { content: paths.join('\n') + '\n', source: 'list.txt' });
const id = (path: string, host = 'localhost') => targetId(host, path);
const target = async (path: string) => (await stack.ctx.catalog.getTarget(id(path)))!;
type ScanMsg = { kind: string; scanId: string; target: { path: string }; excludes?: string[] };
const scans = async () => (await stack.drain('scans')) as ScanMsg[];

/** Puts every copy of the target at `path` in `placement` (stands in for assign/archive). */
async function place(path: string, placement: Placement) {
  const tc = (await stack.ctx.catalog.getTargetCopies(id(path)))!;
  for (const c of tc.copies) {
    const onTape = placement !== 'unassigned' ? { tapeName: 'T1', fileNumber: 1 } : {};
    expect(await stack.ctx.catalog.updateCopy(c, { ...c, placement, ...onTape, version: c.version + 1 })).toBe(true);
  }
}

describe('import of nested targets', () => {
  it('a parent and its children in one list: the parent leaves them out from its first scan', async () => {
    const r = await importList('/n1/p', '/n1/p/c', '/n1/p/c/g', '/n1/pc');
    expect(r.nested).toEqual([
      { id: id('/n1/p'), host: 'localhost', path: '/n1/p', excludes: ['/n1/p/c'] },
      expect.objectContaining({ path: '/n1/p/c', excludes: ['/n1/p/c/g'] }),
    ]);
    expect(r.parents).toEqual([]);
    const sent = await scans();
    expect(sent.find((s) => s.target.path === '/n1/p')?.excludes).toEqual(['/n1/p/c']);
    expect(sent.find((s) => s.target.path === '/n1/pc')).not.toHaveProperty('excludes');
    expect((await target('/n1/p')).excludes).toEqual(['/n1/p/c']);
  });

  it('a parent imported after its children: its excludes are the children already there', async () => {
    await importList('/n2/p/b', '/n2/p/a', '/n2/p/a/deep');
    await scans();
    const r = await importList('/n2/p');
    expect(r.nested).toEqual([expect.objectContaining({ path: '/n2/p', excludes: ['/n2/p/a', '/n2/p/b'] })]);
    expect(r.parents).toEqual([]);
    expect((await scans()).map((s) => s.excludes)).toEqual([['/n2/p/a', '/n2/p/b']]);
  });

  it('a child of a parent not yet scanned: the parent scan is requested again, leaving it out', async () => {
    await importList('/n3/p');
    const [first] = await scans();
    const r = await importList('/n3/p/c');
    expect(r.parents).toEqual([expect.objectContaining({ id: id('/n3/p'), children: ['/n3/p/c'], excludes: ['/n3/p/c'], action: 'scan-requested' })]);
    expect(r.parents?.[0]?.message).toMatch(/: its scan had not finished; it was requested again, leaving out \/n3\/p\/c\.$/);
    const p = await target('/n3/p');
    expect(p).toMatchObject({ scan: 'pending', excludes: ['/n3/p/c'] });
    expect(p.scanId).not.toBe(first!.scanId);
    const sent = await scans();
    expect(sent.find((s) => s.target.path === '/n3/p')).toMatchObject({ scanId: p.scanId, excludes: ['/n3/p/c'] });
    // reconcile resends the pending scan with its excludes
    const re = await job('reconcile', { olderThanSeconds: 0 });
    expect(re.scansResent).toContain(id('/n3/p'));
    expect((await scans()).find((s) => s.target.path === '/n3/p')).toMatchObject({ scanId: p.scanId, excludes: ['/n3/p/c'] });
  });

  it('a child of a parent scanned but not yet written: the parent is rescanned now, its copies stay assigned', async () => {
    await importList('/n4/p');
    await scans();
    await completeScan(stack, id('/n4/p'), { fileCount: 3, totalBytes: 30 });
    await place('/n4/p', 'assigned');
    const r = await importList('/n4/p/c');
    expect(r.parents).toMatchObject([{ action: 'rescanned', children: ['/n4/p/c'] }]);
    expect(r.parents?.[0]?.message).toMatch(
      /was scanned but is not yet written: it was rescanned, leaving out \/n4\/p\/c; archive takes it once that scan is complete/,
    );
    expect(await target('/n4/p')).toMatchObject({ scan: 'pending', excludes: ['/n4/p/c'] });
    expect((await stack.ctx.catalog.getTargetCopies(id('/n4/p')))!.copies.map((c) => c.placement)).toEqual(['assigned']);
    expect((await scans()).find((s) => s.target.path === '/n4/p')?.excludes).toEqual(['/n4/p/c']);
  });

  it('a child of a parent already on tape: nothing of the parent changes, and import says what that means', async () => {
    await importList('/n5/p');
    await scans();
    await completeScan(stack, id('/n5/p'), { fileCount: 3, totalBytes: 30 });
    await place('/n5/p', 'archived');
    const before = await target('/n5/p');
    const r = await importList('/n5/p/c');
    expect(r.parents).toMatchObject([{ action: 'on-tape', excludes: ['/n5/p/c'] }]);
    expect(r.parents?.[0]?.message).toMatch(
      /is already on tape: its tape files \(default: T1 file 1\) keep the files of \/n5\/p\/c they hold, and where_is and restore find them there too\. Its manifest is unchanged; a later rescan of it leaves out \/n5\/p\/c, which is archived on its own\./,
    );
    expect(await target('/n5/p')).toEqual(before);
    expect((await scans()).map((s) => s.target.path)).toEqual(['/n5/p/c']);
    // The rescan a later day (after a read-back failed) computes the excludes from the catalog.
    await place('/n5/p', 'confirm_failed');
    expect((await job('rescan', { targetIds: [id('/n5/p')] })).rescanned).toHaveLength(1);
    expect(await target('/n5/p')).toMatchObject({ scan: 'pending', excludes: ['/n5/p/c'] });
    expect((await scans()).map((s) => s.excludes)).toEqual([['/n5/p/c']]);
  });

  it('a child of a parent being written, or whose scan failed: nothing changes now, and what to do is said', async () => {
    await importList('/n6/w', '/n6/f');
    await scans();
    await completeScan(stack, id('/n6/w'), { fileCount: 3, totalBytes: 30 });
    await place('/n6/w', 'writing');
    const f = await target('/n6/f');
    await stack.ctx.catalog.updateTarget(f, { ...f, scan: 'failed', scanError: 'host down', version: f.version + 1 });
    const before = await snapshotCatalog(stack);
    const r = await importList('/n6/w/c', '/n6/f/c');
    const by = Object.fromEntries((r.parents ?? []).map((p) => [p.path, p]));
    expect(by['/n6/w']).toMatchObject({ action: 'writing' });
    expect(by['/n6/w']?.message).toMatch(
      /is being written \(default: T1 file 1\) from a scan that includes \/n6\/w\/c; that tape file keeps their files\. A later rescan/,
    );
    expect(by['/n6/f']).toMatchObject({ action: 'scan-failed' });
    expect(by['/n6/f']?.message).toMatch(/its last scan failed; "rescan t-[0-9a-f]+" \(or "rescan --failed"\) scans it again, leaving out \/n6\/f\/c/);
    const after = await snapshotCatalog(stack);
    const unchanged = (items: Record<string, unknown>[]) => items.filter((i) => i.pk === `TARGET#${id('/n6/w')}` || i.pk === `TARGET#${id('/n6/f')}`);
    expect(unchanged(after)).toEqual(unchanged(before));
    await scans();
    expect((await job('rescan', { failed: true })).rescanned.map((t) => t.path)).toEqual(['/n6/f']);
    expect((await scans()).map((s) => s.excludes)).toEqual([['/n6/f/c']]);
  });

  it('a target between a parent and its child takes the child over', async () => {
    await importList('/n7/p', '/n7/p/m/c');
    await scans();
    const r = await importList('/n7/p/m');
    expect(r.nested).toEqual([expect.objectContaining({ path: '/n7/p/m', excludes: ['/n7/p/m/c'] })]);
    expect(r.parents).toMatchObject([{ path: '/n7/p', children: ['/n7/p/m'], excludes: ['/n7/p/m'], action: 'scan-requested' }]);
    expect(await target('/n7/p')).toMatchObject({ excludes: ['/n7/p/m'] });
  });

  it('concurrent imports of a parent and of its child: the parent leaves the child out either way', async () => {
    for (let i = 0; i < 3; i++) {
      const p = `/n8/run${i}`;
      await Promise.all([importList(p), importList(`${p}/child`)]);
      const t = await target(p);
      expect(t.excludes, p).toEqual([`${p}/child`]);
      const sent = await scans();
      expect(sent.filter((s) => s.target.path === p && s.scanId === t.scanId).map((s) => s.excludes)).toEqual([[`${p}/child`]]);
    }
  });

  it('refuses a target that would leave out too many nested targets, importing nothing', async () => {
    // 20 paths of about 4 kB: over the 64 KiB of paths one target may leave out.
    const long = `${'x'.repeat(200)}/`.repeat(19);
    await importList(...Array.from({ length: 20 }, (_, i) => `/n9/big/${long}c${i}`));
    await scans();
    const before = await snapshotCatalog(stack);
    await expect(importList('/n9/big')).rejects.toThrow(
      /would leave too many nested targets out of localhost:\/n9\/big \(20 targets, \d+ bytes of paths\).*Nothing was imported/,
    );
    expect(await snapshotCatalog(stack)).toEqual(before);
  });
});
