/**
 * `scrub [--budget-hours H] [--max-files N] [--older-than-days D] [--tape T]`: re-reads
 * confirmed copies in full, oldest verification first, one tape at a time in file-number
 * order, within a budget of drive time (domain/scrub.ts). Each file becomes a verify task
 * marked as a scrub: a pass records the new verification on the file and its copy; a failure
 * marks the copy bad (confirm_failed) and starts its repair (results/apply-result.ts).
 */
import { READABLE_TAPE_STATES } from '../domain/tape.ts';
import { planScrub, scrubBudgetBytes } from '../domain/scrub.ts';
import { NotFoundError } from '../errors.ts';
import { verifyTask } from '../protocol/build-tasks.ts';
import type { JobContext } from './context.ts';

export interface ScrubInput {
  /** Drive-hours this run may spend (default: the configured scrub budget). */
  budgetHours?: number;
  maxFiles?: number;
  /** Only files last verified at least this many days ago (default: any, oldest first). */
  olderThanDays?: number;
  /** Only these tapes. */
  tapes?: string[];
}

export interface ScrubResult {
  status: 'requested' | 'idle';
  requested: { taskId: string; tape: string; fileNumber: number; targetId: string; bytes: number; lastVerified?: string }[];
  bytes: number;
  budgetBytes: number;
  /** Confirmed files this run did not take (the next runs do, oldest first). */
  left: number;
  /** Files whose verify is already under way (left alone). */
  alreadyRunning: number;
  message: string;
}

export async function scrub(ctx: JobContext, input: ScrubInput = {}): Promise<ScrubResult> {
  const cfg = ctx.config.scrub;
  const hours = input.budgetHours ?? cfg.budgetHours;
  const budgetBytes = scrubBudgetBytes(hours, cfg.readMBps);
  const all = await ctx.catalog.listTapes();
  for (const name of input.tapes ?? []) {
    if (!all.some((t) => t.name === name)) throw new NotFoundError(`no tape ${name} in the catalog; list tapes with "tapes". Nothing was requested.`);
  }
  const tapes = all.filter((t) => READABLE_TAPE_STATES.includes(t.state) && (!input.tapes?.length || input.tapes.includes(t.name)));
  const running = new Set((await ctx.tasks.listUnfinished('verify')).map((s) => `${s.tapeName}/${s.fileNumber}`));
  const confirmed = (await Promise.all(tapes.map((t) => ctx.catalog.listTapeFiles(t.name)))).flat().filter((f) => f.state === 'confirmed');
  const free = confirmed.filter((f) => !running.has(`${f.tapeName}/${f.fileNumber}`));
  const notAfter = input.olderThanDays === undefined ? undefined : new Date(ctx.now().getTime() - input.olderThanDays * 86_400_000).toISOString();
  const plan = planScrub(free, { budgetBytes, maxFiles: input.maxFiles ?? Number.MAX_SAFE_INTEGER, ...(notAfter ? { notAfter } : {}) });
  const requested: ScrubResult['requested'] = [];
  for (const f of plan.files) {
    const task = verifyTask(
      { taskId: ctx.newId(), issuedAt: ctx.now().toISOString() },
      { tapeName: f.tapeName, fileNumber: f.fileNumber, targetId: f.targetId, updateCatalog: true },
    );
    await ctx.tasks.create({
      taskId: task.taskId,
      kind: 'verify',
      tapeName: f.tapeName,
      fileNumber: f.fileNumber,
      targetId: f.targetId,
      updateCatalog: true,
      scrub: true,
      bytesTotal: f.bytes ?? 0,
      createdAt: task.issuedAt,
    });
    await ctx.queues.sendTask(task);
    requested.push({
      taskId: task.taskId,
      tape: f.tapeName,
      fileNumber: f.fileNumber,
      targetId: f.targetId,
      bytes: f.bytes ?? 0,
      ...(f.verifiedAt ? { lastVerified: f.verifiedAt } : {}),
    });
  }
  const tapesRead = new Set(requested.map((r) => r.tape)).size;
  const alreadyRunning = confirmed.length - free.length;
  return {
    status: requested.length ? 'requested' : 'idle',
    requested,
    bytes: plan.bytes,
    budgetBytes,
    left: plan.left + alreadyRunning,
    alreadyRunning,
    message: requested.length
      ? `scrub requested: ${requested.length} file(s), ${plan.bytes} bytes on ${tapesRead} tape(s), within a budget of ${hours} drive-hour(s) (${budgetBytes} bytes at ${cfg.readMBps} MB/s); ${plan.left} confirmed file(s) wait for later runs. A failed read-back marks the copy bad and starts its repair; see "at_risk".`
      : `nothing to scrub: ${confirmed.length ? `every confirmed file is already being verified or was verified too recently (${alreadyRunning} under way)` : 'no confirmed files on readable tapes'}.`,
  };
}
