/**
 * `migrate`: brings a catalog written by release 0.3 to the copies model (catalog/upgrade.ts).
 * Each target's placement becomes a copy in the pool of its tape (the default pool when it has
 * none); the one online pointer moves to its tape's pool. Idempotent and safe beside other
 * jobs: each target moves in one conditional transaction, re-read and retried if it changed.
 * Until it has run, jobs that read copies refuse with CATALOG_UPGRADE_NEEDED.
 * It also builds the name index (`where_is`) of every manifest stored before release 0.5:
 * each target's current scan and the scans its tape files hold.
 */
import { ConditionFailed } from '../catalog/catalog.ts';
import { isReleaseThreeTarget } from '../catalog/items.ts';
import { migrateOnlineItems, migrateTargetItems, parseReleaseThreeTarget } from '../catalog/upgrade.ts';
import { DEFAULT_POOL } from '../domain/copies.ts';
import { ConflictError, errorMessage } from '../errors.ts';
import type { JobContext } from './context.ts';

export interface MigrateResult {
  migrated: number;
  alreadyUpgraded: number;
  /** The release-0.3 online pointer moved to its tape's pool (when that is not the default pool). */
  onlineMoved?: { tape: string; pool: string };
  /** Manifests (target scans) whose name index was built now. */
  namesIndexed: number;
  /** Manifests whose index could not be built (a page missing or unreadable): where_is does not find their files. */
  namesNotIndexed?: { targetId: string; scanId: string; error: string }[];
  message: string;
}

export async function migrate(ctx: JobContext): Promise<MigrateResult> {
  const items = await ctx.catalog.scanTargets();
  const tapes = new Map((await ctx.catalog.listTapes()).map((t) => [t.name, t]));
  // A target not on a tape goes to the pool all the tapes are in (release 0.3 allowed one
  // tape pool per catalog in practice), or the default pool when they are in several.
  const pools = new Set([...tapes.values()].map((t) => t.pool));
  const fallback = pools.size === 1 ? [...pools][0]! : DEFAULT_POOL;
  const poolOf = (tapeName: string | undefined) => (tapeName ? tapes.get(tapeName)?.pool : undefined) ?? fallback;
  const table = ctx.catalog.tableName;
  let migrated = 0;
  for (const item of items.filter(isReleaseThreeTarget)) {
    let current: Record<string, unknown> | undefined = item;
    for (let attempt = 1; current && isReleaseThreeTarget(current); attempt++) {
      const t = parseReleaseThreeTarget(current);
      const file = t.tapeName && t.fileNumber !== undefined ? await ctx.catalog.getTapeFile(t.tapeName, t.fileNumber) : undefined;
      try {
        await ctx.catalog.transact(migrateTargetItems(table, t, poolOf(t.tapeName), ctx.now().toISOString(), file?.targetId === t.id ? file : undefined));
        migrated++;
        break;
      } catch (e) {
        if (!(e instanceof ConditionFailed)) throw e;
        if (attempt >= 5) throw new ConflictError(`target ${t.id} kept changing while it was migrated; run migrate again (it is safe to repeat).`);
        current = await ctx.catalog.rawTarget(t.id);
      }
    }
  }
  const names = await indexNames(ctx);
  const result: MigrateResult = {
    migrated,
    alreadyUpgraded: items.filter((i) => i.type === 'target').length - migrated,
    namesIndexed: names.built,
    ...(names.failed.length ? { namesNotIndexed: names.failed } : {}),
    message: '',
  };
  const pointer = await ctx.catalog.rawOnlinePointer();
  if (pointer && typeof pointer.pool !== 'string' && typeof pointer.tapeName === 'string') {
    const pool = tapes.get(pointer.tapeName)?.pool ?? DEFAULT_POOL;
    try {
      await ctx.catalog.transact(migrateOnlineItems(table, pointer.tapeName, pool, ctx.now().toISOString()));
    } catch (e) {
      if (!(e instanceof ConditionFailed)) throw e;
      throw new ConflictError(
        `the online pointer of release 0.3 (tape ${pointer.tapeName}, pool ${pool}) could not be upgraded: it changed meanwhile, or pool ${pool} already has an online tape. Check "tapes", then run migrate again (it is safe to repeat).`,
      );
    }
    if (pool !== DEFAULT_POOL) result.onlineMoved = { tape: pointer.tapeName, pool };
  }
  const built = result.namesIndexed ? `; the name index of ${result.namesIndexed} manifest(s) was built (where_is finds their files now)` : '';
  const notBuilt = names.failed.length
    ? ` The name index of ${names.failed.length} manifest(s) could not be built (${names.failed
        .slice(0, 3)
        .map((f) => `${f.targetId}: ${f.error}`)
        .join('; ')}): where_is does not find their files; "rescan" those targets.`
    : '';
  result.message =
    (migrated
      ? `catalog upgraded: ${migrated} target(s) now keep their placement in a copy item; ${result.alreadyUpgraded} were already upgraded${built}.`
      : result.namesIndexed
        ? `catalog upgraded${built}.`
        : `catalog already upgraded (${result.alreadyUpgraded} target(s)); nothing was changed.`) + notBuilt;
  return result;
}

/** Builds the missing name index of every manifest a target uses (current scan, tape files). */
async function indexNames(ctx: JobContext): Promise<{ built: number; failed: { targetId: string; scanId: string; error: string }[] }> {
  let built = 0;
  const failed: { targetId: string; scanId: string; error: string }[] = [];
  for (const { target, copies } of await ctx.catalog.listAllTargetCopies()) {
    const scans = new Map<string, number>();
    if (target.scan === 'complete' && target.scanId && target.manifestPages) scans.set(target.scanId, target.manifestPages);
    for (const c of copies) {
      if (!c.tapeName || c.fileNumber === undefined) continue;
      const f = await ctx.catalog.getTapeFile(c.tapeName, c.fileNumber);
      if (f?.targetId === target.id && f.scanId && f.manifestPages) scans.set(f.scanId, f.manifestPages);
    }
    for (const [scanId, pages] of scans) {
      if (await ctx.names.isIndexed(target.id, scanId)) continue;
      try {
        await ctx.manifests.writeNameIndex(ctx.names, target.id, scanId, pages);
        built++;
      } catch (e) {
        // The copies are upgraded either way; a manifest that cannot be read is reported, not fatal.
        if (!/manifest of .* (is missing page|has \d+ pages)/.test(errorMessage(e))) throw e;
        failed.push({ targetId: target.id, scanId, error: errorMessage(e) });
      }
    }
  }
  return { built, failed };
}
