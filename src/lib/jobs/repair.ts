/**
 * `repair [--target ID...] [--pool P] [--from auto|copy|source]`: a bad copy (its tape file
 * read back bad, by confirm or scrub) or, for named targets, a missing one (unassigned) is
 * assigned to the online tape of its pool, to be written again by `archive`: from another
 * confirmed copy of the same scan (the agent restores it into its staging directory, every
 * checksum verified, and writes from there), or from the source, checked against the manifest
 * while streaming as every write is. The new file then goes through `confirm` like any other.
 * A scrub that fails starts this for the copy it failed (results/apply-result.ts).
 */
import { startedAgain, type Copy, type RepairSource, type TargetCopies } from '../domain/copies.ts';
import { READABLE_TAPE_STATES } from '../domain/tape.ts';
import { approximateScanReason } from '../domain/target.ts';
import { NotFoundError, UsageError } from '../errors.ts';
import { assertNoVerifyRunning } from './assign.ts';
import type { JobContext } from './context.ts';
import { isWritable } from './tapes.ts';

export type RepairFrom = 'auto' | 'copy' | 'source';

export interface RepairInput {
  targetIds?: string[];
  pool?: string;
  from?: RepairFrom;
  /** The scrub whose failure starts this repair (its own verify is not finished yet). Not a job option. */
  afterVerifyTask?: string;
}

export interface RepairResult {
  assigned: { id: string; pool: string; tape: string; badFile?: string; from: 'copy' | 'source'; fromFile?: string }[];
  refused: { id: string; pool: string; reason: string }[];
  message: string;
}

export async function repair(ctx: JobContext, input: RepairInput = {}): Promise<RepairResult> {
  const from = input.from ?? 'auto';
  const all = input.targetIds?.length ? await named(ctx, input.targetIds) : await ctx.catalog.listAllTargetCopies();
  const wanted = all.flatMap((tc) =>
    tc.copies
      .filter((c) => (input.pool === undefined || c.pool === input.pool) && tc.target.copies.includes(c.pool))
      .filter((c) => c.placement === 'confirm_failed' || (input.targetIds?.length && c.placement === 'unassigned'))
      .map((c) => ({ tc, copy: c })),
  );
  const online = new Map((await ctx.catalog.listOnline()).map((o) => [o.pool, o.tapeName]));
  const result: RepairResult = { assigned: [], refused: [], message: '' };
  for (const { tc, copy } of wanted) {
    const refuse = (reason: string) => result.refused.push({ id: tc.target.id, pool: copy.pool, reason });
    const onlineName = online.get(copy.pool);
    const tape = onlineName ? await ctx.catalog.getTape(onlineName) : undefined;
    if (!tape || !isWritable(tape)) {
      refuse(`pool ${copy.pool} has no writable online tape; open one ("open_tape NAME --pool ${copy.pool}") and run repair again`);
      continue;
    }
    if (tape.name === copy.tapeName) {
      refuse(`the online tape ${tape.name} is the tape that read back bad; open another tape of pool ${copy.pool} for the new copy and run repair again`);
      continue;
    }
    try {
      await assertNoVerifyRunning(ctx, tc.target, copy, input.afterVerifyTask);
    } catch (e) {
      refuse((e as Error).message);
      continue;
    }
    const source = from === 'source' ? undefined : await otherCopy(ctx, tc, copy);
    if (from === 'copy' && !source) {
      const legacy = tc.copies.find((c) => c.legacy && c.placement === 'confirmed');
      refuse(
        legacy
          ? `its tapetown copy on ${legacy.tapeName} is not confirmed here yet (md5s only): "confirm ${legacy.fileNumber} --tape ${legacy.tapeName}" first, then repair again`
          : `no other confirmed copy of its current scan on a readable tape; repair it from the source ("--from source") if the source is unchanged`,
      );
      continue;
    }
    const approximate = approximateScanReason(tc.target);
    if (!source && approximate) {
      refuse(`not from the source: ${approximate}`);
      continue;
    }
    if (!source && tc.target.scan !== 'complete') {
      refuse(`its scan is ${tc.target.scan}, and no other confirmed copy can be read; "rescan ${tc.target.id}" first`);
      continue;
    }
    const now = ctx.now().toISOString();
    const next: Copy = { ...startedAgain(copy, now, tape.name), ...(source ? { repairFrom: source } : {}) };
    if (!(await ctx.catalog.assignCopy(copy, next))) {
      refuse('changed by another job at the same time; run repair again');
      continue;
    }
    result.assigned.push({
      id: tc.target.id,
      pool: copy.pool,
      tape: tape.name,
      ...(copy.placement === 'confirm_failed' ? { badFile: `${copy.tapeName}/${copy.fileNumber}` } : {}),
      from: source ? 'copy' : 'source',
      ...(source ? { fromFile: `${source.tapeName}/${source.fileNumber}` } : {}),
    });
  }
  const pools = [...new Set(result.assigned.map((a) => a.pool))];
  result.message = result.assigned.length
    ? `${result.assigned.length} copy(ies) will be written again; start the writes with ${pools.map((p) => `"archive --pool ${p}"`).join(', ')}, then confirm them.${result.refused.length ? ` ${result.refused.length} refused (see refused).` : ''}`
    : wanted.length
      ? `nothing was repaired: ${result.refused.length} copy(ies) refused (see refused).`
      : 'no bad copies to repair.';
  return result;
}

