/**
 * Nested targets at import (the rule: domain/nesting.ts). A new target leaves out the targets
 * directly inside it from its first scan. A target already in the catalog that a new target
 * lies directly inside must leave it out from its next scan on; its `excludes` always describe
 * its current scan (what its manifest, and every tape file written from it, leaves out), so
 * they change only together with a new scan:
 *  - its scan has not run yet (or is running): it is requested again, leaving the new one out;
 *  - it is scanned, and some copy is still to be written: it is rescanned now (as `rescan`
 *    does; copies on tape keep their files), and archive takes it once that scan is complete;
 *  - every copy is on tape, or one is being written, or its scan failed: nothing changes now.
 *    Its tape files keep what they hold of the new target (where_is and restore find it there
 *    too); its next rescan (rescan.ts, which computes the excludes from the catalog) leaves it out.
 */
import { KEEPS_FILE_PLACEMENTS, targetId, type Target } from '../domain/target.ts';
import { MAX_EXCLUDE_BYTES, MAX_EXCLUDES, parentAction, planNesting, sameExcludes, type Located, type ParentAction } from '../domain/nesting.ts';
import type { TargetCopies } from '../domain/copies.ts';
import { CatalogUpgradeError, ConflictError, errorMessage, ValidationError } from '../errors.ts';
import { scanTask } from '../protocol/build-tasks.ts';
import type { JobContext } from './context.ts';
import { prepareRescan, startRescan } from './rescan.ts';

/** A target already in the catalog that new targets lie directly inside, and what the import did about it. */
export interface NestedParent extends Located {
  id: string;
  /** The new targets directly inside it. */
  children: string[];
  /** What its next scan leaves out (all the targets directly inside it). */
  excludes: string[];
  action: ParentAction;
  message: string;
}

/**
 * Before anything is created: the excludes of each new entry (the targets, known or new,
 * directly inside it), by `host\0path`. Refused (nothing imported) when a target would leave
 * out more nested targets than a scan task and a target item can carry.
 */
export function excludesAtImport(known: readonly Located[], entries: readonly Located[]): Map<string, string[]> {
  const plan = planNesting(known, entries);
  if (plan.tooLarge.length) {
    const shown = plan.tooLarge
      .slice(0, 5)
      .map((t) => `${t.host}:${t.path} (${t.count} targets, ${t.bytes} bytes of paths)`)
      .join(', ');
    throw new ValidationError(
      `importing these targets would leave too many nested targets out of ${shown}: at most ${MAX_EXCLUDES} paths and ${MAX_EXCLUDE_BYTES} bytes of them fit one target. Nothing was imported. Import fewer targets directly inside it (e.g. group them under intermediate targets), or leave it out.`,
    );
  }
  return new Map(plan.added.map((a) => [`${a.host}\0${a.path}`, a.excludes]));
}

const ATTEMPTS = 5;

/**
 * After the new targets were created: reads the catalog again (so a target another import
 * created meanwhile is seen), gives each parent its new excludes as above, and requests again
 * the scan of a new target whose excludes changed meanwhile.
 */
export async function settleNesting(ctx: JobContext, created: Target[]): Promise<NestedParent[]> {
  if (!created.length) return [];
  const ids = new Set(created.map((t) => t.id));
  const plan = planNesting(
    (await ctx.catalog.listAllTargets()).filter((t) => !ids.has(t.id)),
    created,
  );
  for (const a of plan.added) {
    const t = created.find((c) => c.host === a.host && c.path === a.path);
    if (t && !sameExcludes(t.excludes, a.excludes)) await settle(ctx, t.id, a.excludes);
  }
  const out: NestedParent[] = [];
  for (const p of plan.parents) {
    const id = targetId(p.host, p.path);
    const { action, message } = await settle(ctx, id, p.after, p.added);
    out.push({ id, host: p.host, path: p.path, children: p.added, excludes: p.after, action, message });
  }
  return out;
}

