/**
 * Reading back a tape file tapetown wrote (docs/tape-format.md, "Tapetown tapes"): a plain GNU
 * tar of `/abs/target` with members named `abs/target/...`, no header or trailer of ours. The
 * read checks what tapetown kept (every file's md5 against its files table; a file missing from
 * the tape or on the tape but not in the table fails) and measures what it never kept: exact
 * sizes, modes, mtimes, symlink targets and the SHA-256 of every file, the tape file's bytes and
 * its SHA-256. A target adopted without a file list takes its manifest from the tape (baseline).
 */
import { createHash, type Hash } from 'node:crypto';
import { linkTargetFields, pathFields, pathKey, type ManifestEntry } from '../domain/manifest.ts';
import { memberKind, TarParser, type TarMember } from '../tar/parse.ts';

export interface TapetownExpectation {
  /** The target's absolute path: every member is under it, without the leading `/`. */
  targetPath: string;
  /** Nested targets: their subtrees belong to their own tape files and are not checked here. */
  excludes: readonly string[];
  /** The adopted manifest (md5s from tapetown's files table); undefined: no file list, take a baseline. */
  adopted?: readonly ManifestEntry[];
}

export interface TapetownReadReport {
  ok: boolean;
  bad: { path: string; reason: string }[];
  /** The exact manifest read from tape, in tape order: what the catalog records once confirmed. */
  entries: ManifestEntry[];
  fileCount: number;
  totalBytes: number;
  /** Bytes of the tape file and their SHA-256. */
  tapeBytes: number;
  sha256: string;
  baseline: boolean;
  /** Members under a nested target, left to that target's own file. */
  ignored: number;
  /** Why this is not the expected tape file at all (its first member is elsewhere): nothing said about the copy. */
  notThisFile?: string;
}

const MAX_BAD = 1000;

/** A member's name relative to the target (`abs/target/a/b/` -> `a/b`, the target itself -> empty); undefined when not under it. */
export function tapetownRelativeName(name: Buffer, targetPath: string): Buffer | undefined {
  const prefix = Buffer.from(targetPath.slice(1));
  if (name.length < prefix.length || !name.subarray(0, prefix.length).equals(prefix)) return undefined;
  let rel = name.subarray(prefix.length);
  if (rel.length && rel[0] !== 0x2f) return undefined; // abs/target2 is not under abs/target
  while (rel.length && rel[0] === 0x2f) rel = rel.subarray(1);
  while (rel.length && rel[rel.length - 1] === 0x2f) rel = rel.subarray(0, rel.length - 1);
  return rel;
}

