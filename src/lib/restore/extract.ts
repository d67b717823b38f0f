/**
 * Restores the selected members of one target's tape file into a destination, in one pass
 * front to back. Every file's SHA-256 is computed while it is written (under a temporary
 * name) and compared with the catalog's manifest; only a match is renamed into place, so a
 * file is either restored and verified or reported as failed by name, never half there.
 *
 * The manifest is read alongside the tape (the writer writes members in manifest order), so
 * memory does not grow with the target: only directories, symlinks and hard link groups are
 * remembered. Safety: a member whose name is absolute, has "." or ".." components or lies
 * outside data/ is refused; nothing is written through a symlink, whether the tape file made
 * it or it was already in the destination (symlinks are created last, after every file); an
 * existing file that differs is left alone unless `overwrite`.
 */
import { createHash, type Hash } from 'node:crypto';
import { pathBytes, pathFields, linkTargetBytes, type ManifestEntry } from '../domain/manifest.ts';
import { ancestors, isSelected, noCounts, unsafeMemberName, type RestoreCounts } from '../domain/restore.ts';
import { dataRelativeName, HEADER_MEMBER, TRAILER_MEMBER } from '../tape-format/format.ts';
import { tapetownRelativeName } from '../tape-format/tapetown-file.ts';
import { memberKind, TarParser, type TarMember, type TarSink } from '../tar/parse.ts';
import { readAhead } from '../concurrency.ts';
import { errorMessage } from '../errors.ts';
import type { EntryMeta, PartFile, RestoreDestination } from './destination.ts';

/** How far ahead in the manifest a member is looked for before it counts as not in it. */
const LOOKAHEAD = 64;

export interface RestoreFailure {
  path: string;
  rawPath?: string;
  reason: string;
}

export interface ExtractOptions {
  targetId: string;
  blocks: AsyncIterable<Buffer>;
  /** The manifest of the scan written to this tape file, in order. */
  manifest: AsyncIterable<ManifestEntry>;
  /** Selected names (relative, normalized); empty: the whole target, its root's mode and mtime included. */
  selection: readonly Buffer[];
  /**
   * Hard link groups with a selected name whose first name (the one with the data on tape) is
   * not selected: the data goes to this selected name (from `linkGroupsToRedirect`).
   */
  redirectedGroups?: ReadonlyMap<number, Buffer>;
  dest: RestoreDestination;
  overwrite: boolean;
  /** Restore uid/gid from the manifest (the agent runs as root). */
  owners: boolean;
  /** A tape file tapetown wrote: members are `abs/target/...` (the target's path without its leading `/`), no header or trailer. */
  tapetown?: { targetPath: string };
  onFailure(f: RestoreFailure): void;
  onProgress?(bytesRead: number): void;
  signal?: AbortSignal;
}

class Refused extends Error {}

type Event = { t: 'member'; m: TarMember } | { t: 'data'; chunk: Buffer } | { t: 'end' } | { t: 'problem'; offset: number; reason: string };

/** Turns the push parser's callbacks into a list of events handled after each block. */
class EventSink implements TarSink {
  events: Event[] = [];
  member(m: TarMember): void {
    this.events.push({ t: 'member', m });
  }
  data(chunk: Buffer): void {
    this.events.push({ t: 'data', chunk });
  }
  memberEnd(): void {
    this.events.push({ t: 'end' });
  }
  problem(offset: number, reason: string): void {
    this.events.push({ t: 'problem', offset, reason });
  }
  end(): void {}
}

type Current =
  | { kind: 'skip' }
  | { kind: 'file'; rel: Buffer; entry: ManifestEntry; part: PartFile; hash: Hash; read: number; group?: number }
  | { kind: 'drain'; rel: Buffer; entry: ManifestEntry; read: number };

const who = (rel: Buffer) => {
  const f = pathFields(rel);
  return f.rawPath !== undefined ? { path: f.path, rawPath: f.rawPath } : { path: f.path };
};
const keyOf = (b: Buffer) => b.toString('latin1');

