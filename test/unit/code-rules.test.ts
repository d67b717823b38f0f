/**
 * Rules of the code base that a review could miss: every task and report envelope is built in
 * one module, and the environment is read only by the config modules (entry points may hand
 * `process.env` to them, or pass it on to a child process, but never read a variable).
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { describe, expect, it } from 'vitest';

const root = join(import.meta.dirname, '..', '..');
function sources(dir: string): string[] {
  return readdirSync(join(root, dir), { withFileTypes: true }).flatMap((d) =>
    d.isDirectory() ? sources(join(dir, d.name)) : d.name.endsWith('.ts') ? [join(dir, d.name)] : [],
  );
}
const files = sources('src').map((f) => ({ path: relative(root, join(root, f)), text: readFileSync(join(root, f), 'utf8') }));

describe('code rules', () => {
  it('task and report envelopes are built only in src/lib/protocol/build-tasks.ts', () => {
    const offenders = files.filter((f) => f.path !== 'src/lib/protocol/build-tasks.ts' && /v: PROTOCOL_VERSION/.test(f.text)).map((f) => f.path);
    expect(offenders).toEqual([]);
  });

  it('environment variables are read only by the config modules', () => {
    const allowed = new Set(['src/lib/config.ts', 'src/agent/config.ts']);
    const offenders = files.filter((f) => !allowed.has(f.path) && /process\.env(\.|\[)/.test(f.text)).map((f) => f.path);
    expect(offenders).toEqual([]);
  });
});