export async function readTapetownFile(
  blocks: AsyncIterable<Buffer>,
  expect: TapetownExpectation,
  opts: { signal?: AbortSignal; onProgress?: (bytes: number) => void } = {},
): Promise<TapetownReadReport> {
  const prefix = `${expect.targetPath.slice(1)}/`;
  const excludes = expect.excludes.map((p) => `${p.slice(1)}/`);
  const adopted = expect.adopted?.length ? new Map(expect.adopted.map((e) => [pathKey(e), e])) : undefined;
  const bad: TapetownReadReport['bad'] = [];
  const fail = (path: string, reason: string) => bad.length < MAX_BAD && bad.push({ path, reason });
  const entries: ManifestEntry[] = [];
  const leaders = new Map<string, ManifestEntry>();
  let groups = 0;
  let ignored = 0;
  let first: string | undefined;
  let current: { entry: ManifestEntry; md5: Hash; sha: Hash } | undefined;

  const memberStart = (m: TarMember) => {
    const raw = m.name.toString('latin1');
    first ??= raw;
    const name = raw.endsWith('/') ? raw.slice(0, -1) : raw;
    if (`${name}/` === prefix) return; // the target directory itself
    if (!`${name}/`.startsWith(prefix)) return void fail(raw, `member is not under ${expect.targetPath}`);
    if (excludes.some((x) => `${name}/`.startsWith(x))) return void ignored++;
    const rel = m.name.subarray(prefix.length, m.name.length - (raw.endsWith('/') ? 1 : 0));
    const kind = memberKind(m.typeflag);
    const base = { ...pathFields(rel), size: m.size, mtimeMs: Math.round(m.mtime * 1000), mode: m.mode & 0o7777 };
    if (kind === 'dir') entries.push({ ...base, type: 'dir', size: 0 });
    else if (kind === 'symlink') entries.push({ ...base, type: 'symlink', size: 0, ...linkTargetFields(m.linkname) });
    else if (kind === 'file') current = { entry: { ...base, type: 'file' }, md5: createHash('md5'), sha: createHash('sha256') };
    else if (kind === 'hardlink') {
      const leader = leaders.get(m.linkname.subarray(prefix.length).toString('base64'));
      if (!leader) return void fail(base.path, `hard link to ${m.linkname.toString('latin1')}, which is not earlier in this tape file`);
      leader.linkGroup ??= ++groups;
      entries.push({ ...base, type: 'file', size: leader.size, sha256: leader.sha256!, md5: leader.md5!, linkGroup: leader.linkGroup });
    } else fail(base.path, `a special file (tar type ${m.typeflag}): not restorable as a file`);
  };
  const parser = new TarParser({
    member: memberStart,
    data: (chunk) => {
      current?.md5.update(chunk);
      current?.sha.update(chunk);
    },
    memberEnd: () => {
      if (!current) return;
      const e: ManifestEntry = { ...current.entry, sha256: current.sha.digest('hex'), md5: current.md5.digest('hex') };
      entries.push(e);
      leaders.set(pathKey(e), e);
      current = undefined;
    },
    problem: (offset, reason) => fail(`(offset ${offset})`, `damaged tar header: ${reason}`),
    end: () => undefined,
  });

  const whole = createHash('sha256');
  let tapeBytes = 0;
  for await (const block of blocks) {
    opts.signal?.throwIfAborted();
    whole.update(block);
    tapeBytes += block.length;
    parser.push(block);
    opts.onProgress?.(tapeBytes);
  }
  const finish = parser.finish();
  if (finish.state === 'truncated') fail('(end)', 'the tape file ends inside a member: a partial tar (an archive that did not complete)');
  else if (finish.state === 'no-end-marker') fail('(end)', 'no end-of-archive marker: the tar was cut short');

  if (first !== undefined && !first.startsWith(prefix) && `${first}` !== prefix.slice(0, -1))
    return report(
      false,
      [],
      entries,
      tapeBytes,
      whole,
      ignored,
      !adopted,
      `its first member is ${first}, not under ${expect.targetPath}: another target's file, or another tape`,
    );
  if (first === undefined) fail('(start)', 'the tape file holds no tar member');
  if (adopted) compare(entries, adopted, fail);
  return report(bad.length === 0, bad, entries, tapeBytes, whole, ignored, !adopted);
}

/** md5 of every file against tapetown's files table; a file on one side only fails. */
function compare(entries: readonly ManifestEntry[], adopted: Map<string, ManifestEntry>, fail: (path: string, reason: string) => void): void {
  const seen = new Set<string>();
  for (const e of entries) {
    if (e.type === 'dir') continue;
    const key = pathKey(e);
    const want = adopted.get(key);
    seen.add(key);
    if (!want) fail(e.path, "on tape but not in tapetown's files table");
    else if (want.type === 'symlink' && e.type !== 'symlink') fail(e.path, `tapetown recorded a symlink, the tape holds a ${e.type}`);
    else if (want.type === 'file' && e.type !== 'file') fail(e.path, `tapetown recorded a file, the tape holds a ${e.type}`);
    else if (want.md5 && e.md5 !== want.md5) fail(e.path, `md5 mismatch: tapetown recorded ${want.md5}, the tape gives ${e.md5}`);
  }
  for (const [key, want] of adopted) if (!seen.has(key)) fail(want.path, "in tapetown's files table but missing from the tape file");
}

function report(
  ok: boolean,
  bad: TapetownReadReport['bad'],
  entries: ManifestEntry[],
  tapeBytes: number,
  whole: Hash,
  ignored: number,
  baseline: boolean,
  notThisFile?: string,
): TapetownReadReport {
  const files = entries.filter((e) => e.type === 'file');
  const groups = new Set<number>();
  let totalBytes = 0;
  for (const f of files) {
    if (f.linkGroup !== undefined && groups.has(f.linkGroup)) continue; // a hard link adds no bytes
    if (f.linkGroup !== undefined) groups.add(f.linkGroup);
    totalBytes += f.size;
  }
  return {
    ok,
    bad,
    entries,
    fileCount: files.length,
    totalBytes,
    tapeBytes,
    sha256: whole.digest('hex'),
    baseline,
    ignored,
    ...(notThisFile ? { notThisFile } : {}),
  };
}
