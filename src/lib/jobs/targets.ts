import { parseImportList, type ImportProblem } from '../domain/import-list.ts';
import { TARGET_STATUSES, targetId, targetStatus, type PreviousFile, type Target, type TargetStatus } from '../domain/target.ts';
import { isReleaseThreeTarget, targetCodec } from '../catalog/items.ts';
import { parseReleaseThreeTarget } from '../catalog/upgrade.ts';
import { copiesStatus, copyStatus, describeCopies, newCopies, overallStatus, parseCopyPolicy, type Copy, type TargetCopies } from '../domain/copies.ts';
import { UsageError, ValidationError } from '../errors.ts';
import type { JobContext } from './context.ts';
import { mapLimit } from '../concurrency.ts';
import { assertKnownPools, resolveTape } from './tapes.ts';
import { scanTask } from '../protocol/build-tasks.ts';
import { excludesAtImport, settleNesting, type NestedParent } from './import-nesting.ts';

export interface ImportInput {
  /** The import list's bytes (the CLI reads FILE, the gateway takes the body). */
  content: string | Uint8Array;
  /** Shown in messages, e.g. the file name. */
  source: string;
  skipInvalid?: boolean;
  /** The copy policy of the new targets (default: the configured one); known targets keep theirs. */
  copies?: string[];
}

export interface ImportResult {
  imported: { id: string; host: string; path: string; line: number }[];
  alreadyKnown: { id: string; host: string; path: string; line: number; status: TargetStatus }[];
  duplicates: { line: number; firstLine: number }[];
  skipped: ImportProblem[];
  scansRequested: number;
  /** The copy policy the new targets got. */
  copies: string[];
  /** New targets that leave nested targets out of their scan (domain/nesting.ts), with those paths. */
  nested: { id: string; host: string; path: string; excludes: string[] }[];
  /** Targets already in the catalog that new targets lie directly inside, and what became of each (import-nesting.ts). */
  parents: NestedParent[];
}

/** Offending lines named in a refusal; the rest are counted. */
const PROBLEMS_SHOWN = 10;

/** A bounded message: the first few offending lines with their numbers, and a count of the rest. */
export function describeProblems(source: string, problems: ImportProblem[]): string {
  const shown = problems.slice(0, PROBLEMS_SHOWN).map((p) => `  line ${p.line}: ${JSON.stringify(p.text)} ${p.message}`);
  const more = problems.length > PROBLEMS_SHOWN ? [`  ... and ${problems.length - PROBLEMS_SHOWN} more invalid line(s)`] : [];
  return [
    `${source} has ${problems.length} invalid line(s); nothing was imported:`,
    ...shown,
    ...more,
    'Fix these lines, or run again with --skip-invalid to import the valid ones.',
  ].join('\n');
}

