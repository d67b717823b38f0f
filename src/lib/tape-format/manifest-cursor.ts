/**
 * A manifest read alongside a stream in manifest order (the source of a write, the members of
 * a tape file): `take(key)` finds the entry of the name at hand, looking up to LOOKAHEAD
 * entries ahead, and reports the entries it passed as missing; `rest()` reports those never
 * taken. One entry at a time is read, so memory does not grow with the manifest. Hard link
 * roles follow manifest order: a group's first name leads, the others are links to it.
 */
import { pathKey, type ManifestEntry } from '../domain/manifest.ts';

/** How far ahead in the manifest a name is looked for before it counts as not there. */
export const LOOKAHEAD = 64;

export interface Leader {
  /** pathKey of the group's first name, and its path. */
  key: string;
  path: string;
  /** Set by the caller once the leader went by (written, or read on tape), with the source's inode. */
  done: boolean;
  inode?: string | undefined;
}

export class ManifestCursor {
  private readonly it: AsyncIterator<ManifestEntry> | Iterator<ManifestEntry>;
  private readonly ahead: { e: ManifestEntry; key: string }[] = [];
  private ended = false;
  /** linkGroup -> its leader. */
  readonly leaders = new Map<number, Leader>();

  constructor(
    entries: Iterable<ManifestEntry> | AsyncIterable<ManifestEntry>,
    private readonly onMissing: (e: ManifestEntry) => void,
  ) {
    this.it = Symbol.asyncIterator in entries ? entries[Symbol.asyncIterator]() : (entries as Iterable<ManifestEntry>)[Symbol.iterator]();
  }

  private async pull(): Promise<{ e: ManifestEntry; key: string } | undefined> {
    if (this.ended) return undefined;
    const r = await this.it.next();
    if (r.done) {
      this.ended = true;
      return undefined;
    }
    return { e: r.value, key: pathKey(r.value) };
  }

  /** The leader's key when `e` is a hard link to an earlier name of its group. */
  private role(e: ManifestEntry, key: string): string | undefined {
    if (e.type !== 'file' || e.linkGroup === undefined) return undefined;
    const l = this.leaders.get(e.linkGroup);
    if (l) return l.key;
    this.leaders.set(e.linkGroup, { key, path: e.path, done: false });
    return undefined;
  }

  private skip(x: { e: ManifestEntry; key: string }): void {
    this.role(x.e, x.key);
    this.onMissing(x.e);
  }

  /** The entry of `key` and, for a hard link, its leader's key; undefined when not within the look-ahead. */
  async take(key: string): Promise<{ e: ManifestEntry; leaderKey: string | undefined } | undefined> {
    const i = this.ahead.findIndex((x) => x.key === key);
    if (i >= 0) {
      for (const x of this.ahead.splice(0, i)) this.skip(x);
      const x = this.ahead.shift()!;
      return { e: x.e, leaderKey: this.role(x.e, x.key) };
    }
    while (this.ahead.length < LOOKAHEAD) {
      const x = await this.pull();
      if (!x) break;
      if (x.key === key) {
        for (const y of this.ahead.splice(0)) this.skip(y);
        return { e: x.e, leaderKey: this.role(x.e, x.key) };
      }
      this.ahead.push(x);
    }
    return undefined;
  }

  /** Reports every entry not taken. */
  async rest(): Promise<void> {
    for (const x of this.ahead.splice(0)) this.skip(x);
    for (let x = await this.pull(); x; x = await this.pull()) this.skip(x);
  }
}
