/** Scrub planning and risk assessment (issue 13): pure, from catalog items. */
import { describe, expect, it } from 'vitest';
import { copyCodec, tapeCodec } from '../../src/lib/catalog/items.ts';
import type { Copy, TargetCopies } from '../../src/lib/domain/copies.ts';
import { assessRisk } from '../../src/lib/domain/risk.ts';
import { planScrub, scrubBudgetBytes, type ScrubCandidate } from '../../src/lib/domain/scrub.ts';
import type { Tape } from '../../src/lib/domain/tape.ts';

const day = (d: number) => new Date(Date.UTC(2026, 0, d)).toISOString();
const file = (tapeName: string, fileNumber: number, bytes: number, verifiedAt?: string): ScrubCandidate => ({
  tapeName,
  fileNumber,
  targetId: `${tapeName}-${fileNumber}`,
  bytes,
  archivedAt: day(1),
  ...(verifiedAt ? { verifiedAt } : {}),
});

describe('planScrub', () => {
  const files = [file('b', 2, 10, day(5)), file('a', 1, 10, day(9)), file('b', 1, 10, day(7)), file('a', 2, 10, day(3)), file('c', 1, 10)];

  it('takes the tape whose oldest verification is oldest first, each tape in file-number order', () => {
    const plan = planScrub(files, { budgetBytes: 1000, maxFiles: 100 });
    // c was never verified (written on day 1), then a (day 3), then b (day 5).
    expect(plan.files.map((f) => `${f.tapeName}/${f.fileNumber}`)).toEqual(['c/1', 'a/1', 'a/2', 'b/1', 'b/2']);
    expect(plan).toMatchObject({ bytes: 50, left: 0 });
  });

  it('stops at the byte budget or the file limit, and always takes one file', () => {
    expect(planScrub(files, { budgetBytes: 25, maxFiles: 100 })).toMatchObject({ bytes: 20, left: 3 });
    expect(planScrub(files, { budgetBytes: 1000, maxFiles: 1 }).files.map((f) => f.tapeName)).toEqual(['c']);
    expect(planScrub([file('a', 1, 5_000)], { budgetBytes: 1, maxFiles: 10 }).files).toHaveLength(1);
  });

  it('skips files verified after notAfter', () => {
    const plan = planScrub(files, { budgetBytes: 1000, maxFiles: 100, notAfter: day(5) });
    expect(plan.files.map((f) => `${f.tapeName}/${f.fileNumber}`)).toEqual(['c/1', 'a/2', 'b/2']);
    expect(plan.left).toBe(2);
  });

  it('turns drive-hours into bytes', () => {
    expect(scrubBudgetBytes(4, 300)).toBe(4 * 3600 * 300e6);
  });
});

const copy = (targetId: string, pool: string, placement: Copy['placement'], extra: Partial<Copy> = {}): Copy => ({
  targetId,
  pool,
  placement,
  importedAt: day(1),
  updatedAt: day(1),
  version: 1,
  ...extra,
});
const tc = (id: string, copies: Copy[]): TargetCopies => ({
  target: { id, host: 'h', path: `/data/${id}`, scan: 'complete', copies: ['primary', 'offsite'], importedAt: day(1), updatedAt: day(1), version: 1 },
  copies,
});
const tape = (name: string, state: Tape['state'] = 'full'): Tape => ({
  name,
  barcode: name,
  pool: 'primary',
  capacityBytes: 1e9,
  state,
  online: false,
  bytesUsed: 0,
  nextFileNumber: 3,
  filesWritten: 2,
  filesConfirmed: 2,
  createdAt: day(1),
  updatedAt: day(1),
});

