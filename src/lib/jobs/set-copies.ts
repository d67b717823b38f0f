/**
 * `set_copies TARGET...|--all-imported POOLS [--force]`: changes the copy policy of targets.
 * Raising it creates the missing copies (unassigned, to be assigned and archived in their
 * pools); lowering it releases copies of dropped pools that are assigned but not written, and
 * keeps those with data on tape as extra copies: never deleted, and only with --force.
 * Every target is checked before any is changed.
 */
import { ConditionFailed } from '../catalog/catalog.ts';
import { newCopyItem, targetUpdateItem, copyUpdateItem } from '../catalog/requests.ts';
import { parseCopyPolicy, planPolicyChange, type Copy, type TargetCopies } from '../domain/copies.ts';
import { ConflictError, NotFoundError, UsageError, ValidationError } from '../errors.ts';
import type { JobContext } from './context.ts';
import { assertKnownPools } from './tapes.ts';

export interface SetCopiesInput {
  pools: string[];
  targetIds?: string[];
  allImported?: boolean;
  force?: boolean;
}

export interface SetCopiesResult {
  policy: string[];
  changed: { id: string; from: string[]; created: string[]; released: string[]; keptAsExtra: string[] }[];
  unchanged: number;
  message: string;
}

export async function setCopies(ctx: JobContext, input: SetCopiesInput): Promise<SetCopiesResult> {
  const parsed = parseCopyPolicy(input.pools);
  if ('error' in parsed) throw new ValidationError(`${parsed.error} Nothing was changed.`);
  const policy = [...parsed.policy];
  await assertKnownPools(ctx, policy);
  if (!!input.targetIds?.length === !!input.allImported) {
    throw new UsageError('name the targets whose copy policy changes, or use --all-imported for every target (not both). Nothing was changed.');
  }
  let targets: TargetCopies[];
  if (input.targetIds?.length) {
    targets = [];
    for (const id of input.targetIds) {
      const tc = await ctx.catalog.getTargetCopies(id);
      if (!tc) throw new NotFoundError(`target ${id} does not exist; list targets with "targets". Nothing was changed.`);
      targets.push(tc);
    }
  } else {
    targets = await ctx.catalog.listAllTargetCopies();
  }
  const refusals = targets.flatMap((tc) => {
    const plan = planPolicyChange(tc.target.copies, policy, tc.copies, input.force);
    return 'error' in plan ? [`${tc.target.id} (${tc.target.path}): ${plan.error}`] : [];
  });
  if (refusals.length) {
    throw new ValidationError(
      `${refusals.length} target(s) refused, nothing was changed:\n${refusals.slice(0, 10).join('\n')}${refusals.length > 10 ? '\n...' : ''}`,
    );
  }
  const result: SetCopiesResult = { policy, changed: [], unchanged: 0, message: '' };
  for (const tc of targets) {
    let change: SetCopiesResult['changed'][number] | undefined;
    try {
      change = await applyPolicy(ctx, tc, policy, !!input.force);
    } catch (e) {
      if (!(e instanceof ConflictError) || !result.changed.length) throw e;
      throw new ConflictError(`${e.message} ${result.changed.length} target(s) before it already have the new policy; the rest do not yet.`);
    }
    if (change) result.changed.push(change);
    else result.unchanged++;
  }
  result.message = `copy policy ${policy.join(', ')}: ${result.changed.length} target(s) changed, ${result.unchanged} already had it.`;
  return result;
}

/** One target's change in one transaction (re-read and retried if it changed meanwhile); undefined when it already had the policy. */
async function applyPolicy(ctx: JobContext, tc: TargetCopies, policy: string[], force: boolean): Promise<SetCopiesResult['changed'][number] | undefined> {
  for (let attempt = 1; ; attempt++) {
    const { target, copies } = tc;
    const plan = planPolicyChange(target.copies, policy, copies, force);
    if ('error' in plan) throw new ConflictError(`target ${target.id} changed while its policy was set: ${plan.error}`);
    if (target.copies.join(',') === policy.join(',') && !plan.create.length && !plan.release.length) return undefined;
    const now = ctx.now().toISOString();
    const table = ctx.catalog.tableName;
    const created: Copy[] = plan.create.map((pool) => ({
      targetId: target.id,
      pool,
      placement: 'unassigned',
      importedAt: target.importedAt,
      updatedAt: now,
      version: 1,
    }));
    const released = copies.filter((c) => plan.release.includes(c.pool));
    try {
      await ctx.catalog.transact([
        targetUpdateItem(table, target, { ...target, copies: policy, updatedAt: now, version: target.version + 1 }),
        ...created.map((c) => newCopyItem(table, c)),
        ...released.map((c) => copyUpdateItem(table, c, { ...c, placement: 'unassigned', tapeName: undefined, updatedAt: now, version: c.version + 1 })),
      ]);
      return { id: target.id, from: target.copies, created: plan.create, released: plan.release, keptAsExtra: plan.keptAsExtra };
    } catch (e) {
      if (!(e instanceof ConditionFailed) || attempt >= 3) {
        if (e instanceof ConditionFailed)
          throw new ConflictError(`target ${target.id} kept changing while its policy was set; run set_copies again (it is safe to repeat).`);
        throw e;
      }
      tc = (await ctx.catalog.getTargetCopies(target.id)) ?? tc;
    }
  }
}