/** `import FILE`: each listed directory becomes a target and a scan of it is requested. */
export async function importTargets(ctx: JobContext, input: ImportInput): Promise<ImportResult> {
  const policy = parseCopyPolicy(input.copies ?? ctx.config.copies);
  if ('error' in policy) throw new ValidationError(`${policy.error} Nothing was imported.`);
  const copies = [...policy.policy];
  await assertKnownPools(ctx, copies);
  const parsed = parseImportList(input.content, ctx.config.defaultHost);
  if (parsed.errors.length && !input.skipInvalid) {
    throw new ValidationError(describeProblems(input.source, parsed.errors), {
      errors: parsed.errors.slice(0, PROBLEMS_SHOWN),
      errorCount: parsed.errors.length,
    });
  }
  if (parsed.entries.length === 0) {
    throw new ValidationError(
      `${input.source} lists no target directories (only blank lines, comments or invalid lines); nothing was imported. Write one full directory path per line.`,
    );
  }
  const result: ImportResult = {
    imported: [],
    alreadyKnown: [],
    duplicates: parsed.duplicates,
    skipped: parsed.errors,
    scansRequested: 0,
    copies,
    nested: [],
    parents: [],
  };
  // Nested targets: each new one leaves out the targets directly inside it from its first scan.
  const excludesOf = excludesAtImport(await ctx.catalog.listAllTargets(), parsed.entries);
  const created: Target[] = [];
  // Each target is one conditional put and one message; run them 16 at a time so that a list
  // of thousands fits in an API call. Import times are spaced by a millisecond per line so
  // archive takes the targets in the order of the list.
  const base = ctx.now().getTime();
  const outcomes = await mapLimit(parsed.entries, 16, async (entry, i) => {
    const id = targetId(entry.host, entry.path);
    const now = new Date(base + i).toISOString();
    const scanId = ctx.newId();
    const excludes = excludesOf.get(`${entry.host}\0${entry.path}`) ?? [];
    const target: Target = {
      id,
      host: entry.host,
      path: entry.path,
      scan: 'pending',
      scanId,
      copies,
      ...(excludes.length ? { excludes } : {}),
      importedAt: now,
      updatedAt: now,
      version: 1,
    };
    if (!(await ctx.catalog.createTarget(target, newCopies(target, now)))) {
      return { kind: 'known' as const, known: { id, host: entry.host, path: entry.path, line: entry.line, status: await knownStatus(ctx, id) } };
    }
    // The target is recorded before its scan is requested: if this send is lost, the target
    // stays "imported" with a pending scan, which reconcile re-requests.
    await ctx.queues.sendTask(scanTask({ taskId: ctx.newId(), issuedAt: now }, target, scanId));
    return { kind: 'imported' as const, imported: { id, host: entry.host, path: entry.path, line: entry.line }, target };
  });
  for (const o of outcomes) {
    if (o.kind === 'known') result.alreadyKnown.push(o.known);
    else {
      result.imported.push(o.imported);
      result.scansRequested++;
      created.push(o.target);
      if (o.target.excludes?.length) result.nested.push({ id: o.target.id, host: o.target.host, path: o.target.path, excludes: o.target.excludes });
    }
  }
  // Then the parents already in the catalog (the catalog read again: another import may have run meanwhile).
  result.parents = await settleNesting(ctx, created);
  return result;
}

/** The status of a target already in the catalog; of a release-0.3 item too (import never refuses over it). */
async function knownStatus(ctx: JobContext, id: string): Promise<TargetStatus> {
  const raw = await ctx.catalog.rawTarget(id);
  if (!raw) return 'imported';
  if (isReleaseThreeTarget(raw)) return targetStatus({ scan: targetCodec.fromItem(raw).scan, placement: parseReleaseThreeTarget(raw).placement });
  const tc = await ctx.catalog.getTargetCopies(id);
  return tc ? overallStatus(tc) : 'imported';
}

export interface ListTargetsInput {
  /** A status word, or `safe` / `at-risk` (every required copy confirmed, or not). */
  state?: string;
  tape?: string;
  pool?: string;
}

/** One copy of a target, as `targets` shows it. */
export interface CopyRow {
  pool: string;
  status: TargetStatus;
  tape?: string;
  fileNumber?: number;
  bytes?: number;
  archivedAt?: string;
  verifiedAt?: string;
  error?: string;
  /** A copy in a pool its target's policy no longer names (kept, not counted). */
  extra?: boolean;
}

export interface TargetRow {
  id: string;
  host: string;
  path: string;
  /** The copy shown (on the tape asked for, else the one holding the target up): its status word. */
  status: TargetStatus;
  tape?: string;
  fileNumber?: number;
  /** The copy policy, and whether every copy it requires is confirmed. */
  policy: string[];
  safe: boolean;
  /** "safe", or "1/2 confirmed (missing: offsite)". */
  copiesStatus: string;
  copies: CopyRow[];
  fileCount?: number;
  totalBytes?: number;
  /** Entries of the target not archived by policy (special files): how many, and the first ones. */
  skippedCount?: number;
  skipped?: { path: string; rawPath?: string; reason: string }[];
  error?: string;
  /** Tape files given up after a failed read-back, of every copy (they stay on their tapes, recorded as bad). */
  previousFiles?: PreviousFile[];
  /** The nested targets its current scan leaves out. */
  excludes?: string[];
}

export const TARGET_FILTERS = [...TARGET_STATUSES, 'safe', 'at-risk'] as const;

