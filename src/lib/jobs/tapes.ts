import { ConditionFailed } from '../catalog/catalog.ts';
import { assertNotReadOnly, BARCODE_RE, canGoOnline, validateTapeName, WRITABLE_TAPE_STATES, type Tape } from '../domain/tape.ts';
import { parseBytes } from '../domain/units.ts';
import { ConflictError, IllegalTransitionError, NotFoundError, UsageError, ValidationError } from '../errors.ts';
import type { JobContext } from './context.ts';
import { DEFAULT_POOL, validatePoolName } from '../domain/copies.ts';

export interface TapeRow {
  name: string;
  barcode: string;
  pool: string;
  state: Tape['state'];
  online: boolean;
  bytesUsed: number;
  capacityBytes: number;
  nextFileNumber: number;
  filesWritten: number;
  filesConfirmed: number;
  targetsAssigned: number;
  writeInFlight?: Tape['writeInFlight'];
  /** Why a tape is disabled or broken (or was marked full early). */
  reason?: string;
  /** `tapetown`: adopted from the predecessor, read only for ever. */
  format?: Tape['format'];
}

/** `tapes`: every tape with state, online flag, usage and counts. */
export async function listTapes(ctx: JobContext, input: { name?: string } = {}): Promise<{ tapes: TapeRow[] }> {
  const tapes = input.name === undefined ? await ctx.catalog.listTapes() : [await resolveTape(ctx, input.name)];
  const rows = await Promise.all(
    tapes.map(async (t) => ({
      name: t.name,
      barcode: t.barcode,
      pool: t.pool,
      state: t.state,
      online: t.online,
      bytesUsed: t.bytesUsed,
      capacityBytes: t.capacityBytes,
      nextFileNumber: t.nextFileNumber,
      filesWritten: t.filesWritten,
      filesConfirmed: t.filesConfirmed,
      targetsAssigned: await ctx.catalog.countAssigned(t.name),
      ...(t.writeInFlight ? { writeInFlight: t.writeInFlight } : {}),
      ...(t.reason ? { reason: t.reason } : {}),
      ...(t.format ? { format: t.format } : {}),
    })),
  );
  return { tapes: rows.sort((a, b) => a.name.localeCompare(b.name)) };
}

export interface OpenTapeInput {
  name: string;
  capacity?: string | number;
  barcode?: string;
  pool?: string;
  /** Register NAME as a new tape; without it an unknown name is refused (a typo must not take the real tape offline). */
  new?: boolean;
}

export interface OpenTapeResult {
  tape: Tape;
  registered: boolean;
  previousOnline?: string;
  message: string;
}

/** LTO-9 native capacity: what a tape holds unless the operator says otherwise. */
export const DEFAULT_CAPACITY_BYTES = 18e12;

function parseCapacity(c: string | number | undefined): number | undefined {
  if (c === undefined) return undefined;
  const n = typeof c === 'number' ? c : parseBytes(c);
  if (n === undefined || !Number.isSafeInteger(n) || n <= 0) {
    throw new UsageError(`capacity "${c}" is not a size; write it like 18T, 12TB, 500G or a number of bytes.`);
  }
  return n;
}

