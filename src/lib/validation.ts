/**
 * The one way a zod validation failure becomes text: zod's own formatting (z.prettifyError),
 * folded onto one line as "path: message; ..." for CLI errors, HTTP answers, dead-letter
 * reasons and logs alike (prettifyError writes a line per issue and another per path).
 */
import { z } from 'zod';

export function formatIssues(error: z.ZodError, root = '(root)'): string {
  return z
    .prettifyError(error)
    .split(/\n(?=✖ )/)
    .map((block) => {
      const [first = '', ...rest] = block.split('\n');
      const at = rest.map((l) => l.trim()).find((l) => l.startsWith('→ at '));
      const path = at ? at.slice('→ at '.length) : root;
      return `${path ? `${path}: ` : ''}${first.replace(/^✖ /, '')}`;
    })
    .join('; ');
}

/** The first issue only, for messages that name one problem. */
export function firstIssue(error: z.ZodError): string {
  const i = error.issues[0];
  if (!i) return 'invalid';
  return formatIssues(new z.ZodError([i]), '');
}
