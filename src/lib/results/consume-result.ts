/**
 * The results consumer's core, shared by the SQS-triggered Lambda (handlers/results.ts) and
 * the local results pump (results-pump.ts): parse a report, dead-letter it at once if it can
 * never be applied (the poison policy, protocol/dead-letter.ts), otherwise apply it. An error
 * while applying is thrown: the message is retried by SQS.
 */
import type { JobContext } from '../jobs/context.ts';
import { sendToDeadLetter } from '../protocol/dead-letter.ts';
import { resultSchema, type Result } from '../protocol/results.ts';
import { parseMessage } from '../protocol/tasks.ts';
import { applyResult } from './apply-result.ts';

export type Consumed = { kind: 'applied' | 'ignored'; note: string; report: Result } | { kind: 'dead-lettered'; reason: string };

export async function consumeResult(ctx: JobContext, body: string | undefined): Promise<Consumed> {
  const parsed = parseMessage(resultSchema, body);
  if (!parsed.ok) {
    await sendToDeadLetter(ctx.queues, 'results', body, parsed.error);
    return { kind: 'dead-lettered', reason: parsed.error };
  }
  const outcome = await applyResult(ctx, parsed.value);
  return { kind: outcome.applied ? 'applied' : 'ignored', note: outcome.note, report: parsed.value };
}