function copyRow(t: Target, c: Copy): CopyRow {
  return {
    pool: c.pool,
    status: copyStatus(t.scan, c),
    ...(c.tapeName ? { tape: c.tapeName } : {}),
    ...(c.fileNumber !== undefined ? { fileNumber: c.fileNumber } : {}),
    ...(c.bytes !== undefined ? { bytes: c.bytes } : {}),
    ...(c.archivedAt ? { archivedAt: c.archivedAt } : {}),
    ...(c.verifiedAt ? { verifiedAt: c.verifiedAt } : {}),
    ...(c.lastError ? { error: c.lastError } : {}),
    ...(t.copies.includes(c.pool) ? {} : { extra: true }),
  };
}

/** The copies in policy order, then any extra ones. */
const ordered = ({ target, copies }: TargetCopies) =>
  [...copies].sort((a, b) => rank(target.copies, a.pool) - rank(target.copies, b.pool) || a.pool.localeCompare(b.pool));
const rank = (policy: string[], pool: string) => (policy.includes(pool) ? policy.indexOf(pool) : policy.length);

/** A target's row; `focus` is the copy the row is about (on the tape or in the pool asked for). */
export function toTargetRow(tc: TargetCopies, focus?: Copy): TargetRow {
  const t = tc.target;
  const copies = ordered(tc);
  const shown = focus ?? copies.find((c) => t.copies.includes(c.pool) && c.placement !== 'confirmed') ?? copies[0];
  const safety = copiesStatus(t.copies, tc.copies);
  const lastError = shown?.lastError ?? copies.find((c) => c.lastError)?.lastError;
  const previousFiles = copies.flatMap((c) => c.previousFiles ?? []);
  return {
    id: t.id,
    host: t.host,
    path: t.path,
    status: focus ? copyStatus(t.scan, focus) : overallStatus(tc),
    ...(shown?.tapeName ? { tape: shown.tapeName } : {}),
    ...(shown?.fileNumber !== undefined ? { fileNumber: shown.fileNumber } : {}),
    policy: t.copies,
    safe: safety.safe,
    copiesStatus: describeCopies(safety),
    copies: copies.map((c) => copyRow(t, c)),
    ...(t.fileCount !== undefined ? { fileCount: t.fileCount } : {}),
    ...(t.totalBytes !== undefined ? { totalBytes: t.totalBytes } : {}),
    ...(t.skippedCount ? { skippedCount: t.skippedCount, skipped: t.skipped ?? [] } : {}),
    ...(lastError || t.scanError ? { error: lastError ?? t.scanError } : {}),
    ...(previousFiles.length ? { previousFiles } : {}),
    ...(t.excludes?.length ? { excludes: t.excludes } : {}),
  };
}

/** `targets [--state S] [--tape T] [--pool P]`: what is where, copy by copy. */
export async function listTargets(ctx: JobContext, input: ListTargetsInput): Promise<{ targets: TargetRow[] }> {
  if (input.state !== undefined && !(TARGET_FILTERS as readonly string[]).includes(input.state)) {
    throw new UsageError(`unknown state "${input.state}"; use one of: ${TARGET_FILTERS.join(', ')}.`);
  }
  const tape = input.tape !== undefined ? await resolveTape(ctx, input.tape, input.pool) : undefined;
  if (input.pool !== undefined) await assertKnownPools(ctx, [input.pool]);
  const state = input.state;
  const rows: TargetRow[] = [];
  for (const tc of await ctx.catalog.listAllTargetCopies()) {
    const t = tc.target;
    // The copy the row is about: on the tape (a tape's listing includes the copies that left a bad file on it) or in the pool.
    const focus = tape
      ? tc.copies.find((c) => c.pool === tape.pool && (c.tapeName === tape.name || c.previousFiles?.some((f) => f.tapeName === tape.name)))
      : input.pool !== undefined
        ? tc.copies.find((c) => c.pool === input.pool)
        : undefined;
    if ((tape || input.pool !== undefined) && !focus) continue;
    if (state === 'safe' || state === 'at-risk') {
      if (copiesStatus(t.copies, tc.copies).safe !== (state === 'safe')) continue;
    } else if (state !== undefined) {
      const statuses = focus ? [copyStatus(t.scan, focus)] : [overallStatus(tc), ...tc.copies.map((c) => copyStatus(t.scan, c))];
      if (!statuses.includes(state as TargetStatus)) continue;
    }
    rows.push(toTargetRow(tc, focus));
  }
  return { targets: rows };
}
