import { z } from 'zod';
import { describe, expect, it } from 'vitest';
import { firstIssue, formatIssues } from '../../src/lib/validation.ts';

describe('validation messages', () => {
  const schema = z.object({ a: z.string(), b: z.object({ c: z.number() }) }).strict();
  const error = schema.safeParse({ a: 1, b: { c: 'x' }, extra: true }).error!;

  it('every issue on one line as "path: message", the root named', () => {
    const text = formatIssues(error, '(input)');
    expect(text).not.toContain('\n');
    expect(text).toContain('(input): Unrecognized key: "extra"');
    expect(text).toContain('a: Invalid input: expected string, received number');
    expect(text).toContain('b.c: Invalid input: expected number, received string');
  });

  it('the first issue alone', () => {
    expect(firstIssue(error)).toMatch(/^(a: )?[A-Z]/);
    expect(firstIssue(error)).not.toContain(';');
  });
});
