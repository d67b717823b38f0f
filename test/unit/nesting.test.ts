/**
 * The nesting rule (domain/nesting.ts): which targets lie inside which, each target's excludes
 * (its direct children), what an import changes, what import does about a parent as it is,
 * and the scan task that carries the excludes to the agent (protocol v1, an optional field).
 */
import { describe, expect, it } from 'vitest';
import { isInside, Nesting, normalizePath, parentAction, planNesting, relativeExcludes, sameExcludes, MAX_EXCLUDES } from '../../src/lib/domain/nesting.ts';
import { randomUUID } from 'node:crypto';
import { parseImportList } from '../../src/lib/domain/import-list.ts';
import { scanTask } from '../../src/lib/protocol/build-tasks.ts';
import { parseMessage, PROTOCOL_VERSION, taskSchema } from '../../src/lib/protocol/tasks.ts';
import type { Copy, TargetCopies } from '../../src/lib/domain/copies.ts';
import type { Placement, ScanState } from '../../src/lib/domain/target.ts';

const at = (path: string, host = 'h') => ({ host, path });

describe('which target lies inside which', () => {
  it('only at a "/" boundary: siblings with a common prefix are not nested', () => {
    expect(isInside(at('/a/b/c'), at('/a/b'))).toBe(true);
    expect(isInside(at('/a/bc'), at('/a/b'))).toBe(false);
    expect(isInside(at('/a/b'), at('/a/bc'))).toBe(false);
    expect(isInside(at('/a/b'), at('/a/b'))).toBe(false);
    expect(isInside(at('/a'), at('/a/b'))).toBe(false);
    const n = new Nesting([at('/a/b'), at('/a/bc'), at('/a/b-c'), at('/a/b.c')]);
    expect(n.excludesOf(at('/a/b'))).toEqual([]);
    expect(n.parentOf(at('/a/bc'))).toBeUndefined();
  });

  it('not across hosts', () => {
    expect(isInside(at('/a/b', 'h1'), at('/a', 'h2'))).toBe(false);
    const n = new Nesting([at('/a', 'h1'), at('/a/b', 'h2')]);
    expect(n.excludesOf(at('/a', 'h1'))).toEqual([]);
    expect(n.parentOf(at('/a/b', 'h2'))).toBeUndefined();
  });

  it('trailing and repeated slashes are normalised, as the import list normalises them', () => {
    expect(normalizePath('/a//b/')).toBe('/a/b');
    expect(isInside(at('/a/b/'), at('/a/'))).toBe(true);
    expect(new Nesting([at('/a/'), at('/a//b/')]).excludesOf(at('/a'))).toEqual(['/a/b']);
    const list = parseImportList('/a/\n/a//b/\n', 'h');
    expect(list.entries.map((e) => e.path)).toEqual(['/a', '/a/b']);
    expect(planNesting([], list.entries).added.map((a) => [a.path, a.excludes])).toEqual([
      ['/a', ['/a/b']],
      ['/a/b', []],
    ]);
  });

  it('deep nesting: each target excludes its direct children only, sorted (nearest-ancestor semantics)', () => {
    const n = new Nesting([at('/r/x/y/z'), at('/r'), at('/r/x'), at('/r/x/y'), at('/r/b'), at('/r/x/q/deep')]);
    expect(n.excludesOf(at('/r'))).toEqual(['/r/b', '/r/x']);
    expect(n.excludesOf(at('/r/x'))).toEqual(['/r/x/q/deep', '/r/x/y']);
    expect(n.excludesOf(at('/r/x/y'))).toEqual(['/r/x/y/z']);
    expect(n.parentOf(at('/r/x/y/z'))).toBe('/r/x/y');
    expect(n.parentOf(at('/r/x/q/deep'))).toBe('/r/x');
    // a path that is not a target has a nearest parent too
    expect(n.parentOf(at('/r/x/y/z/w'))).toBe('/r/x/y/z');
  });
});

describe('what an import changes', () => {
  it('a new child: its known parent gains it; the grandparent is unchanged (the parent covers it)', () => {
    const plan = planNesting([at('/p'), at('/p/c')], [at('/p/c/g')]);
    expect(plan.added).toEqual([{ ...at('/p/c/g'), excludes: [], parent: { path: '/p/c', added: false } }]);
    expect(plan.parents).toEqual([{ ...at('/p/c'), before: [], after: ['/p/c/g'], added: ['/p/c/g'] }]);
  });

  it('a new parent of known targets: it excludes them, nothing known changes', () => {
    const plan = planNesting([at('/p/c1'), at('/p/c2'), at('/p/c2/g'), at('/q')], [at('/p')]);
    expect(plan.added).toEqual([{ ...at('/p'), excludes: ['/p/c1', '/p/c2'] }]);
    expect(plan.parents).toEqual([]);
  });

  it('a new target between a known parent and its child takes the child over', () => {
    const plan = planNesting([at('/p'), at('/p/m/c'), at('/p/o')], [at('/p/m')]);
    expect(plan.added).toEqual([{ ...at('/p/m'), excludes: ['/p/m/c'], parent: { path: '/p', added: false } }]);
    expect(plan.parents).toEqual([{ ...at('/p'), before: ['/p/m/c', '/p/o'], after: ['/p/m', '/p/o'], added: ['/p/m'] }]);
  });

  it('parent and child in one list: the child is left out from the first scan, no known target changes', () => {
    const plan = planNesting([at('/other')], [at('/p/c'), at('/p')]);
    expect(plan.added).toEqual([
      { ...at('/p/c'), excludes: [], parent: { path: '/p', added: true } },
      { ...at('/p'), excludes: ['/p/c'] },
    ]);
    expect(plan.parents).toEqual([]);
  });

  it('entries already known are not added again; another host is not affected', () => {
    const plan = planNesting([at('/p'), at('/p', 'h2')], [at('/p'), at('/p/c', 'h2')]);
    expect(plan.added.map((a) => `${a.host}:${a.path}`)).toEqual(['h2:/p/c']);
    expect(plan.parents.map((p) => `${p.host}:${p.path}`)).toEqual(['h2:/p']);
  });

  it('a target that would leave out too many nested targets is named', () => {
    const children = Array.from({ length: MAX_EXCLUDES + 1 }, (_, i) => at(`/big/c${i}`));
    const plan = planNesting(children, [at('/big')]);
    expect(plan.tooLarge).toEqual([{ ...at('/big'), count: MAX_EXCLUDES + 1, bytes: expect.any(Number) }]);
    expect(planNesting(children.slice(0, 10), [at('/big')]).tooLarge).toEqual([]);
  });
});

