/**
 * `unassigned [--pool P]` (the predecessor's command): how many scanned targets, and how many
 * bytes, wait in each pool for a tape: copies their policy requires that are not assigned yet.
 */
import type { JobContext } from './context.ts';
import { assertKnownPools } from './tapes.ts';

export interface UnassignedResult {
  /** Per pool: scanned targets with an unassigned copy there, and their data. */
  pools: { pool: string; count: number; bytes: number }[];
  count: number;
  bytes: number;
  /** Imported targets whose scan has not completed (not counted above). */
  awaitingScan: number;
}

export async function unassigned(ctx: JobContext, input: { pool?: string }): Promise<UnassignedResult> {
  if (input.pool !== undefined) await assertKnownPools(ctx, [input.pool]);
  const perPool = new Map<string, { count: number; bytes: number }>();
  const waiting = new Set<string>();
  let awaitingScan = 0;
  for (const { target, copies } of await ctx.catalog.listAllTargetCopies()) {
    const open = copies.filter((c) => c.placement === 'unassigned' && target.copies.includes(c.pool) && (input.pool === undefined || c.pool === input.pool));
    if (!open.length) continue;
    if (target.scan !== 'complete') {
      awaitingScan++;
      continue;
    }
    waiting.add(target.id);
    for (const c of open) {
      const p = perPool.get(c.pool) ?? { count: 0, bytes: 0 };
      perPool.set(c.pool, { count: p.count + 1, bytes: p.bytes + (target.totalBytes ?? 0) });
    }
  }
  const pools = [...perPool].map(([pool, v]) => ({ pool, ...v })).sort((a, b) => a.pool.localeCompare(b.pool));
  return { pools, count: waiting.size, bytes: pools.reduce((n, p) => n + p.bytes, 0), awaitingScan };
}