/** `open_tape NAME`: registers the tape if new and makes it the online tape. */
export async function openTape(ctx: JobContext, input: OpenTapeInput): Promise<OpenTapeResult> {
  const nameError = validateTapeName(input.name);
  if (nameError) throw new UsageError(nameError);
  const capacity = parseCapacity(input.capacity);
  const barcode = input.barcode?.toUpperCase();
  if (barcode !== undefined && !BARCODE_RE.test(barcode)) {
    throw new UsageError(`barcode "${input.barcode}" is invalid: use six letters or digits, optionally with the LTO media suffix (e.g. ABC123L9).`);
  }
  const poolError = input.pool === undefined ? undefined : validatePoolName(input.pool);
  if (poolError) throw new UsageError(poolError);

  // Refuses while release 0.3's online pointer (naming no pool) is still there: migrate first.
  await ctx.catalog.listOnline();
  const existing = await ctx.catalog.getTape(input.name);
  if (!existing) {
    await refuseUnintendedName(ctx, input.name, !!input.new, input.pool ?? DEFAULT_POOL);
    // A removed tape's name comes back only once remove_tape has released what was assigned to it.
    const left = await ctx.catalog.listCopiesOnTapeName('assigned', input.name);
    if (left.length) {
      throw new ConflictError(
        `${left.length} copies are still assigned to the removed tape ${input.name}; run "remove_tape ${input.name}" to release them, then register it again. Nothing was changed.`,
      );
    }
  }
  const pool = existing?.pool ?? input.pool ?? DEFAULT_POOL;
  const ofPool = pool === DEFAULT_POOL ? '' : ` of pool ${pool}`;
  const previousOnline = await ctx.catalog.getOnlineTapeName(pool);
  const now = ctx.now().toISOString();

  if (existing) {
    const mismatches = [
      capacity !== undefined && capacity !== existing.capacityBytes ? `capacity ${existing.capacityBytes} bytes` : undefined,
      barcode !== undefined && barcode !== existing.barcode ? `barcode "${existing.barcode}"` : undefined,
      input.pool !== undefined && input.pool !== existing.pool ? `pool "${existing.pool}"` : undefined,
    ].filter(Boolean);
    if (mismatches.length) {
      throw new ValidationError(
        `tape ${existing.name} is already registered with ${mismatches.join(', ')}; open it without those options, or use another name.`,
      );
    }
    assertNotReadOnly(existing, `open tape ${existing.name} for writing`);
    if (!canGoOnline(existing.state)) {
      throw new IllegalTransitionError(`tape ${existing.name} is ${existing.state} and cannot be opened${existing.reason ? ` (${existing.reason})` : ''}.`);
    }
    if (existing.online && previousOnline === existing.name) {
      return { tape: existing, registered: false, message: `tape ${existing.name} is already the online tape${ofPool}; nothing changed.` };
    }
    try {
      await ctx.catalog.setOnline(pool, existing.name, previousOnline, now);
    } catch (e) {
      if (e instanceof ConditionFailed)
        throw new ConflictError(`another open_tape or close_tape ran at the same time; nothing was changed. Check with "tapes" and try again.`);
      throw e;
    }
    const tape = { ...existing, online: true, updatedAt: now };
    return {
      tape,
      registered: false,
      ...(previousOnline && previousOnline !== tape.name ? { previousOnline } : {}),
      message: `tape ${tape.name} is now online${ofPool}${previousOnline && previousOnline !== tape.name ? ` (${previousOnline} taken offline)` : ''}.`,
    };
  }

  const tape: Tape = {
    name: input.name,
    barcode: barcode ?? '',
    pool,
    capacityBytes: capacity ?? DEFAULT_CAPACITY_BYTES,
    state: 'registered',
    online: true,
    bytesUsed: 0,
    nextFileNumber: 1,
    filesWritten: 0,
    filesConfirmed: 0,
    createdAt: now,
    updatedAt: now,
  };
  try {
    await ctx.catalog.setOnline(pool, tape.name, previousOnline, now, tape);
  } catch (e) {
    if (e instanceof ConditionFailed)
      throw new ConflictError(
        `tape ${tape.name} was registered, or another tape opened, at the same time; nothing was changed. Check with "tapes" and try again.`,
      );
    throw e;
  }
  return {
    tape,
    registered: true,
    ...(previousOnline ? { previousOnline } : {}),
    message: `tape ${tape.name} registered and online${ofPool}${previousOnline ? ` (${previousOnline} taken offline)` : ''}.`,
  };
}

/**
 * A name not in the catalog is registered only when asked for (`new`), and never when it
 * differs from a registered tape only by case (Tape1 beside tape1 is a typo, not a tape).
 */