describe('excludes relative to a scan root', () => {
  it('only those strictly inside, relative, sorted, without repeats', () => {
    expect(relativeExcludes('/p', ['/p/z', '/p/a b', '/p/a b/', '/pq/x', '/other', '/p'])).toEqual(['a b', 'z']);
    expect(relativeExcludes('/p/', ['/p/-rf', "/p/it's $HOME"])).toEqual(['-rf', "it's $HOME"]);
    expect(relativeExcludes('/p', undefined)).toEqual([]);
    expect(sameExcludes(['/b', '/a'], ['/a', '/b', '/a'])).toBe(true);
    expect(sameExcludes(undefined, [])).toBe(true);
    expect(sameExcludes(['/a'], ['/a', '/b'])).toBe(false);
  });
});

describe('what import does about a known parent', () => {
  const now = '2026-01-01T00:00:00.000Z';
  const parent = (scan: ScanState, placements: Placement[], excludes?: string[]): TargetCopies => ({
    target: {
      id: 't-p',
      host: 'h',
      path: '/p',
      scan,
      copies: placements.map((_, i) => `pool${i}`),
      ...(excludes ? { excludes } : {}),
      importedAt: now,
      updatedAt: now,
      version: 3,
    },
    copies: placements.map(
      (placement, i): Copy => ({
        targetId: 't-p',
        pool: `pool${i}`,
        placement,
        ...(placement !== 'unassigned' ? { tapeName: `T${i}`, fileNumber: 1 } : {}),
        importedAt: now,
        updatedAt: now,
        version: 1,
      }),
    ),
  });
  it('by its scan and copies', () => {
    expect(parentAction(parent('pending', ['unassigned']), ['/p/c'])).toBe('scan-requested');
    expect(parentAction(parent('pending', ['assigned']), ['/p/c'])).toBe('scan-requested');
    expect(parentAction(parent('complete', ['unassigned']), ['/p/c'])).toBe('rescanned');
    expect(parentAction(parent('complete', ['assigned', 'archived']), ['/p/c'])).toBe('rescanned');
    expect(parentAction(parent('complete', ['confirm_failed']), ['/p/c'])).toBe('rescanned');
    expect(parentAction(parent('complete', ['archived', 'confirmed']), ['/p/c'])).toBe('on-tape');
    expect(parentAction(parent('complete', ['writing', 'unassigned']), ['/p/c'])).toBe('writing');
    expect(parentAction(parent('failed', ['unassigned']), ['/p/c'])).toBe('scan-failed');
    // already so (another import or a rescan saw the child first)
    expect(parentAction(parent('complete', ['unassigned'], ['/p/c']), ['/p/c'])).toBe('unchanged');
  });
});

describe('the scan task carries the excludes', () => {
  const issue = { taskId: randomUUID(), issuedAt: new Date().toISOString() };
  it('as an optional field of protocol v1, absent when there are none', () => {
    const plain = scanTask(issue, { id: 't-1', host: 'h', path: '/p' }, 's1');
    expect(plain).not.toHaveProperty('excludes');
    const nested = scanTask(issue, { id: 't-1', host: 'h', path: '/p', excludes: ['/p/a', '/p/b'] }, 's1');
    expect(nested).toMatchObject({ v: PROTOCOL_VERSION, kind: 'scan', target: { id: 't-1', host: 'h', path: '/p' }, excludes: ['/p/a', '/p/b'] });
    expect(nested.v).toBe(1);
    for (const t of [plain, nested]) expect(parseMessage(taskSchema, JSON.stringify(t))).toEqual({ ok: true, value: t });
    expect(scanTask(issue, { id: 't-1', host: 'h', path: '/p', excludes: [] }, 's1')).not.toHaveProperty('excludes');
  });
  it('refuses excludes that are not absolute paths', () => {
    const bad = { ...scanTask(issue, { id: 't-1', host: 'h', path: '/p' }, 's1'), excludes: ['p/a'] };
    expect(parseMessage(taskSchema, JSON.stringify(bad))).toMatchObject({ ok: false, error: expect.stringMatching(/excludes/) });
  });
});
