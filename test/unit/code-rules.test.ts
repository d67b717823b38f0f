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

  it('the environment is read only by the config modules (and by src/local tooling handing it to child processes)', () => {
    const allowed = new Set(['src/lib/config.ts', 'src/agent/config.ts']);
    const offenders = files.filter((f) => !allowed.has(f.path) && !f.path.startsWith('src/local/') && /process\.env\b/.test(f.text)).map((f) => f.path);
    expect(offenders).toEqual([]);
  });
});

describe('state rules live in src/lib/domain', () => {
  it('no literal list of tape states or target placements elsewhere', () => {
    const state = "'(registered|labelled|full|closed|disabled|broken|unassigned|assigned|writing|archived|confirmed|confirm_failed|write_failed)'";
    const list = new RegExp(`\\[\\s*${state}\\s*,\\s*${state}`);
    const offenders = files.filter((f) => !f.path.startsWith('src/lib/domain/') && list.test(f.text)).map((f) => f.path);
    expect(offenders).toEqual([]);
  });

  it('catalog conditions are built from the domain lists', async () => {
    const { stateIn } = await import('../../src/lib/catalog/requests.ts');
    const { WRITABLE_TAPE_STATES, CLOSABLE_TAPE_STATES } = await import('../../src/lib/domain/tape.ts');
    expect(stateIn(WRITABLE_TAPE_STATES, 'w')).toEqual({ expression: '#s IN (:w0, :w1)', values: { ':w0': 'registered', ':w1': 'labelled' } });
    expect(CLOSABLE_TAPE_STATES).toEqual(['registered', 'labelled', 'full', 'disabled', 'broken']);
  });
});
