/**
 * `at_risk [--limit N]`: what needs an operator before data is lost (domain/risk.ts): targets
 * short of confirmed copies (bad copies first), copies overdue for scrub (older than the
 * configured scrub interval), tapes with errors and the oldest data never read back. The same
 * JSON document over the API (GET /at-risk) serves monitoring; `status` carries its counts.
 */
import { assessRisk, type RiskReport } from '../domain/risk.ts';
import type { JobContext } from './context.ts';

export interface AtRiskInput {
  /** At most this many entries per list (the counts are always whole). */
  limit?: number;
}

export type AtRiskResult = RiskReport & { scrubIntervalDays: number; message: string };

export async function atRisk(ctx: JobContext, input: AtRiskInput = {}): Promise<AtRiskResult> {
  const [tcs, tapes] = await Promise.all([ctx.catalog.listAllTargetCopies(), ctx.catalog.listTapes()]);
  const days = ctx.config.scrub.intervalDays;
  const report = assessRisk(tcs, tapes, { overdueBefore: new Date(ctx.now().getTime() - days * 86_400_000).toISOString(), limit: input.limit ?? 100 });
  const c = report.counts;
  const message =
    c.targets + c.overdueScrub + c.tapesWithErrors === 0
      ? 'nothing at risk: every target has its confirmed copies, none overdue for scrub, no tape with errors.'
      : [
          c.badCopies ? `${c.badCopies} bad copy(ies): "repair" writes them again` : '',
          c.targets ? `${c.targets} target(s) short of confirmed copies` : '',
          c.overdueScrub ? `${c.overdueScrub} copy(ies) not verified for ${days} days: "scrub"` : '',
          c.tapesWithErrors ? `${c.tapesWithErrors} tape(s) with errors` : '',
          c.unverified ? `${c.unverified} written copy(ies) never read back: "confirm"` : '',
        ]
          .filter(Boolean)
          .join('; ') + '.';
  return { ...report, scrubIntervalDays: days, message };
}
