/**
 * What `where_is PATTERN` looks for. Three kinds, told apart by the pattern itself:
 *
 *   fits.dat            a base name: every file of that name, in any directory of any target
 *   raw/2024/fits.dat   a relative path (has a "/"): exactly that name under a target's root
 *   *.fits, raw/*.dat   a glob (has * ? [ or {): without "/" it matches base names, with "/"
 *                       whole relative paths (minimatch, dot files included)
 *
 * `key` is the literal base name the name index is looked up by (the pattern's last
 * component when it has no glob character); without one, the whole index is read.
 */
import { minimatch } from 'minimatch';
import type { ManifestEntry } from './manifest.ts';

export type PatternKind = 'name' | 'path' | 'glob';

export interface NamePattern {
  kind: PatternKind;
  /** The literal base name to look up, when the last component is not a glob. */
  key?: string;
  matches: (e: Pick<ManifestEntry, 'path'>) => boolean;
}

const GLOB_CHARS = /[*?[\]{}]/;

/** The last component of a relative path. */
export function baseName(path: string): string {
  const i = path.lastIndexOf('/');
  return i < 0 ? path : path.slice(i + 1);
}

/** Why a pattern cannot be looked up, or null. */
export function invalidPattern(pattern: string): string | null {
  if (!pattern.trim()) return 'it is empty';
  if (pattern.includes('\0')) return 'it contains a NUL byte';
  if (pattern.startsWith('/')) return 'it is absolute: give the name relative to its target\'s root (as "targets" and "tape_detail -v" print it)';
  if (pattern.endsWith('/')) return 'it ends with "/": name a file, or use a glob such as "dir/*"';
  if (pattern.split('/').some((p) => p === '..')) return 'it has a ".." component';
  return null;
}

export function parseNamePattern(raw: string): NamePattern | { error: string } {
  const bad = invalidPattern(raw);
  if (bad) return { error: `pattern "${raw}" cannot be looked up: ${bad}.` };
  const pattern = raw.replace(/^(\.\/)+/, '');
  const last = baseName(pattern);
  const literalKey = GLOB_CHARS.test(last) ? undefined : last;
  if (!GLOB_CHARS.test(pattern)) {
    if (!pattern.includes('/')) return { kind: 'name', key: pattern, matches: (e) => baseName(e.path) === pattern };
    return { kind: 'path', key: last, matches: (e) => e.path === pattern };
  }
  const byName = !pattern.includes('/');
  const opts = { dot: true, nonegate: true, nocomment: true };
  return {
    kind: 'glob',
    ...(literalKey !== undefined ? { key: literalKey } : {}),
    matches: (e) => minimatch(byName ? baseName(e.path) : e.path, pattern, opts),
  };
}
