import { parseImportList, type ImportProblem } from '../domain/import-list.ts';
import { PLACEMENTS, TARGET_STATUSES, targetId, targetStatus, type Placement, type Target, type TargetStatus } from '../domain/target.ts';
import { UsageError, ValidationError } from '../errors.ts';
import type { JobContext } from './context.ts';
import { mapLimit } from '../concurrency.ts';
import { resolveTape } from './tapes.ts';
import { scanTask } from '../protocol/build-tasks.ts';

export interface ImportInput {
  /** The import list's bytes (the CLI reads FILE, the gateway takes the body). */
  content: string | Uint8Array;
  /** Shown in messages, e.g. the file name. */
  source: string;
  skipInvalid?: boolean;
}

export interface ImportResult {
  imported: { id: string; host: string; path: string; line: number }[];
  alreadyKnown: { id: string; host: string; path: string; line: number; status: TargetStatus }[];
  duplicates: { line: number; firstLine: number }[];
  skipped: ImportProblem[];
  scansRequested: number;
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
  const result: ImportResult = { imported: [], alreadyKnown: [], duplicates: parsed.duplicates, skipped: parsed.errors, scansRequested: 0 };
  // Each target is one conditional put and one message; run them 16 at a time so that a list
  // of thousands fits in an API call. Import times are spaced by a millisecond per line so
  // archive takes the targets in the order of the list.
  const base = ctx.now().getTime();
  const outcomes = await mapLimit(parsed.entries, 16, async (entry, i) => {
    const id = targetId(entry.host, entry.path);
    const now = new Date(base + i).toISOString();
    const scanId = ctx.newId();
    const target: Target = {
      id,
      host: entry.host,
      path: entry.path,
      scan: 'pending',
      scanId,
      placement: 'unassigned',
      importedAt: now,
      updatedAt: now,
      version: 1,
    };
    if (!(await ctx.catalog.createTarget(target))) {
      const known = await ctx.catalog.getTarget(id);
      return {
        kind: 'known' as const,
        known: { id, host: entry.host, path: entry.path, line: entry.line, status: known ? targetStatus(known) : ('imported' as const) },
      };
    }
    // The target is recorded before its scan is requested: if this send is lost, the target
    // stays "imported" with a pending scan, which reconcile re-requests.
    await ctx.queues.sendTask(scanTask({ taskId: ctx.newId(), issuedAt: now }, { id, host: entry.host, path: entry.path }, scanId));
    return { kind: 'imported' as const, imported: { id, host: entry.host, path: entry.path, line: entry.line } };
  });
  for (const o of outcomes) {
    if (o.kind === 'known') result.alreadyKnown.push(o.known);
    else {
      result.imported.push(o.imported);
      result.scansRequested++;
    }
  }
  return result;
}

export interface ListTargetsInput {
  state?: string;
  tape?: string;
}

export interface TargetRow {
  id: string;
  host: string;
  path: string;
  status: TargetStatus;
  tape?: string;
  fileNumber?: number;
  fileCount?: number;
  totalBytes?: number;
  /** Entries of the target not archived by policy (special files): how many, and the first ones. */
  skippedCount?: number;
  skipped?: { path: string; rawPath?: string; reason: string }[];
  error?: string;
  /** Tape files given up after a failed read-back (they stay on their tapes, recorded as bad). */
  previousFiles?: NonNullable<Target['previousFiles']>;
}

export function toTargetRow(t: Target): TargetRow {
  return {
    id: t.id,
    host: t.host,
    path: t.path,
    status: targetStatus(t),
    ...(t.tapeName ? { tape: t.tapeName } : {}),
    ...(t.fileNumber !== undefined ? { fileNumber: t.fileNumber } : {}),
    ...(t.fileCount !== undefined ? { fileCount: t.fileCount } : {}),
    ...(t.totalBytes !== undefined ? { totalBytes: t.totalBytes } : {}),
    ...(t.skippedCount ? { skippedCount: t.skippedCount, skipped: t.skipped ?? [] } : {}),
    ...(t.lastError || t.scanError ? { error: t.lastError ?? t.scanError } : {}),
    ...(t.previousFiles?.length ? { previousFiles: t.previousFiles } : {}),
  };
}

/** `targets [--state S] [--tape T]`: what is where. */
export async function listTargets(ctx: JobContext, input: ListTargetsInput): Promise<{ targets: TargetRow[] }> {
  if (input.state !== undefined && !(TARGET_STATUSES as readonly string[]).includes(input.state)) {
    throw new UsageError(`unknown state "${input.state}"; use one of: ${TARGET_STATUSES.join(', ')}.`);
  }
  if (input.tape !== undefined) await resolveTape(ctx, input.tape);
  const status = input.state as TargetStatus | undefined;
  let targets: Target[];
  if (input.tape !== undefined && status && (PLACEMENTS as readonly string[]).includes(status)) {
    targets = await ctx.catalog.listTargetsByPlacement(status as Placement, input.tape);
  } else {
    targets = await ctx.catalog.listAllTargets();
  }
  const rows = targets
    // A tape's listing includes targets that left a bad file on it: their history shows it.
    .filter((t) => input.tape === undefined || t.tapeName === input.tape || t.previousFiles?.some((f) => f.tapeName === input.tape))
    .filter((t) => status === undefined || targetStatus(t) === status)
    .map(toTargetRow);
  return { targets: rows };
}
