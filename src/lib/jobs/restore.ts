/**
 * `restore TARGET [PATH ...] --to [HOST:]DIR [--from POOL|TAPE] [--overwrite]` and
 * `restore --tape TAPE --to DIR`: picks for each target the confirmed copy to read (the first
 * of its policy whose tape can be read, or the one `--from` names), groups the files by tape
 * and sends one restore task per tape, its files in file-number order (one pass). The agent
 * writes and verifies (agent/tasks/restore.ts); the catalog is not changed.
 */
import { basename } from 'node:path';
import type { TargetCopies } from '../domain/copies.ts';
import { pathBytes } from '../domain/manifest.ts';
import { formatDestination, isSelected, normalizeSelection, parseDestination, restoreCandidates } from '../domain/restore.ts';
import { READABLE_TAPE_STATES, type Tape } from '../domain/tape.ts';
import { IllegalTransitionError, NotFoundError, UsageError } from '../errors.ts';
import { restoreTask } from '../protocol/build-tasks.ts';
import { MAX_RESTORE_ITEMS, type RestoreTask } from '../protocol/tasks.ts';
import type { JobContext } from './context.ts';

export interface RestoreInput {
  targetIds?: string[];
  /** Every target whose copy is on this tape (and read from it). */
  tape?: string;
  paths?: string[];
  to: string;
  /** A pool or a tape name: the copy to read. */
  from?: string;
  overwrite?: boolean;
}

export interface RestoreRequest {
  taskId: string;
  tape: string;
  pool: string;
  bytes: number;
  targets: { id: string; fileNumber: number; dir: string }[];
}

export interface RestoreResult {
  status: 'requested';
  destination: string;
  tasks: RestoreRequest[];
  /** Files on the tape (restore --tape) that hold an earlier scan of their target, left out. */
  leftOut: { fileNumber: number; targetId: string; reason: string }[];
}

type Item = RestoreTask['items'][number] & { bytes: number };

/** A copy tapetown called confirmed is read only once confirmed here: say which confirm does it. */
function legacyHint(tc: TargetCopies): string {
  const legacy = tc.copies.filter((c) => c.legacy && c.placement === 'confirmed');
  return legacy.length
    ? ` (${legacy.map((c) => `the copy on ${c.tapeName} was confirmed by tapetown, md5s only: "confirm ${c.fileNumber} --tape ${c.tapeName}" measures it, then restore from it`).join('; ')})`
    : '';
}