async function refuseUnintendedName(ctx: JobContext, name: string, asNew: boolean, pool: string): Promise<void> {
  const tapes = await ctx.catalog.listTapes();
  const known = tapes.map((t) => t.name);
  const pools = new Set([DEFAULT_POOL, ...ctx.config.copies, ...tapes.map((t) => t.pool)]);
  const poolTwin = [...pools].find((p) => p !== pool && p.toLowerCase() === pool.toLowerCase());
  if (poolTwin) {
    throw new ValidationError(
      `pool ${pool} differs from the known pool ${poolTwin} only by case; use --pool ${poolTwin}, or a distinct name. Nothing was changed.`,
    );
  }
  const twin = known.find((k) => k.toLowerCase() === name.toLowerCase());
  if (twin) {
    throw new ValidationError(
      `tape ${name} differs from the registered tape ${twin} only by case; open ${twin}, or give the new tape a distinct name. Nothing was changed.`,
    );
  }
  if (!asNew) {
    const list = known.length ? `registered tapes: ${known.slice(0, 20).join(', ')}${known.length > 20 ? ', ...' : ''}` : 'no tape is registered yet';
    throw new NotFoundError(
      `tape ${name} is not registered (${list}); to register it as a new tape and bring it online, repeat with --new. Nothing was changed.`,
    );
  }
}

/**
 * The tape a job works on: the named one (which must be in `pool` when both are given), or
 * the online tape of `pool`, or the one online tape when only one pool has one.
 */
export async function resolveTape(ctx: JobContext, name: string | undefined, pool?: string): Promise<Tape> {
  if (name !== undefined) {
    const err = validateTapeName(name);
    if (err) throw new UsageError(err);
    const tape = await ctx.catalog.getTape(name);
    if (!tape) throw new NotFoundError(`tape ${name} is not registered; register it with "open_tape ${name}" or check the name with "tapes".`);
    if (pool !== undefined && tape.pool !== pool) {
      throw new ValidationError(`tape ${name} is in pool ${tape.pool}, not ${pool}; name a tape of pool ${pool}, or leave out --pool. Nothing was changed.`);
    }
    return tape;
  }
  const online = await onlineTapes(ctx, pool);
  if (online.length > 1) throw severalOnline(online);
  const only = online[0];
  if (!only) {
    throw new NotFoundError(
      pool === undefined
        ? 'no tape is online; open one with "open_tape NAME" or name the tape explicitly.'
        : `pool ${pool} has no online tape; open one with "open_tape NAME --pool ${pool}" or name the tape explicitly.`,
    );
  }
  const tape = await ctx.catalog.getTape(only.tapeName);
  if (!tape) throw new NotFoundError(`the online tape ${only.tapeName} is missing from the catalog; open a tape with "open_tape NAME".`);
  return tape;
}

/** No tape named, and more than one pool has an online tape: the job must be told which (in-process and in the API client alike). */
export function severalOnline(online: { pool: string; tapeName: string }[]): UsageError {
  return new UsageError(
    `several pools have an online tape (${online.map((o) => `${o.pool}: ${o.tapeName}`).join(', ')}); say which with --pool POOL or --tape NAME. Nothing was changed.`,
  );
}

/** The online tape of `pool` (checked to be a known pool), or of every pool that has one. */
export async function onlineTapes(ctx: JobContext, pool?: string): Promise<{ pool: string; tapeName: string }[]> {
  if (pool !== undefined) await assertKnownPools(ctx, [pool]);
  const online = await ctx.catalog.listOnline();
  return pool === undefined ? online : online.filter((o) => o.pool === pool);
}

/**
 * Pools exist once a tape is registered in them (`open_tape NAME --new --pool P`) or the
 * configured copy policy names them; any other name is a typo, refused before anything changes.
 */
export async function assertKnownPools(ctx: JobContext, pools: readonly string[]): Promise<void> {
  for (const p of pools) {
    const err = validatePoolName(p);
    if (err) throw new UsageError(err);
  }
  const configured = new Set([DEFAULT_POOL, ...ctx.config.copies]);
  if (pools.every((p) => configured.has(p))) return;
  const known = new Set([...configured, ...(await ctx.catalog.listTapes()).map((t) => t.pool)]);
  const unknown = pools.filter((p) => !known.has(p));
  if (unknown.length) {
    throw new ValidationError(
      `unknown pool(s) ${unknown.join(', ')}: no tape is registered in them and the configured copy policy does not name them (known pools: ${[...known].sort().join(', ')}). Register a pool's first tape with "open_tape NAME --new --pool ${unknown[0]}", or check the spelling. Nothing was changed.`,
    );
  }
}

export function isWritable(tape: Tape): boolean {
  return WRITABLE_TAPE_STATES.includes(tape.state);
}
