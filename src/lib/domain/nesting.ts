/**
 * Nested targets, as tapetown had them (its `parent_id`, and `tar --exclude=CHILD`): a target
 * lies inside another when both are on the same host and its path extends the other's at a
 * `/` boundary (`/a/b/c` is inside `/a/b`; `/a/bc` is not). A target's files are archived by
 * that target only: each target leaves out of its manifest, and so out of its tape files, the
 * subtree of every target inside it.
 *
 * Its `excludes` are its direct children: the nearest targets inside it, with no target in
 * between (nearest-ancestor semantics, tapetown's parent_id). A grandchild is left out of its
 * grandparent as part of its parent's subtree, so it is not listed there. Pure.
 */
import type { TargetCopies } from './copies.ts';
import { KEEPS_FILE_PLACEMENTS } from './target.ts';

export interface Located {
  host: string;
  path: string;
}

/** At most this many nested targets, and this many bytes of their paths, are left out of one target. */
export const MAX_EXCLUDES = 4096;
export const MAX_EXCLUDE_BYTES = 64 * 1024;

/** `/a//b/` -> `/a/b` (import lists are normalised already; this keeps the rule exact for any caller). */
export function normalizePath(path: string): string {
  return (
    '/' +
    path
      .split('/')
      .filter((s) => s !== '')
      .join('/')
  );
}

/** Whether `inner` lies strictly inside `outer` (same host, a longer path at a `/` boundary). */
export function isInside(inner: Located, outer: Located): boolean {
  if (inner.host !== outer.host) return false;
  const i = normalizePath(inner.path);
  const o = normalizePath(outer.path);
  return o === '/' ? i !== '/' : i.startsWith(`${o}/`);
}

const key = (t: Located) => `${t.host}\0${normalizePath(t.path)}`;

/** Targets by host and path: each one's nearest parent and direct children. */
export class Nesting {
  private readonly known = new Set<string>();
  private readonly children = new Map<string, string[]>();

  constructor(targets: Iterable<Located>) {
    const all = [...targets].map((t) => ({ host: t.host, path: normalizePath(t.path) }));
    for (const t of all) this.known.add(key(t));
    for (const t of all) {
      const parent = this.parentOf(t);
      if (parent === undefined) continue;
      const k = key({ host: t.host, path: parent });
      this.children.set(k, [...(this.children.get(k) ?? []), t.path]);
    }
    for (const list of this.children.values()) list.sort();
  }

  /** The path of the nearest target on the same host that `t` lies inside (whether or not `t` itself is a target). */
  parentOf(t: Located): string | undefined {
    const segments = normalizePath(t.path).split('/').slice(1);
    for (let n = segments.length - 1; n >= 1; n--) {
      const up = '/' + segments.slice(0, n).join('/');
      if (this.known.has(key({ host: t.host, path: up }))) return up;
    }
    return undefined;
  }

  /** The sorted paths of the targets directly inside `t`: its excludes. */
  excludesOf(t: Located): string[] {
    return [...(this.children.get(key(t)) ?? [])];
  }
}

/**
 * What import does about a known target that a new one lies directly inside (jobs/import-nesting.ts):
 * nothing (it leaves the new one out already), its pending scan requested again, a rescan, or
 * nothing now because it is on tape, being written, its scan failed, or it cannot be rescanned now.
 */
export const PARENT_ACTIONS = ['unchanged', 'scan-requested', 'rescanned', 'on-tape', 'writing', 'scan-failed', 'rescan-needed'] as const;
export type ParentAction = (typeof PARENT_ACTIONS)[number];

/**
 * What to do about a known target whose excludes should become `excludes` (its excludes always
 * describe its current scan, so they change only with a new scan): a pending scan is requested
 * again; a scan with a copy still to write is done again; a target on tape, being written or
 * whose scan failed is left as it is (its next rescan leaves the new ones out).
 */
export function parentAction(tc: TargetCopies, excludes: readonly string[]): ParentAction {
  const { target: t, copies } = tc;
  if (sameExcludes(t.excludes, excludes)) return 'unchanged';
  if (t.scan === 'pending') return 'scan-requested';
  if (t.scan === 'failed') return 'scan-failed';
  if (copies.some((c) => c.placement === 'writing')) return 'writing';
  if (copies.length && copies.every((c) => KEEPS_FILE_PLACEMENTS.includes(c.placement))) return 'on-tape';
  return 'rescanned';
}