/** Gives target `id` the excludes `excludes` (with a new scan where it can take one); retried when it changes meanwhile. */
async function settle(ctx: JobContext, id: string, excludes: string[], children: string[] = []): Promise<{ action: ParentAction; message: string }> {
  const what = children.length ? children.join(', ') : 'its nested targets';
  for (let attempt = 0; attempt < ATTEMPTS; attempt++) {
    let tc: TargetCopies | undefined;
    try {
      tc = await ctx.catalog.getTargetCopies(id);
    } catch (e) {
      if (!(e instanceof CatalogUpgradeError)) throw e;
      return { action: 'rescan-needed', message: `${id} is a release-0.3 item: run "migrate", then "rescan ${id}" so that it leaves out ${what}.` };
    }
    if (!tc) return { action: 'unchanged', message: `${id} is no longer in the catalog.` };
    const action = parentAction(tc, excludes);
    if (action === 'scan-requested') {
      const t = tc.target;
      const next: Target = {
        ...t,
        scanId: ctx.newId(),
        excludes: excludes.length ? excludes : undefined,
        updatedAt: ctx.now().toISOString(),
        version: t.version + 1,
      };
      if (!(await ctx.catalog.updateTarget(t, next))) continue;
      await ctx.queues.sendTask(scanTask({ taskId: ctx.newId(), issuedAt: next.updatedAt }, next, next.scanId!));
    } else if (action === 'rescanned') {
      try {
        await prepareRescan(ctx, tc);
      } catch (e) {
        if (!(e instanceof ConflictError)) throw e;
        return {
          action: 'rescan-needed',
          message: `${describe(tc)} cannot be rescanned now: ${errorMessage(e)} Then run "rescan ${id}" so that it leaves out ${what}.`,
        };
      }
      if (!(await startRescan(ctx, tc, excludes))) continue;
    }
    return { action, message: explain(tc, action, what) };
  }
  return { action: 'rescan-needed', message: `${id} changed too often while this import ran; run "rescan ${id}" so that it leaves out ${what}.` };
}

const describe = (tc: TargetCopies) => `${tc.target.host}:${tc.target.path} (${tc.target.id})`;
const onTape = (tc: TargetCopies) =>
  tc.copies
    .filter((c) => c.tapeName && c.fileNumber !== undefined && c.placement !== 'assigned')
    .map((c) => `${c.pool}: ${c.tapeName} file ${c.fileNumber}`)
    .join(', ');

/** The sentence the import says about a parent. */
function explain(tc: TargetCopies, action: ParentAction, what: string): string {
  const p = describe(tc);
  const id = tc.target.id;
  const files = onTape(tc);
  const kept = `its tape files (${files}) keep the files of ${what} they hold, and where_is and restore find them there too`;
  switch (action) {
    case 'unchanged':
      return `${p} already leaves out ${what}.`;
    case 'scan-requested':
      return `${p}: its scan had not finished; it was requested again, leaving out ${what}.`;
    case 'rescanned':
      return `${p} was scanned but is not yet written${files ? ` everywhere (${kept})` : ''}: it was rescanned, leaving out ${what}; archive takes it once that scan is complete.`;
    case 'on-tape':
      return `${p} is already on tape: ${kept}. Its manifest is unchanged; a later rescan of it leaves out ${what}, which is archived on its own.`;
    case 'writing': {
      const toWrite = tc.copies.some((c) => c.placement !== 'writing' && !KEEPS_FILE_PLACEMENTS.includes(c.placement));
      return (
        `${p} is being written (${files}) from a scan that includes ${what}; that tape file keeps their files. ` +
        (toWrite
          ? `Once that write has finished, run "rescan ${id}" before its other copies are archived, so that they leave out ${what}.`
          : `A later rescan of it leaves out ${what}, which is archived on its own.`)
      );
    }
    case 'scan-failed':
      return `${p}: its last scan failed; "rescan ${id}" (or "rescan --failed") scans it again, leaving out ${what}.`;
    case 'rescan-needed':
      return `run "rescan ${id}" so that ${p} leaves out ${what}.`;
  }
}