describe('assessRisk', () => {
  const on = (t: string, n: number, at?: string) => ({ tapeName: t, fileNumber: n, archivedAt: day(1), ...(at ? { verifiedAt: at } : {}) });
  const tcs = [
    tc('safe', [copy('safe', 'primary', 'confirmed', on('p1', 1, day(20))), copy('safe', 'offsite', 'confirmed', on('o1', 1, day(2)))]),
    tc('bad', [
      copy('bad', 'primary', 'confirm_failed', {
        ...on('p1', 2),
        lastError: 'checksum mismatch',
        lastVerify: { at: day(21), ok: false, taskId: 'x', scrub: true },
      }),
      copy('bad', 'offsite', 'confirmed', on('o1', 2, day(20))),
    ]),
    tc('unconfirmed', [copy('unconfirmed', 'primary', 'confirmed', on('p1', 3, day(20))), copy('unconfirmed', 'offsite', 'archived', on('o1', 3))]),
    tc('new', [copy('new', 'primary', 'unassigned'), copy('new', 'offsite', 'unassigned')]),
  ];

  it('lists the targets short of copies, a bad copy first, with the bad copy and its error', () => {
    const r = assessRisk(tcs, [tape('p1'), tape('o1'), tape('x', 'disabled')], { overdueBefore: day(10), limit: 100 });
    expect(r.targets.map((t) => [t.id, t.reason, t.confirmed, t.required])).toEqual([
      ['bad', 'bad-copy', 1, 2],
      ['unconfirmed', 'unconfirmed', 1, 2],
      ['new', 'not-written', 0, 2],
    ]);
    expect(r.targets[0]!.bad).toEqual([{ pool: 'primary', tape: 'p1', fileNumber: 2, error: 'checksum mismatch', at: day(21) }]);
    expect(r.tapesWithErrors.map((t) => [t.name, t.badFiles])).toEqual([
      ['p1', 1],
      ['x', 0],
    ]);
    expect(r.overdueScrub.map((o) => `${o.tape}/${o.fileNumber}`)).toEqual(['o1/1']);
    expect(r.oldestUnverified.map((o) => `${o.tape}/${o.fileNumber}`)).toEqual(['o1/3']);
    expect(r.counts).toEqual({ targets: 3, badCopies: 1, overdueScrub: 1, tapesWithErrors: 2, unverified: 1 });
  });

  it('bounds every list by limit, not the counts', () => {
    const r = assessRisk(tcs, [], { overdueBefore: day(30), limit: 1 });
    expect(r.targets).toHaveLength(1);
    expect(r.overdueScrub).toHaveLength(1);
    expect(r.counts.targets).toBe(3);
    expect(r.counts.overdueScrub).toBe(4);
  });
});

describe('a tape item of the previous release', () => {
  it('reads without snapshots or snapshotInFlight, and round-trips one that has them', () => {
    // As release 0.8 (before catalog snapshots on tape) wrote a closed tape.
    const old = { pk: 'TAPE#p1', sk: 'TAPE', type: 'tape', gsi1pk: 'TAPES', gsi1sk: 'p1', ...tape('p1', 'closed') };
    const t = tapeCodec.fromItem(old);
    expect(t.snapshots).toBeUndefined();
    expect(t.snapshotInFlight).toBeUndefined();
    expect(t.nextFileNumber).toBe(3);
    const snap = { fileNumber: 3, taskId: 'x', at: day(4), bytes: 10, sha256: 'ab', items: { catalog: 5, manifests: 2 } };
    expect(tapeCodec.fromItem(tapeCodec.toItem({ ...t, snapshots: [snap], nextFileNumber: 4 })).snapshots).toEqual([snap]);
  });
});

describe('a copy item of the previous release', () => {
  it('reads without lastVerify and repairFrom, and counts as verified when confirm last read it', () => {
    // As release 0.4 (before scrub) wrote it.
    const item = {
      pk: 'TARGET#t1',
      sk: 'COPY#primary',
      type: 'copy',
      gsi1pk: 'PLACE#confirmed#p1',
      gsi1sk: `${day(1)}#t1`,
      targetId: 't1',
      pool: 'primary',
      placement: 'confirmed',
      tapeName: 'p1',
      fileNumber: 1,
      bytes: 100,
      archivedAt: day(1),
      verifiedAt: day(2),
      importedAt: day(1),
      updatedAt: day(2),
      version: 3,
    };
    const c = copyCodec.fromItem(item);
    expect(c.lastVerify).toBeUndefined();
    expect(c.repairFrom).toBeUndefined();
    const r = assessRisk([tc('t1', [c, copy('t1', 'offsite', 'confirmed', { tapeName: 'o1', fileNumber: 1, verifiedAt: day(9) })])], [], {
      overdueBefore: day(5),
      limit: 10,
    });
    expect(r.targets).toEqual([]);
    expect(r.overdueScrub.map((o) => [o.targetId, o.pool, o.lastVerified])).toEqual([['t1', 'primary', day(2)]]);
  });
});
