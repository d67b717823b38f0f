/**
 * `where_is PATTERN [--target T]`: which targets and copies (pool, tape, file number, state)
 * hold the files a base name, a relative path or a glob names, with size and checksum. It
 * answers from the catalog, never from tape: a base name is one Query on the name index; a
 * pattern without a literal base name reads the whole index (or, with --target, only that
 * target's manifests). Entries of a scan that is neither the target's current one nor on a
 * tape (an old rescan) are not shown.
 */
import type { IndexHit } from '../catalog/name-index.ts';
import { parseNamePattern, type NamePattern } from '../domain/name-pattern.ts';
import type { Copy } from '../domain/copies.ts';
import { NotFoundError, UsageError } from '../errors.ts';
import type { JobContext } from './context.ts';

export interface WhereIsInput {
  pattern: string;
  target?: string;
  limit?: number;
}

export interface WhereIsCopy {
  pool: string;
  /** The copy's tape and file while it holds this scan; absent for a copy not on tape yet. */
  tape?: string;
  fileNumber?: number;
  /** The tape file's state (writing, archived, confirmed, confirm_failed), or the copy's placement when it is not on tape. */
  state: string;
}

export interface WhereIsMatch {
  targetId: string;
  host: string;
  dir: string;
  path: string;
  rawPath?: string;
  type: string;
  size: number;
  sha256?: string;
  scanId: string;
  /** Whether this is the target's current scan (a rescan since may have changed the file on the data host). */
  current: boolean;
  copies: WhereIsCopy[];
}

export interface WhereIsResult {
  pattern: string;
  kind: NamePattern['kind'];
  matches: WhereIsMatch[];
  /** More matched than `limit`; narrow the pattern or use --target. */
  truncated: boolean;
  message: string;
}

const DEFAULT_LIMIT = 1000;

/** Where each target's scans are: its current scan, and the scan each tape file of its copies holds. */
async function scansOf(ctx: JobContext, targetId: string) {
  const tc = await ctx.catalog.getTargetCopies(targetId);
  if (!tc) return undefined;
  const onTape: { scanId: string; pages: number; copy: WhereIsCopy }[] = [];
  const offTape: Copy[] = [];
  for (const c of tc.copies) {
    if (!c.tapeName || c.fileNumber === undefined) {
      offTape.push(c);
      continue;
    }
    const file = await ctx.catalog.getTapeFile(c.tapeName, c.fileNumber);
    // A file from before release 0.3 holds its target's scan.
    const scanId = file?.targetId === targetId ? (file.scanId ?? tc.target.scanId) : undefined;
    const pages = (file?.scanId ? file.manifestPages : tc.target.manifestPages) ?? 0;
    if (scanId) onTape.push({ scanId, pages, copy: { pool: c.pool, tape: c.tapeName, fileNumber: c.fileNumber, state: file!.state } });
    else offTape.push(c);
  }
  return { target: tc.target, onTape, offTape };
}

export async function whereIs(ctx: JobContext, input: WhereIsInput): Promise<WhereIsResult> {
  const p = parseNamePattern(input.pattern);
  if ('error' in p) throw new UsageError(p.error);
  const limit = input.limit ?? DEFAULT_LIMIT;
  if (input.target && !(await ctx.catalog.getTarget(input.target))) throw new NotFoundError(`no target ${input.target}; target ids are listed by "targets".`);

  const targets = new Map<string, Awaited<ReturnType<typeof scansOf>>>();
  const matches: WhereIsMatch[] = [];
  let truncated = false;
  for await (const hit of candidates(ctx, p, input.target)) {
    if (!p.matches(hit)) continue;
    if (!targets.has(hit.targetId)) targets.set(hit.targetId, await scansOf(ctx, hit.targetId));
    const where = targets.get(hit.targetId);
    if (!where) continue; // the target was removed
    const current = hit.scanId === where.target.scanId && where.target.scan === 'complete';
    const copies = [
      ...where.onTape.filter((x) => x.scanId === hit.scanId).map((x) => x.copy),
      ...(current ? where.offTape.map((c) => ({ pool: c.pool, state: c.placement })) : []),
    ];
    if (!current && !copies.length) continue; // an older scan that is on no tape
    if (matches.length >= limit) {
      truncated = true;
      break;
    }
    const { targetId, scanId, ...entry } = hit;
    matches.push({ targetId, host: where.target.host, dir: where.target.path, ...entry, scanId, current, copies });
  }
  // By the file's full name on its data host, then by target: a file of a nested target that its
  // parent's older tape file also holds (docs/operations.md, "Nested targets") is listed under both, side by side.
  const full = (m: WhereIsMatch) => `${m.host}:${m.dir}/${m.path}`;
  const cmp = (x: string, y: string) => (x < y ? -1 : x > y ? 1 : 0);
  matches.sort((a, b) => cmp(full(a), full(b)) || cmp(a.dir, b.dir));
  const where = input.target ? ` in ${input.target}` : '';
  const message = matches.length
    ? `${matches.length}${truncated ? '+' : ''} match(es) for "${input.pattern}"${where}${truncated ? ` (the first ${limit}; narrow the pattern or give --target)` : ''}`
    : `nothing matches "${input.pattern}"${where}: no archived or scanned ${p.kind === 'path' ? 'file has that path relative to its target' : p.kind === 'name' ? 'file has that base name' : 'name matches that glob'} (names are matched exactly, case included; manifests stored before release 0.5 are found once "run-job migrate" has indexed them)`;
  return { pattern: input.pattern, kind: p.kind, matches, truncated, message };
}

/** The index entries that may match: by base name when the pattern has one, else all of them. */
async function* candidates(ctx: JobContext, p: NamePattern, targetId?: string): AsyncGenerator<IndexHit> {
  if (p.key !== undefined) {
    yield* ctx.names.lookup(p.key, targetId);
    return;
  }
  if (!targetId) {
    yield* ctx.names.all();
    return;
  }
  // One target and a glob over its names: its manifests, read page by page.
  const where = await scansOf(ctx, targetId);
  if (!where) return;
  const scans = new Map<string, number>();
  if (where.target.scan === 'complete' && where.target.scanId && where.target.manifestPages) scans.set(where.target.scanId, where.target.manifestPages);
  for (const x of where.onTape) if (x.pages) scans.set(x.scanId, x.pages);
  for (const [scanId, pages] of scans) {
    for await (const e of ctx.manifests.read(targetId, scanId, pages)) {
      yield {
        targetId,
        scanId,
        path: e.path,
        ...(e.rawPath !== undefined ? { rawPath: e.rawPath } : {}),
        type: e.type,
        size: e.size,
        ...(e.sha256 ? { sha256: e.sha256 } : {}),
      };
    }
  }
}
