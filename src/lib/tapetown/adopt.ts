/**
 * adopt_tapetown: a tapetown database brought into the catalog (adopt-plan.ts says what each
 * row becomes). Every write is "only if absent", in an order a crash can resume from: tapes,
 * then per target its manifest pages (and name index), its tapetown tape file, and last the
 * target with its copies. So running it again adds what an interrupted run did not, and after
 * a complete run changes nothing. `dryRun` reads the catalog and writes nothing.
 */
import type { Tape } from '../domain/tape.ts';
import { ConflictError } from '../errors.ts';
import type { Target } from '../domain/target.ts';
import type { JobContext } from '../jobs/context.ts';
import { openTapetownDatabase } from './database.ts';
import { planAdoption, type AdoptPlan, type NotImported, type Table } from './adopt-plan.ts';

export interface AdoptInput {
  db: string;
  host: string;
  pool: string;
  policy: readonly string[];
  dryRun: boolean;
}

export interface AdoptReport {
  dryRun: boolean;
  db: string;
  host: string;
  pool: string;
  schema: { scanned: boolean; parentId: boolean };
  /** Per table: its rows, those adopted now, those adopted by an earlier run, those reported. */
  rows: Record<Table, { rows: number; adopted: number; before: number; reported: number }>;
  tapes: { name: string; state: Tape['state']; files: number; confirmed: number; before: boolean }[];
  targets: { adopted: number; before: number; withoutFileList: number; notScanned: number; nested: number; copies: Record<string, number> };
  notes: string[];
  notImported: NotImported[];
}

type Ctx = Pick<JobContext, 'catalog' | 'manifests' | 'names' | 'now'>;

export async function adoptTapetown(ctx: Ctx, input: AdoptInput): Promise<AdoptReport> {
  const db = await openTapetownDatabase(input.db);
  try {
    const tapes = new Map((await ctx.catalog.listTapes()).map((t) => [t.name, t]));
    // Adopted before with another host or pool: the targets would be other targets, the copies in another pool.
    const earlier = [...tapes.values()].filter((t) => t.format === 'tapetown' && db.tapes.some((r) => r.id === t.tapetown?.id && r.name === t.name));
    const differ = earlier.filter((t) => t.pool !== input.pool || (t.tapetown?.host !== undefined && t.tapetown.host !== input.host));
    if (differ.length)
      throw new ConflictError(
        `this database was adopted before with ${differ.map((t) => `tape ${t.name} in pool ${t.pool} on host ${t.tapetown?.host ?? '?'}`).join(', ')}; run it again with the same --pool and --host (adopting the same tapes twice under other names would split each target in two). Nothing was changed.`,
      );
    const targets = new Map<string, Target>((await ctx.catalog.listAllTargets()).map((t) => [t.id, t]));
    const plan = planAdoption(db, { host: input.host, pool: input.pool, policy: input.policy, now: ctx.now().toISOString(), catalog: { tapes, targets } });
    if (!input.dryRun) plan.notes.push(...(await apply(ctx, plan)));
    return report(input, db.schema, plan);
  } finally {
    db.close();
  }
}

/** Writes what the plan adds; returns what was found in the way (written meanwhile by something else). */
async function apply(ctx: Ctx, plan: AdoptPlan): Promise<string[]> {
  const notes: string[] = [];
  const before = { tapes: new Set(plan.before.tapes), targets: new Set(plan.before.targets) };
  for (const tape of plan.tapes)
    if (!before.tapes.has(tape.name) && !(await ctx.catalog.addRebuiltTape(tape)))
      notes.push(`tape ${tape.name} appeared in the catalog while adopting: left as it is; check it with "tapes ${tape.name}"`);
  for (const t of plan.targets) {
    if (before.targets.has(t.target.id)) continue;
    const { target } = t;
    let pages = 0;
    if (target.scanId) pages = await ctx.manifests.write(target.id, target.scanId, t.entries, { names: ctx.names });
    if (target.scanId) target.manifestPages = pages;
    const file = t.tapeFile && { ...t.tapeFile, ...(target.scanId ? { manifestPages: pages } : {}) };
    let copies = t.copies;
    if (file && !(await ctx.catalog.addRebuiltTapeFile(file))) {
      const have = await ctx.catalog.getTapeFile(file.tapeName, file.fileNumber);
      // Written by an interrupted run of this adoption: the same file. Anything else is reported, and the copy left out.
      if (have?.targetId !== file.targetId) {
        notes.push(
          `tape ${file.tapeName} file ${file.fileNumber} is in the catalog already as ${have?.targetId ?? 'something else'}: ${target.path} was adopted without that copy`,
        );
        copies = copies.filter((c) => c.tapeName !== file.tapeName);
      }
    }
    if (!(await ctx.catalog.createTarget(target, copies)))
      notes.push(`target ${target.id} (${target.path}) appeared in the catalog while adopting: left as it is`);
  }
  return notes;
}

function report(input: AdoptInput, schema: AdoptReport['schema'], plan: AdoptPlan): AdoptReport {
  const before = { tapes: new Set(plan.before.tapes), targets: new Set(plan.before.targets) };
  const reported = (table: Table) => plan.notImported.filter((n) => n.table === table).reduce((k, n) => k + (n.count ?? 1), 0);
  const count = (table: Table, adopted: number, earlier: number) => ({ rows: plan.rows[table], adopted, before: earlier, reported: reported(table) });
  const fresh = plan.targets.filter((t) => !before.targets.has(t.target.id));
  const old = plan.targets.filter((t) => before.targets.has(t.target.id));
  const files = (ts: typeof plan.targets) => ts.reduce((n, t) => n + t.entries.length, 0);
  // A backups row is adopted with its target: the tapetown copy, or (assigned, new) the unassigned copies.
  const backups = (ts: typeof plan.targets) => ts.reduce((n, t) => n + t.backupRows, 0);
  const copies: Record<string, number> = {};
  for (const t of plan.targets) for (const c of t.copies) copies[`${c.pool} ${c.placement}`] = (copies[`${c.pool} ${c.placement}`] ?? 0) + 1;
  return {
    dryRun: input.dryRun,
    db: input.db,
    host: input.host,
    pool: input.pool,
    schema,
    rows: {
      tapes: count('tapes', plan.tapes.length - before.tapes.size, before.tapes.size),
      targets: count('targets', fresh.length, old.length),
      files: count('files', files(fresh), files(old)),
      backups: count('backups', backups(fresh), backups(old)),
    },
    tapes: plan.tapes.map((t) => ({ name: t.name, state: t.state, files: t.filesWritten, confirmed: t.filesConfirmed, before: before.tapes.has(t.name) })),
    targets: {
      adopted: fresh.length,
      before: old.length,
      withoutFileList: plan.targets.filter((t) => t.target.scan === 'complete' && !t.target.adopted?.fileList).length,
      notScanned: plan.targets.filter((t) => t.target.scan === 'pending').length,
      nested: plan.targets.filter((t) => t.target.excludes?.length).length,
      copies,
    },
    notes: plan.notes,
    notImported: plan.notImported,
  };
}
