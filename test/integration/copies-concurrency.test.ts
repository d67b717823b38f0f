/**
 * Copies under concurrency, on DynamoDB Local through the real jobs and the real report
 * application: parallel archive calls for two pools (and for both at once), every report
 * delivered twice at the same moment, end of medium on one pool's tape. After every round and
 * at the end: no two copies of a target on one tape, file numbers sequential per tape, no copy
 * lost or doubled, and `safe` only when every required copy is confirmed.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runJob, type JobName } from '../../src/lib/jobs/registry.ts';
import { applyResult } from '../../src/lib/results/apply-result.ts';
import { copiesStatus } from '../../src/lib/domain/copies.ts';
import { report, type ReportBody } from '../../src/lib/protocol/build-tasks.ts';
import { completeScan } from '../support/catalog-helpers.ts';
import { createTestStack, type TestStack } from '../support/test-stack.ts';

let stack: TestStack;
beforeAll(async () => {
  stack = await createTestStack();
});
afterAll(async () => stack?.close());
const job = <N extends JobName>(name: N, input: unknown = {}) => runJob(stack.ctx, name, input);

/** A report applied twice at the same moment (a duplicate delivery): exactly one application counts. */
async function deliverTwice(body: ReportBody): Promise<void> {
  const r = report(body, new Date().toISOString());
  const outcomes = await Promise.all([applyResult(stack.ctx, r), applyResult(stack.ctx, r)]);
  expect(outcomes.filter((o) => o.applied)).toHaveLength(1);
}

/** The invariants, read from the catalog as it stands. */
async function checkInvariants(): Promise<void> {
  const tapes = new Map((await stack.ctx.catalog.listTapes()).map((t) => [t.name, t]));
  for (const { target, copies } of await stack.ctx.catalog.listAllTargetCopies()) {
    expect(copies.map((c) => c.pool).sort(), target.id).toEqual(['offsite', 'primary']);
    const onTapes = copies.filter((c) => c.tapeName).map((c) => c.tapeName!);
    expect(new Set(onTapes).size, `${target.id}: two copies on one tape`).toBe(onTapes.length);
    for (const c of copies) if (c.tapeName) expect(tapes.get(c.tapeName)?.pool, `${target.id} copy in ${c.pool}`).toBe(c.pool);
    const safe = copiesStatus(target.copies, copies).safe;
    expect(safe).toBe(copies.every((c) => c.placement === 'confirmed'));
  }
  for (const tape of tapes.values()) {
    const files = await stack.ctx.catalog.listTapeFiles(tape.name);
    expect(
      files.map((f) => f.fileNumber),
      tape.name,
    ).toEqual(files.map((_, i) => i + 1));
    expect(tape.nextFileNumber).toBe(files.length + 1);
    expect(new Set(files.map((f) => f.targetId)).size, `${tape.name}: a target twice`).toBe(files.length);
  }
}

describe('two pools archived at the same time', () => {
  it('keep every invariant through parallel archives, duplicate reports and end of medium on one pool', async () => {
    await job('open_tape', { new: true, name: 'p1', pool: 'primary', capacity: '1G' });
    await job('open_tape', { new: true, name: 'o1', pool: 'offsite', capacity: '1G' });
    const paths = Array.from({ length: 6 }, (_, i) => `/data/copy-${i}`);
    expect((await job('import', { content: paths.join('\n'), source: 'list', copies: ['primary', 'offsite'] })).copies).toEqual(['primary', 'offsite']);
    for (const t of (await job('targets', {})).targets) await completeScan(stack, t.id, { fileCount: 1, totalBytes: 100 });
    const assigned = await job('assign', {});
    expect([assigned.pool, ...(assigned.otherPools ?? []).map((a) => a.pool)].sort()).toEqual(['offsite', 'primary']);
    expect([assigned, ...(assigned.otherPools ?? [])].every((a) => a.assigned.length === 6)).toBe(true);
    await checkInvariants();

    let endOfMedium = false;
    for (let round = 0; round < 40; round++) {
      const outcomes = await Promise.allSettled([
        job('archive', { pool: 'primary' }),
        job('archive', { pool: 'primary' }),
        job('archive', { pool: 'offsite' }),
        job('archive', { pool: 'offsite' }),
        job('archive', {}),
      ]);
      const started = outcomes
        .flatMap((o) => (o.status === 'fulfilled' ? [o.value, ...(o.value.otherPools ?? [])] : []))
        .flatMap((r) => (r.status === 'started' ? [r] : []));
      // At most one write in flight per tape, whoever won.
      const perTape = new Map<string, number>();
      for (const s of started) perTape.set(s.tape, (perTape.get(s.tape) ?? 0) + 1);
      for (const [tape, n] of perTape) expect(n, `writes started on ${tape} in one round`).toBe(1);
      const allIdle = outcomes.every((o) => o.status === 'fulfilled' && [o.value, ...(o.value.otherPools ?? [])].every((r) => r.status === 'idle'));
      if (allIdle) break;
      await checkInvariants();
      for (const s of started) {
        const base = {
          taskId: s.taskId,
          kind: 'write-result' as const,
          tapeName: s.tape,
          fileNumber: s.fileNumber,
          targetId: s.targetId,
        };
        if (s.tape === 'p1' && s.fileNumber === 3 && !endOfMedium) {
          // p1 ends in its third file: the copy goes back to assigned, p1 is full, then replaced by p2.
          endOfMedium = true;
          await deliverTwice({ ...base, outcome: 'end-of-medium', bytesAtEnd: 1000 });
          expect((await stack.ctx.catalog.getTape('p1'))?.state).toBe('full');
          const closed = await job('close_tape', { tape: 'p1', yes: true });
          expect(closed.status === 'closed' && closed.released.length).toBe(4);
          await job('open_tape', { new: true, name: 'p2', pool: 'primary', capacity: '1G' });
          expect((await job('assign', { tape: 'p2' })).assigned).toHaveLength(4);
        } else {
          await deliverTwice({ ...base, outcome: 'archived', bytes: 100, fileCount: 1, digest: 'x' });
        }
      }
      await checkInvariants();
    }
    expect(endOfMedium).toBe(true);
    expect((await job('targets', { state: 'at-risk' })).targets).toHaveLength(6);

    // Confirm every file of every open tape, each verify report delivered twice; p1 (closed) too, by name.
    for (const tape of ['p1', 'p2', 'o1']) {
      for (;;) {
        const r = await job('confirm', { tape });
        if (r.status !== 'requested') break;
        await deliverTwice({
          taskId: r.taskId,
          kind: 'verify-result',
          tapeName: tape,
          fileNumber: r.fileNumber,
          targetId: r.targetId,
          updateCatalog: true,
          outcome: 'confirmed',
          bytes: 100,
          fileCount: 1,
          bad: [],
          badCount: 0,
        });
        await checkInvariants();
      }
    }
    const rows = (await job('targets', {})).targets;
    expect(rows.every((t) => t.safe && t.copiesStatus === 'safe')).toBe(true);
    expect((await job('targets', { state: 'safe' })).targets).toHaveLength(6);
    const files = await Promise.all(['p1', 'p2', 'o1'].map((t) => stack.ctx.catalog.listTapeFiles(t)));
    expect(files.map((f) => f.length)).toEqual([2, 4, 6]);
    expect((await job('status', {})).copies).toEqual({ safe: 6, atRisk: 0, bad: 0, overdueScrub: 0 });
  });
});