export async function restore(ctx: JobContext, input: RestoreInput): Promise<RestoreResult> {
  const dest = parseDestination(input.to);
  const paths = (input.paths ?? []).map(normalizeSelection);
  const leftOut: RestoreResult['leftOut'] = [];
  let ids = input.targetIds ?? [];
  if (input.tape) {
    if (ids.length) throw new UsageError('give targets or --tape, not both.');
    const tape = await ctx.catalog.getTape(input.tape);
    if (!tape) throw new NotFoundError(`tape ${input.tape} is not in the catalog; list tapes with "tapes".`);
    ids = [...new Set((await ctx.catalog.listTapeFiles(tape.name)).filter((f) => f.state === 'confirmed').map((f) => f.targetId))];
    if (!ids.length) throw new NotFoundError(`tape ${tape.name} holds no confirmed file; nothing to restore from it.`);
  }
  if (!ids.length) throw new UsageError('name the target to restore (its id, from "targets" or "where_is"), or --tape TAPE.');
  if (paths.length && ids.length > 1) throw new UsageError('paths select inside one target; restore several targets whole, or one target with paths.');
  const from = input.tape ?? input.from;

  const tapes = new Map<string, Tape>();
  const tapeOf = async (name: string) => {
    if (!tapes.has(name)) {
      const t = await ctx.catalog.getTape(name);
      if (t) tapes.set(name, t);
    }
    return tapes.get(name);
  };
  const byTape = new Map<string, Item[]>();
  const names = new Map<string, number>();
  for (const id of ids) {
    const tc = await ctx.catalog.getTargetCopies(id);
    if (!tc) throw new NotFoundError(`target ${id} is not in the catalog; find targets with "targets" or "where_is".`);
    const candidates = restoreCandidates(tc).filter((c) => from === undefined || c.pool === from || c.tapeName === from);
    let chosen: (typeof candidates)[number] | undefined;
    const refused: string[] = [];
    for (const c of candidates) {
      const tape = await tapeOf(c.tapeName!);
      if (tape && READABLE_TAPE_STATES.includes(tape.state)) {
        chosen = c;
        break;
      }
      refused.push(`${c.pool} on ${c.tapeName} (tape ${tape ? tape.state : 'not in the catalog'})`);
    }
    if (!chosen) {
      if (input.tape) {
        leftOut.push({ fileNumber: 0, targetId: id, reason: `no confirmed copy of ${id} on ${input.tape} any more` });
        continue;
      }
      const have = tc.copies.map((c) => `${c.pool}: ${c.placement}${c.tapeName ? ` on ${c.tapeName}` : ''}`).join(', ') || 'none';
      throw new IllegalTransitionError(
        refused.length
          ? `target ${id} has no confirmed copy on a readable tape${from ? ` in ${from}` : ''} (${refused.join('; ')}); restore --from another pool or tape. Copies: ${have}.`
          : `target ${id} has no confirmed copy${from ? ` in pool or on tape ${from}` : ''}; a restore reads only copies read back good. Copies: ${have}.${from ? ' Leave out --from to take any.' : ' Confirm a copy first.'}${legacyHint(tc)}`,
      );
    }
    const file = await ctx.catalog.getTapeFile(chosen.tapeName!, chosen.fileNumber!);
    const scanId = file?.scanId ?? tc.target.scanId;
    const pages = file?.scanId ? file.manifestPages : tc.target.manifestPages;
    if (!file || !scanId || !pages)
      throw new IllegalTransitionError(
        `the catalog has no manifest for ${id}'s file ${chosen.fileNumber} on ${chosen.tapeName}; it cannot be restored with verification.`,
      );
    if (paths.length) await assertPathsInManifest(ctx, id, scanId, pages, paths);
    const base = basename(tc.target.path) || tc.target.id;
    const seen = names.get(base) ?? 0;
    names.set(base, seen + 1);
    const dir = ids.length === 1 ? dest.dir : `${dest.dir === '/' ? '' : dest.dir}/${seen ? `${base}.${tc.target.id}` : base}`;
    const list = byTape.get(chosen.tapeName!) ?? [];
    list.push({ fileNumber: file.fileNumber, targetId: id, scanId, manifestPages: pages, dir, bytes: file.bytes ?? 0 });
    byTape.set(chosen.tapeName!, list);
  }

  const tasks: RestoreRequest[] = [];
  const destination = formatDestination(dest);
  for (const [tapeName, items] of byTape) {
    for (let i = 0; i < items.length; i += MAX_RESTORE_ITEMS) {
      const chunk = items.slice(i, i + MAX_RESTORE_ITEMS);
      const task = restoreTask(
        { taskId: ctx.newId(), issuedAt: ctx.now().toISOString() },
        { tapeName, items: chunk.map(({ bytes: _b, ...it }) => it), paths, overwrite: !!input.overwrite, ...(dest.host ? { host: dest.host } : {}) },
      );
      const bytes = chunk.reduce((n, it) => n + it.bytes, 0);
      await ctx.tasks.create({
        taskId: task.taskId,
        kind: 'restore',
        tapeName,
        ...(chunk.length === 1 ? { targetId: chunk[0]!.targetId, fileNumber: chunk[0]!.fileNumber } : {}),
        destination,
        bytesTotal: bytes,
        createdAt: task.issuedAt,
      });
      await ctx.queues.sendTask(task);
      tasks.push({
        taskId: task.taskId,
        tape: tapeName,
        pool: (await tapeOf(tapeName))?.pool ?? '',
        bytes,
        targets: task.items.map((it) => ({ id: it.targetId, fileNumber: it.fileNumber, dir: it.dir })),
      });
    }
  }
  return { status: 'requested', destination, tasks, leftOut };
}

/** Every selected path names a file or directory of the target (read from its manifest, stopping once all are found). */
async function assertPathsInManifest(ctx: JobContext, targetId: string, scanId: string, pages: number, paths: string[]): Promise<void> {
  const wanted = paths.map((p) => Buffer.from(p));
  const found = wanted.map(() => false);
  for await (const e of ctx.manifests.read(targetId, scanId, pages)) {
    const rel = pathBytes(e);
    wanted.forEach((w, i) => {
      if (!found[i] && isSelected(rel, [w])) found[i] = true;
    });
    if (found.every(Boolean)) return;
  }
  const missing = paths.filter((_, i) => !found[i]);
  throw new NotFoundError(
    `target ${targetId} has no ${missing.map((p) => JSON.stringify(p)).join(', ')}; paths are relative to the target root. Find names with "where_is PATTERN --target ${targetId}". Nothing was requested.`,
  );
}