async function named(ctx: JobContext, ids: string[]): Promise<TargetCopies[]> {
  const out: TargetCopies[] = [];
  for (const id of ids) {
    const tc = await ctx.catalog.getTargetCopies(id);
    if (!tc) throw new NotFoundError(`no target ${id}; list targets with "targets". Nothing was repaired.`);
    if (!tc.copies.some((c) => c.placement === 'confirm_failed' || c.placement === 'unassigned'))
      throw new UsageError(
        `target ${id} has no bad or missing copy (${tc.copies.map((c) => `${c.pool}: ${c.placement}`).join(', ')}); nothing to repair. Nothing was repaired.`,
      );
    out.push(tc);
  }
  return out;
}

/**
 * The copy a repair was to be written from, if it can still be read: its tape file confirmed
 * (a scrub may have found it bad since) on a readable tape. Otherwise the write reads the source.
 */
export async function usableRepairSource(ctx: JobContext, from: RepairSource | undefined): Promise<RepairSource | undefined> {
  if (!from) return undefined;
  const [file, tape] = await Promise.all([ctx.catalog.getTapeFile(from.tapeName, from.fileNumber), ctx.catalog.getTape(from.tapeName)]);
  return file?.state === 'confirmed' && file.scanId === from.scanId && tape && READABLE_TAPE_STATES.includes(tape.state) ? from : undefined;
}

/** A confirmed copy in another pool whose tape file holds the target's current scan, on a tape that can be read. */
async function otherCopy(ctx: JobContext, tc: TargetCopies, bad: Copy): Promise<RepairSource | undefined> {
  // An adopted copy not yet confirmed here has only md5s: nothing a staged restore could be checked against.
  for (const c of tc.copies.filter((x) => x.pool !== bad.pool && x.placement === 'confirmed' && !x.legacy && x.tapeName && x.fileNumber !== undefined)) {
    const [file, tape] = await Promise.all([ctx.catalog.getTapeFile(c.tapeName!, c.fileNumber!), ctx.catalog.getTape(c.tapeName!)]);
    if (!file || !tape || file.state !== 'confirmed' || !READABLE_TAPE_STATES.includes(tape.state)) continue;
    if (!file.scanId || file.scanId !== tc.target.scanId || file.manifestPages === undefined) continue;
    return { tapeName: file.tapeName, fileNumber: file.fileNumber, scanId: file.scanId, manifestPages: file.manifestPages };
  }
  return undefined;
}