/** The hard link groups whose data must go to a selected name other than the group's first (pre-pass over the manifest). */
export async function linkGroupsToRedirect(manifest: AsyncIterable<ManifestEntry>, selection: readonly Buffer[]): Promise<Map<number, Buffer>> {
  const leaderSelected = new Map<number, boolean>();
  const redirect = new Map<number, Buffer>();
  if (selection.length === 0) return redirect;
  for await (const e of manifest) {
    if (e.linkGroup === undefined || e.type !== 'file') continue;
    const rel = pathBytes(e);
    const selected = isSelected(rel, selection);
    if (!leaderSelected.has(e.linkGroup)) leaderSelected.set(e.linkGroup, selected);
    else if (selected && !leaderSelected.get(e.linkGroup) && !redirect.has(e.linkGroup)) redirect.set(e.linkGroup, rel);
  }
  return redirect;
}

export async function extractTargetFile(o: ExtractOptions): Promise<RestoreCounts> {
  const counts = noCounts();
  const fail = (rel: Buffer | string, reason: string) => {
    counts.failed++;
    o.onFailure({ ...(typeof rel === 'string' ? { path: rel } : who(rel)), reason });
  };
  const meta = (e: ManifestEntry): EntryMeta => ({
    mode: e.mode,
    mtimeMs: e.mtimeMs,
    ...(o.owners && e.uid !== undefined && e.gid !== undefined ? { uid: e.uid, gid: e.gid } : {}),
  });
  const { dest } = o;
  const selected = o.selection.map(() => false);
  const select = (rel: Buffer) => {
    if (o.selection.length === 0) return true;
    let any = false;
    o.selection.forEach((s, i) => {
      if (isSelected(rel, [s])) any = selected[i] = true;
    });
    return any;
  };

  // The manifest, read alongside the tape.
  const it = o.manifest[Symbol.asyncIterator]();
  const ahead: ManifestEntry[] = [];
  let manifestDone = false;
  const missing = (e: ManifestEntry) => {
    const rel = pathBytes(e);
    if (select(rel)) fail(rel, 'missing from the tape file');
  };
  const nextEntry = async (rel: Buffer): Promise<ManifestEntry | undefined> => {
    for (let i = 0; i < LOOKAHEAD; i++) {
      if (i >= ahead.length) {
        if (manifestDone) return undefined;
        const r = await it.next();
        if (r.done) {
          manifestDone = true;
          return undefined;
        }
        ahead.push(r.value);
      }
      const e = ahead[i]!;
      if (pathBytes(e).equals(rel)) {
        const before = ahead.splice(0, i + 1);
        for (const m of before.slice(0, i)) missing(m);
        return e;
      }
    }
    return undefined;
  };

  // What the tape file made or the destination holds, for the safety checks.
  const archiveSymlinks = new Set<string>();
  const checkedDirs = new Set<string>();
  /** Directories this restore created as parents before their own member came. */
  const madeDirs = new Set<string>();
  const dirs: { rel: Buffer; meta: EntryMeta }[] = [];
  const symlinks: { rel: Buffer; target: Buffer; meta: EntryMeta }[] = [];
  /** Where each hard link group's data was restored (or found identical). */
  const groups = new Map<number, Buffer>();
  let root: EntryMeta | undefined;

  /** Every ancestor of `rel` is a real directory under the root (created when missing). */
  const ensureParents = async (rel: Buffer) => {
    for (const a of ancestors(rel)) {
      const k = keyOf(a);
      if (archiveSymlinks.has(k))
        throw new Refused(`its parent ${JSON.stringify(pathFields(a).path)} is a symlink in the tape file: writing through it could leave the destination`);
      if (checkedDirs.has(k)) continue;
      const st = await dest.stat(a);
      if (!st) {
        await dest.mkdir(a);
        madeDirs.add(k);
      } else if (st.kind !== 'dir')
        throw new Refused(
          `${JSON.stringify(pathFields(a).path)} in the destination is ${st.kind === 'symlink' ? 'a symlink' : 'not a directory'}: not writing through it`,
        );
      checkedDirs.add(k);
    }
  };

  let cur: Current = { kind: 'skip' };
  let members = 0;

  const onMember = async (m: TarMember) => {
    members++;
    cur = { kind: 'skip' };
    const name = m.name;
    const nameStr = name.toString('utf8');
    if (!o.tapetown && (nameStr === HEADER_MEMBER || nameStr === TRAILER_MEMBER) && m.typeflag === '0') return;
    const rel = o.tapetown ? tapetownRelativeName(name, o.tapetown.targetPath) : dataRelativeName(name);
    if (!rel) {
      fail(
        name,
        o.tapetown
          ? `refused: a member not under ${o.tapetown.targetPath} (not part of the target)`
          : 'refused: a member outside data/ (not part of the target)',
      );
      return;
    }
    if (rel.length === 0) {
      if (m.typeflag === '5') root = { mode: m.mode, mtimeMs: m.mtime * 1000 };
      return;
    }
    const unsafe = unsafeMemberName(rel);
    if (unsafe) {
      fail(rel, `refused: ${unsafe}`);
      return;
    }
    const entry = await nextEntry(rel);
    if (!entry) {
      if (select(rel)) fail(rel, "refused: not in the catalog's manifest of this tape file");
      return;
    }
    if (m.typeflag === '2') archiveSymlinks.add(keyOf(rel));
    const redirectedHere = entry.linkGroup !== undefined && o.redirectedGroups?.get(entry.linkGroup)?.equals(rel) === true;
    const leaderOfRedirect = entry.linkGroup !== undefined && !groups.has(entry.linkGroup) && o.redirectedGroups?.has(entry.linkGroup) === true;
    const wanted = select(rel);
    if (!wanted && !leaderOfRedirect) return;
    const kind = memberKind(m.typeflag);
    const expected = entry.type === 'file' && entry.linkGroup !== undefined && groups.has(entry.linkGroup) ? 'hardlink' : entry.type;
    // A hard link whose first name failed: the group has no data here.
    if (kind === 'hardlink' && entry.linkGroup !== undefined && !groups.has(entry.linkGroup)) {
      if (!redirectedHere) fail(rel, 'not restored: the first name of its hard link group, which holds the data, was not restored');
      return;
    }
    if (kind === 'hardlink' && redirectedHere) return; // its data was restored under this name already
    if (kind !== expected) {
      fail(rel, `refused: a ${kind} on tape, a ${expected === 'hardlink' ? 'hard link' : expected} in the catalog's manifest`);
      return;
    }
    try {
      if (kind === 'dir') {
        await ensureParents(rel);
        const st = await dest.stat(rel);
        if (st && st.kind !== 'dir') throw new Refused(`a ${st.kind === 'symlink' ? 'symlink' : 'file'} is in the way in the destination`);
        if (!st) await dest.mkdir(rel);
        checkedDirs.add(keyOf(rel));
        dirs.push({ rel, meta: meta(entry) });
        if (st && !madeDirs.has(keyOf(rel))) counts.skipped++;
        else counts.restored++;
      } else if (kind === 'symlink') {
        symlinks.push({ rel, target: linkTargetBytes(entry), meta: meta(entry) });
      } else if (kind === 'hardlink') {
        await ensureParents(rel);
        const leader = groups.get(entry.linkGroup!)!;
        const [st, lst] = await Promise.all([dest.stat(rel), dest.stat(leader)]);
        if (st && lst && st.inode === lst.inode) counts.skipped++;
        else {
          if (st && (st.kind === 'dir' || !o.overwrite)) throw new Refused(existsReason(st.kind));
          await dest.link(leader, rel, st !== undefined);
          counts.restored++;
        }
      } else {
        // A file: to its own name, or to the selected name of its group.
        const target = leaderOfRedirect && !wanted ? o.redirectedGroups!.get(entry.linkGroup!)! : rel;
        await ensureParents(target);
        const st = await dest.stat(target);
        if (st?.kind === 'dir') throw new Refused('a directory is in the way in the destination');
        if (st?.kind === 'file' && st.size === entry.size && (await dest.sha256(target)) === entry.sha256) {
          await dest.setMeta(target, meta(entry), 'file');
          counts.skipped++;
          if (entry.linkGroup !== undefined) groups.set(entry.linkGroup, target);
          cur = { kind: 'drain', rel: target, entry, read: 0 };
          return;
        }
        if (st && !o.overwrite) throw new Refused(existsReason(st.kind));
        cur = {
          kind: 'file',
          rel: target,
          entry,
          part: await dest.createFile(target, entry.size, meta(entry)),
          hash: createHash('sha256'),
          read: 0,
          ...(entry.linkGroup !== undefined ? { group: entry.linkGroup } : {}),
        };
      }
    } catch (e) {
      if (e instanceof Refused) fail(rel, `not restored: ${e.message}`);
      else fail(rel, `not restored: ${errorMessage(e)}`);
    }
  };

  const onData = async (chunk: Buffer) => {
    const c = cur;
    if (c.kind === 'file') {
      c.read += chunk.length;
      c.hash.update(chunk);
      try {
        await c.part.write(chunk);
      } catch (e) {
        await c.part.abort().catch(() => undefined);
        fail(c.rel, `not restored: writing failed: ${errorMessage(e)}`);
        cur = { kind: 'skip' };
      }
    } else if (c.kind === 'drain') c.read += chunk.length;
  };

  const onEnd = async () => {
    const c = cur;
    cur = { kind: 'skip' };
    if (c.kind !== 'file') return;
    const sha = c.hash.digest('hex');
    if (c.read !== c.entry.size || sha !== c.entry.sha256) {
      await c.part.abort();
      fail(
        c.rel,
        c.read !== c.entry.size
          ? `failed: ${c.read} bytes on tape, ${c.entry.size} in the catalog; not restored`
          : `failed: checksum mismatch (SHA-256 read ${sha}, catalog ${c.entry.sha256}); not restored, restore it from another copy with --from`,
      );
      return;
    }
    try {
      await c.part.commit();
      counts.restored++;
      counts.bytes += c.read;
      if (c.group !== undefined) groups.set(c.group, c.rel);
    } catch (e) {
      await c.part.abort().catch(() => undefined);
      fail(c.rel, `not restored: ${errorMessage(e)}`);
    }
  };

  const sink = new EventSink();
  const parser = new TarParser(sink);
  await dest.prepare();
  let total = 0;
  try {
    // The next blocks are read from tape while this one's files are written.
    for await (const block of readAhead(o.blocks, 8)) {
      if (o.signal?.aborted) throw o.signal.reason ?? new Error('aborted');
      total += block.length;
      parser.push(block);
      const events = sink.events;
      sink.events = [];
      for (const ev of events) {
        if (ev.t === 'member') await onMember(ev.m);
        else if (ev.t === 'data') await onData(ev.chunk);
        else if (ev.t === 'end') await onEnd();
        else fail(`(tar at byte ${ev.offset})`, `a damaged tar header, skipped: ${ev.reason}`);
      }
      o.onProgress?.(total);
    }
  } finally {
    const c = cur as Current;
    if (c.kind === 'file') await c.part.abort().catch(() => undefined);
  }
  const fin = parser.finish();
  if (fin.state === 'truncated') {
    const c = cur as Current;
    if (c.kind === 'file') {
      await c.part.abort();
      fail(c.rel, `failed: the tape file ends inside it (${c.read} of ${c.entry.size} bytes); not restored`);
    } else fail('(tar)', 'the tape file ends inside a tar header: it is truncated');
  }
  if (members === 0) fail('(tar)', 'the tape file is empty');
  // The rest of the manifest was not on tape.
  for (const e of ahead) missing(e);
  if (!manifestDone) for (let r = await it.next(); !r.done; r = await it.next()) missing(r.value);

  // Symlinks last: no member can be written through one of them.
  for (const s of symlinks) {
    try {
      await ensureParents(s.rel);
      const st = await dest.stat(s.rel);
      if (st?.kind === 'symlink' && (await dest.readlink(s.rel)).equals(s.target)) counts.skipped++;
      else {
        if (st && (st.kind === 'dir' || !o.overwrite)) throw new Refused(existsReason(st.kind));
        await dest.symlink(s.rel, s.target, st !== undefined);
        counts.restored++;
      }
      await dest.setMeta(s.rel, s.meta, 'symlink');
    } catch (e) {
      fail(s.rel, `not restored: ${e instanceof Refused ? e.message : errorMessage(e)}`);
    }
  }
  // Directories deepest first: their mtimes are final only after their contents.
  for (const d of dirs.reverse()) {
    await dest.setMeta(d.rel, d.meta, 'dir').catch((e: unknown) => fail(d.rel, `its mode or mtime could not be set: ${errorMessage(e)}`));
  }
  if (o.selection.length === 0 && root) await dest.setMeta(null, root, 'dir');
  o.selection.forEach((s, i) => {
    if (!selected[i]) fail(s, `not in target ${o.targetId}: no file or directory of this name in its tape file`);
  });
  return counts;
}

function existsReason(kind: string): string {
  return kind === 'dir'
    ? 'a directory is in the way in the destination'
    : `a different ${kind === 'symlink' ? 'symlink' : 'file'} of this name exists in the destination; not overwritten (use --overwrite to replace it)`;
}
