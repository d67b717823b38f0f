/**
 * The one way a zod validation failure becomes text: every issue as "path: message", joined
 * with "; ", on one line (for CLI errors, HTTP answers, dead-letter reasons and logs alike).
 * zod's own prettifyError writes several lines per issue, which suits none of those.
 */
import type { z } from 'zod';

export function formatIssues(error: z.ZodError, root = '(root)'): string {
  return error.issues.map((i) => `${i.path.join('.') || root}: ${i.message}`).join('; ');
}

/** The first issue only, for messages that name one problem. */
export function firstIssue(error: z.ZodError): string {
  const i = error.issues[0];
  if (!i) return 'invalid';
  return `${i.path.length ? i.path.join('.') + ': ' : ''}${i.message}`;
}
