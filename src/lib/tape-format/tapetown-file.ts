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
  /** Special files (fifos, devices) on tape: not archived by policy, so not checked or restored. */
  skipped: string[];
  /** Why this is not the expected tape file at all (its first member is elsewhere): nothing said about the copy. */
  notThisFile?: string;
}

const MAX_BAD = 1000;

/** Whether member `name` is `dir` or lies under it (bytes; a trailing `/` allowed). */
function isUnder(name: Buffer, dir: Buffer): boolean {
  if (name.length < dir.length || !name.subarray(0, dir.length).equals(dir)) return false;
  return name.length === dir.length || name[dir.length] === 0x2f;
}

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
  const excludes = expect.excludes.map((p) => Buffer.from(p.slice(1)));
  const adopted = expect.adopted?.length ? new Map(expect.adopted.map((e) => [pathKey(e), e])) : undefined;
  const bad: TapetownReadReport['bad'] = [];
  const fail = (path: string, reason: string) => bad.length < MAX_BAD && bad.push({ path, reason });
  const entries: ManifestEntry[] = [];
  const leaders = new Map<string, ManifestEntry>();
  let groups = 0;
  let ignored = 0;
  const skipped: string[] = [];
  /** The first member: GNU tar writes the target directory itself first (`abs/target/`). */
  let first: { name: string; root: boolean } | undefined;
  let current: { entry: ManifestEntry; md5: Hash; sha: Hash } | undefined;

  const memberStart = (m: TarMember) => {
    const rel = tapetownRelativeName(m.name, expect.targetPath);
    first ??= { name: m.name.toString('latin1'), root: rel?.length === 0 && memberKind(m.typeflag) === 'dir' };
    if (rel === undefined) return void fail(m.name.toString('latin1'), `member is not under ${expect.targetPath}`);
    if (rel.length === 0) return; // the target directory itself
    if (excludes.some((x) => isUnder(m.name, x))) return void ignored++;
    const kind = memberKind(m.typeflag);
    const base = { ...pathFields(rel), size: m.size, mtimeMs: Math.round(m.mtime * 1000), mode: m.mode & 0o7777 };
    if (kind === 'dir') entries.push({ ...base, type: 'dir', size: 0 });
    else if (kind === 'symlink') entries.push({ ...base, type: 'symlink', size: 0, ...linkTargetFields(m.linkname) });
    else if (kind === 'file') current = { entry: { ...base, type: 'file' }, md5: createHash('md5'), sha: createHash('sha256') };
    else if (kind === 'hardlink') {
      const to = tapetownRelativeName(m.linkname, expect.targetPath);
      const leader = to && leaders.get(pathKey(pathFields(to)));
      if (!leader) return void fail(base.path, `hard link to ${m.linkname.toString('latin1')}, which is not earlier in this tape file`);
      leader.linkGroup ??= ++groups;
      entries.push({ ...base, type: 'file', size: leader.size, sha256: leader.sha256!, md5: leader.md5!, linkGroup: leader.linkGroup });
    } else if (skipped.length < MAX_BAD) skipped.push(base.path); // a fifo or device: skipped by policy, as a scan skips it
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

  const read = { entries, tapeBytes, sha256: whole.digest('hex'), ignored, skipped, baseline: !adopted };
  if (first && !first.root)
    return report(false, [], read, `its first member is ${first.name}, not the directory ${expect.targetPath} itself: another target's file, or another tape`);
  if (first === undefined) fail('(start)', 'the tape file holds no tar member');
  if (adopted) compare(entries, adopted, fail);
  return report(bad.length === 0, bad, read);
}

/**
 * Every entry against the expected manifest: tapetown's (md5 of each file) or, read again after
 * a confirm here, the one measured then (type, size and SHA-256 too). Directories are not in
 * tapetown's files table and are not compared; a file or link on one side only fails.
 */
function compare(entries: readonly ManifestEntry[], expected: Map<string, ManifestEntry>, fail: (path: string, reason: string) => void): void {
  const seen = new Set<string>();
  for (const e of entries) {
    const key = pathKey(e);
    seen.add(key);
    if (e.type === 'dir') continue;
    const want = expected.get(key);
    if (!want || want.type === 'dir') fail(e.path, "on tape but not in the target's file list");
    else if (want.type !== e.type) fail(e.path, `the file list has a ${want.type}, the tape holds a ${e.type}`);
    else if (want.md5 && e.md5 !== want.md5) fail(e.path, `md5 mismatch: tapetown recorded ${want.md5}, the tape gives ${e.md5}`);
    else if (want.sha256 && e.sha256 !== want.sha256) fail(e.path, `checksum mismatch: the catalog has SHA-256 ${want.sha256}, the tape gives ${e.sha256}`);
    else if (!want.approximate && want.size !== e.size) fail(e.path, `size mismatch: the catalog has ${want.size} bytes, the tape ${e.size}`);
  }
  for (const [key, want] of expected) if (want.type !== 'dir' && !seen.has(key)) fail(want.path, "in the target's file list but missing from the tape file");
}

type Read = Pick<TapetownReadReport, 'entries' | 'tapeBytes' | 'sha256' | 'ignored' | 'skipped' | 'baseline'>;

function report(ok: boolean, bad: TapetownReadReport['bad'], read: Read, notThisFile?: string): TapetownReadReport {
  const files = read.entries.filter((e) => e.type === 'file');
  const groups = new Set<number>();
  let totalBytes = 0;
  for (const f of files) {
    if (f.linkGroup !== undefined && groups.has(f.linkGroup)) continue; // a hard link adds no bytes
    if (f.linkGroup !== undefined) groups.add(f.linkGroup);
    totalBytes += f.size;
  }
  return { ok, bad, ...read, fileCount: files.length, totalBytes, ...(notThisFile ? { notThisFile } : {}) };
}