export interface AddedTarget extends Located {
  /** Its excludes: the targets, known or added, directly inside it. */
  excludes: string[];
  /** The nearest target it lies inside, and whether that one is added too (then it leaves this one out from its first scan). */
  parent?: { path: string; added: boolean };
}

export interface ChangedParent extends Located {
  /** Its direct children without the added targets, and with them (its excludes from now on). */
  before: string[];
  after: string[];
  /** The added targets among `after`: why it changes. */
  added: string[];
}

export interface NestingPlan {
  added: AddedTarget[];
  /** Known targets whose direct children change: they must leave the added targets out from their next scan. */
  parents: ChangedParent[];
  /** Targets that would leave out more than MAX_EXCLUDES paths or MAX_EXCLUDE_BYTES bytes of them. */
  tooLarge: (Located & { count: number; bytes: number })[];
}

const same = (a: readonly string[], b: readonly string[]) => a.length === b.length && a.every((x, i) => x === b[i]);

/**
 * What adding `added` to the `known` targets does: each added target's excludes and nearest
 * parent, and the known targets whose excludes change (a new child, or a new target between
 * them and a child of theirs, which then replaces that child). Added targets already known are
 * ignored.
 */
export function planNesting(known: readonly Located[], added: readonly Located[]): NestingPlan {
  const before = new Nesting(known);
  const knownKeys = new Set(known.map(key));
  const fresh = added.filter((t) => !knownKeys.has(key(t))).map((t) => ({ host: t.host, path: normalizePath(t.path) }));
  const freshKeys = new Set(fresh.map(key));
  const after = new Nesting([...known, ...fresh]);
  const plan: NestingPlan = { added: [], parents: [], tooLarge: [] };
  const check = (t: Located, excludes: string[]) => {
    const bytes = excludes.reduce((n, p) => n + Buffer.byteLength(p) + 1, 0);
    if (excludes.length > MAX_EXCLUDES || bytes > MAX_EXCLUDE_BYTES) plan.tooLarge.push({ host: t.host, path: t.path, count: excludes.length, bytes });
  };
  const parents = new Map<string, Located>();
  for (const t of fresh) {
    const excludes = after.excludesOf(t);
    check(t, excludes);
    const parent = after.parentOf(t);
    const entry: AddedTarget = { ...t, excludes };
    if (parent !== undefined) {
      const p = { host: t.host, path: parent };
      entry.parent = { path: parent, added: freshKeys.has(key(p)) };
      if (!entry.parent.added) parents.set(key(p), p);
    }
    plan.added.push(entry);
  }
  for (const p of parents.values()) {
    const was = before.excludesOf(p);
    const now = after.excludesOf(p);
    if (same(was, now)) continue;
    check(p, now);
    plan.parents.push({ ...p, before: was, after: now, added: now.filter((x) => freshKeys.has(key({ host: p.host, path: x }))) });
  }
  plan.parents.sort((a, b) => (key(a) < key(b) ? -1 : key(a) > key(b) ? 1 : 0));
  return plan;
}

/**
 * The excludes of a target that lie inside `root`, relative to it (`/a/b` under `/a` -> `b`),
 * sorted and without repeats: what a scan of `root` skips, each name with its whole subtree.
 */
export function relativeExcludes(root: string, excludes: readonly string[] | undefined): string[] {
  const r = normalizePath(root);
  const prefix = r === '/' ? '/' : `${r}/`;
  const out = new Set<string>();
  for (const x of excludes ?? []) {
    const p = normalizePath(x);
    if (p.startsWith(prefix) && p.length > prefix.length) out.add(p.slice(prefix.length));
  }
  return [...out].sort();
}

/** Whether two exclude lists say the same (order and repeats aside). */
export function sameExcludes(a: readonly string[] | undefined, b: readonly string[] | undefined): boolean {
  return same([...new Set(a ?? [])].sort(), [...new Set(b ?? [])].sort());
}
