/**
 * The data host over SSH (issue 4): the agent scans and streams a target directory on a
 * remote host through one shared SSH connection (ssh2), running only standard tools there:
 * GNU find, xargs, sha256sum (coreutils) and GNU tar, under /bin/sh.
 *
 * Security:
 * - Key authentication only (no password, no agent, no keyboard-interactive).
 * - Host keys are pinned: the server's key must be in the configured OpenSSH known_hosts file
 *   for `host` (port 22) or `[host]:port` (plain or hashed `|1|salt|hash` entries). An unknown
 *   or changed key is refused with HostKeyError, never accepted silently.
 * - No file name ever appears in a command line. The only variable part of a command is the
 *   target path, single-quoted for the remote shell and passed as "$1" to a fixed /bin/sh
 *   script; names flow as NUL-terminated bytes (find -printf ... \0, sha256sum --zero, tar
 *   --null --verbatim-files-from on stdin). See docs/ssh.md.
 *
 * Failures: a dropped connection, a remote command that dies, exits non-zero or produces
 * truncated output makes the operation throw SourceUnavailableError (retryable); a partial
 * listing is never returned as a complete manifest. New operations reconnect with backoff.
 */
import { entriesOf, pathBytes, pathFields, pathKey, linkTargetFields, type ManifestEntry, type ManifestSource } from '../domain/manifest.ts';
import { ConfigError, errorMessage } from '../errors.ts';
import type { SourceEntry, SourceEntryFields } from '../tape-format/format.ts';
import { isUtf8 } from 'node:buffer';
import type { DataSource, ListOptions } from './data-source.ts';
import { relativeExcludes } from '../domain/nesting.ts';
import type { RestoreDestination } from '../restore/destination.ts';
import { SshDestination } from '../restore/ssh-destination.ts';
import { describeExit, firstLines, NulFields, type ExitInfo, type RemoteProcess } from './ssh/channel.ts';
import { SshConnection, type ChannelStats, type SshDataSourceOptions, type SshScanOptions } from './ssh/connection.ts';
import { RemoteCommandError } from './ssh/errors.ts';
import {
  excludePatterns,
  HASH_SCRIPT,
  LIST_DIRS_SCRIPT,
  LIST_SCRIPT,
  MAX_COMMAND_LENGTH,
  NAMES_SCRIPT,
  remoteCommand,
  STREAM_SCRIPT,
  STREAM_SCRIPT_DEREFERENCE,
} from './ssh/remote-scripts.ts';
import { pathFieldsLatin1, ScanOutputParser } from './ssh/scan-output.ts';
import { TAR_CHANGE_LINE, TarEvents } from './ssh/tar-events.ts';

export { HostKeyError, RemoteCommandError, SshAuthError } from './ssh/errors.ts';
export type { SshDataSourceOptions, SshScanOptions, ReconnectOptions, ChannelStats } from './ssh/connection.ts';

/** A target directory on a data host, read over SSH (docs/ssh.md). */
export class SshDataSource implements DataSource {
  readonly host: string;
  private readonly conn: SshConnection;

  constructor(opts: SshDataSourceOptions) {
    this.conn = new SshConnection(opts);
    this.host = this.conn.host;
  }

  /** Channel counters (open now, most open at once, total opened, connections made). */
  channelStats(): ChannelStats {
    return this.conn.channelStats();
  }

  private start(command: string, signal?: AbortSignal): Promise<RemoteProcess> {
    return this.conn.start(command, signal);
  }

  /** A restore to `dir` on this host: one tar stream per target into GNU tar there (lib/restore/ssh-destination.ts). */
  restoreDestination(dir: string): RestoreDestination {
    assertTargetPath(dir);
    return new SshDestination({ host: this.host, run: (command) => this.start(command), scan: (path, opts) => this.scan(path, opts) }, dir);
  }

  // --- scan ---------------------------------------------------------------------------------

  async *scan(path: string, opts: SshScanOptions = {}): AsyncIterable<ManifestEntry> {
    assertTargetPath(path);
    const { signal } = opts;
    const parser = new ScanOutputParser();
    const procs: RemoteProcess[] = [];
    const onAbort = () => {
      for (const p of procs) p.channel.close();
    };
    signal?.addEventListener('abort', onAbort, { once: true });
    type Ended = { x: ExitInfo; stderr: string };
    let cause: Ended | null = null; // the first command that failed for sure; the other is stopped
    // The nested targets left out, as find patterns after the path ("$2" ...).
    const prune = pruneArgs(this.host, path, opts.excludes);
    /** Runs one of the two commands to the end; resolves with its exit status and stderr. */
    const run = async (script: string, push: (b: Buffer) => void, fatal: (x: ExitInfo) => boolean): Promise<Ended> => {
      const proc = await this.start(remoteCommand(script, path, ...prune), signal);
      procs.push(proc);
      if (signal?.aborted || cause) proc.channel.close();
      for (;;) {
        const b = await proc.stdout.read();
        if (b === null) break;
        push(b);
      }
      const ended = { x: await proc.exit, stderr: proc.stderr() };
      if (!cause && (ended.x.lost || ended.x.signal !== undefined || fatal(ended.x))) {
        cause = ended;
        for (const p of procs) p.channel.close();
      }
      return ended;
    };
    let entries: ManifestEntry[];
    try {
      // Listing and hashing run at once on two channels (one after the other when the
      // channel limit is 1). If one fails the other is stopped.
      const list = run(
        LIST_SCRIPT,
        (b) => parser.pushListing(b),
        (x) => x.code !== 0,
      );
      const hash = run(
        HASH_SCRIPT,
        (b) => parser.pushHashes(b),
        (x) => x.code === 90 || x.code === 126 || x.code === 127,
      );
      const settled = await Promise.allSettled([list, hash]);
      signal?.throwIfAborted();
      for (const r of settled) if (r.status === 'rejected') throw r.reason;
      const [l, h] = settled.map((r) => (r as PromiseFulfilledResult<Ended>).value) as [Ended, Ended];
      const first = cause as Ended | null;
      // When one command failed for sure, the other was stopped by us: judge by the first only.
      for (const { x, stderr } of first ? [first] : [l, h]) {
        if (x.lost || x.signal) {
          throw new RemoteCommandError(
            `scan of ${this.host}:${path} failed, retryable: ${describeExit(x)} before the listing was complete` + (stderr ? ` (${firstLines(stderr)})` : ''),
            x.code,
            stderr,
          );
        }
        if (x.code === 90) {
          throw new RemoteCommandError(`cannot scan ${this.host}:${path}: ${firstLines(stderr) || 'the target cannot be entered'}`, x.code, stderr);
        }
        if (x.code === 126 || x.code === 127) {
          throw new RemoteCommandError(
            `scan of ${this.host}:${path} failed (${describeExit(x)}): ${firstLines(stderr) || '(no message)'}. ` +
              'The data host needs /bin/sh, GNU find, xargs and GNU coreutils (sha256sum --zero).',
            x.code,
            stderr,
          );
        }
      }
      try {
        entries = parser.finish({ listStatus: l.x.code ?? -1, listStderr: l.stderr, hashStatus: h.x.code ?? -1, hashStderr: h.stderr }, opts.onSkipped);
      } catch (e) {
        throw new RemoteCommandError(`scan of ${this.host}:${path} failed: ${errorMessage(e)}`, l.x.code || h.x.code, l.stderr + h.stderr);
      }
    } finally {
      signal?.removeEventListener('abort', onAbort);
      for (const p of procs) p.channel.close();
    }
    yield* entries;
  }

  // --- directories (scheduled import) -------------------------------------------------------

  /**
   * Directories exactly `depth` levels below `root` (not following symlinks), as paths
   * relative to it, in the local source's order. Names that are not valid UTF-8 are left out:
   * a target path is a string and could not name them exactly.
   */
  async *listDirectories(root: string, depth: number, opts: { signal?: AbortSignal } = {}): AsyncIterable<string> {
    assertTargetPath(root);
    if (!Number.isInteger(depth) || depth < 1) return;
    const names: string[] = [];
    await this.runFieldScript(LIST_DIRS_SCRIPT, root, [String(depth)], 'listing directories of', opts.signal, (f) => {
      const b = Buffer.from(f, 'latin1');
      if (isUtf8(b)) names.push(b.toString('utf8'));
    });
    const key = (n: string) => n.replaceAll('/', '\0');
    names.sort((a, b) => (key(a) < key(b) ? -1 : key(a) > key(b) ? 1 : 0));
    yield* names;
  }

  // --- listing (nothing added since the scan) -------------------------------------------------

  /** Every directory, file and symlink under `path` now (names and types; not special files, nor under `opts.excludes`). */
  async *list(path: string, opts: ListOptions = {}): AsyncIterable<Pick<SourceEntryFields, 'path' | 'rawPath' | 'type'>> {
    assertTargetPath(path);
    const out: Pick<SourceEntryFields, 'path' | 'rawPath' | 'type'>[] = [];
    let type: string | null = null; // records are pairs: type, name
    await this.runFieldScript(NAMES_SCRIPT, path, pruneArgs(this.host, path, opts.excludes), 'listing', opts.signal, (f) => {
      if (type === null) {
        type = f;
        return;
      }
      if (type === 'f' || type === 'd' || type === 'l') out.push({ ...pathFieldsLatin1(f), type: type === 'f' ? 'file' : type === 'd' ? 'dir' : 'symlink' });
      type = null;
    });
    if (type !== null) throw new RemoteCommandError(`the listing of ${this.host}:${path} is truncated`, 0, '');
    yield* out;
  }

  /**
   * Runs a script that writes NUL-terminated fields ending with the field "=" and hands each
   * field to `onField`. A lost connection, an exit status other than 0 or output without its
   * end marker is a RemoteCommandError (retryable), never a short answer.
   */
  private async runFieldScript(
    script: string,
    path: string,
    args: string[],
    what: string,
    signal: AbortSignal | undefined,
    onField: (f: string) => void,
  ): Promise<void> {
    const proc = await this.start(remoteCommand(script, path, ...args), signal);
    const onAbort = () => proc.channel.close();
    signal?.addEventListener('abort', onAbort, { once: true });
    let ended = false;
    let junk = false;
    const fields = new NulFields((f) => {
      if (ended) junk = true;
      else if (f === '=') ended = true;
      else onField(f);
    });
    try {
      for (;;) {
        const b = await proc.stdout.read();
        if (b === null) break;
        fields.push(b);
      }
      const x = await proc.exit;
      signal?.throwIfAborted();
      const stderr = proc.stderr();
      if (x.lost || x.signal) throw new RemoteCommandError(`${what} ${this.host}:${path} failed, retryable: ${describeExit(x)}`, x.code, stderr);
      if (x.code === 90) throw new RemoteCommandError(`cannot list ${this.host}:${path}: ${firstLines(stderr)}`, x.code, stderr);
      if (x.code !== 0) {
        throw new RemoteCommandError(`${what} ${this.host}:${path} failed (find ${describeExit(x)}): ${firstLines(stderr) || '(no message)'}`, x.code, stderr);
      }
      if (!ended || junk || fields.pending) throw new RemoteCommandError(`the output of ${what} ${this.host}:${path} is truncated`, x.code, stderr);
    } finally {
      signal?.removeEventListener('abort', onAbort);
      proc.channel.close();
    }
  }

  // --- stream -------------------------------------------------------------------------------

  async *stream(path: string, manifest: ManifestSource, opts: { signal?: AbortSignal } = {}): AsyncIterable<SourceEntry> {
    assertTargetPath(path);
    const { signal } = opts;
    // A manifest without link groups (scanned by release 0.1, or with no hard links at scan
    // time) stores every name as a file with its content, as that manifest describes it.
    let dereference = true;
    for await (const e of entriesOf(manifest)) {
      if (e.linkGroup === undefined) continue;
      dereference = false;
      break;
    }
    const proc = await this.start(remoteCommand(dereference ? STREAM_SCRIPT_DEREFERENCE : STREAM_SCRIPT, path), signal);
    const ch = proc.channel;
    const onAbort = () => ch.close();
    signal?.addEventListener('abort', onAbort, { once: true });

    // Feed the names (NUL-terminated bytes) to tar's stdin, with back-pressure.
    let feeding = true;
    let fed = 0; // manifest names given to tar
    const feeder = (async () => {
      let batch: Buffer[] = [];
      let bytes = 0;
      const flush = async () => {
        if (!batch.length) return;
        const ok = ch.write(Buffer.concat(batch));
        batch = [];
        bytes = 0;
        if (!ok) await new Promise<void>((r) => ch.once('drain', r).once('close', r));
      };
      const NUL = Buffer.alloc(1);
      batch.push(Buffer.from('.'), NUL); // the root directory first
      for await (const e of entriesOf(manifest)) {
        if (!feeding) return;
        batch.push(pathBytes(e), NUL);
        fed++;
        bytes += batch[batch.length - 2]!.length + 1;
        if (bytes >= 256 * 1024) await flush();
      }
      await flush();
      ch.end();
    })().catch(() => undefined); // a closed channel shows up on the reading side

    const events = new TarEvents(() => proc.stdout.read());
    const lost = async (what: string): Promise<never> => {
      const x = await proc.exit;
      signal?.throwIfAborted();
      const stderr = proc.stderr();
      throw new RemoteCommandError(
        `streaming ${this.host}:${path} failed, retryable: ${what}; ${describeExit(x)}` + (stderr ? ` (${firstLines(stderr)})` : ''),
        x.code,
        stderr,
      );
    };
    let current = 0; // generation of the member whose content is being read
    let yielded = 0;
    let sawEnd = false;
    let sawRoot = false;
    try {
      for (;;) {
        const ev = await events.next();
        if (ev === null) break;
        if (ev.k === 'problem') await lost(`damaged tar stream at offset ${ev.offset}: ${ev.reason}`);
        if (ev.k === 'eoa') {
          sawEnd = true;
          continue;
        }
        if (ev.k !== 'member') continue; // data of a member the consumer did not read
        const m = ev.m;
        let nameBytes = m.name;
        if (m.typeflag === '5' && nameBytes.length > 1 && nameBytes[nameBytes.length - 1] === 0x2f) nameBytes = nameBytes.subarray(0, -1);
        const isRoot: boolean = !sawRoot && nameBytes.length === 1 && nameBytes[0] === 0x2e; // "./", the first member
        sawRoot ||= isRoot;
        const who = isRoot ? { path: '' } : pathFields(Buffer.from(nameBytes));
        const base = { ...who, mode: m.mode & 0o7777, mtimeMs: m.mtime * 1000 };
        let entry: SourceEntryFields;
        if (isRoot) {
          yield { entry: { ...base, type: m.typeflag === '5' ? 'dir' : 'file', size: 0, root: true } };
          continue;
        }
        if (m.typeflag === '5') entry = { ...base, type: 'dir', size: 0 };
        else if (m.typeflag === '2') entry = { ...base, type: 'symlink', size: 0, ...linkTargetFields(m.linkname) };
        else if (m.typeflag === '0' || m.typeflag === '7') entry = { ...base, type: 'file', size: m.size };
        else if (m.typeflag === '1') entry = { ...base, type: 'file', size: 0, hardLinkOf: pathKey(pathFields(m.linkname)) };
        else continue; // fifo, device...: not yielded, the writer reports it missing
        yielded++;
        if (entry.type !== 'file' || m.size === 0) {
          yield { entry, content: [] };
          continue;
        }
        const gen = ++current;
        const label = JSON.stringify(who.path);
        const content = async function* (): AsyncGenerator<Buffer> {
          for (;;) {
            if (gen !== current) throw new Error(`content of ${label} read after the source moved on`);
            const e = await events.next();
            if (e === null) await lost(`the tar stream ended inside ${label}`);
            else if (e.k === 'data') yield e.b;
            else if (e.k === 'end') return;
            else if (e.k === 'problem') await lost(`damaged tar stream at offset ${e.offset}: ${e.reason}`);
          }
        };
        yield { entry, content: content() };
        current++; // the consumer moved on; unread data of this member is skipped above
      }
      if (!sawEnd) await lost('the tar stream ended before its end-of-archive marker');
      const x = await proc.exit;
      signal?.throwIfAborted();
      const stderr = proc.stderr();
      if (x.lost || x.signal) await lost('the connection closed after the archive');
      if (x.code === 90) {
        throw new RemoteCommandError(`cannot read ${this.host}:${path}: ${firstLines(stderr) || 'the target cannot be entered'}`, x.code, stderr);
      }
      if (x.code === 0 || x.code === 1) return; // 1: "some files differ": the writer's checksums decide
      // 2: tar could not archive some names. Vanished or replaced entries are not yielded and
      // the writer reports them missing (SourceChangedError); anything else is a failure.
      const lines = stderr.split('\n').filter(Boolean);
      const onlyChanges = lines.length > 0 && lines.every((l) => TAR_CHANGE_LINE.test(l));
      if (onlyChanges && yielded < fed) return;
      throw new RemoteCommandError(`remote tar failed on ${this.host}:${path} (${describeExit(x)}): ${firstLines(stderr) || '(no message)'}`, x.code, stderr);
    } finally {
      feeding = false;
      signal?.removeEventListener('abort', onAbort);
      ch.close();
      await feeder;
    }
  }

  close(): Promise<void> {
    return this.conn.close();
  }
}

function assertTargetPath(path: string): void {
  if (typeof path !== 'string' || !path.startsWith('/')) {
    throw new ConfigError(`an SSH target path must be absolute on the data host, got ${JSON.stringify(path)}`);
  }
  if (path.includes('\0')) throw new ConfigError('an SSH target path cannot contain a NUL byte');
}

/**
 * The find patterns of the nested targets a scan or listing of `path` leaves out (passed as
 * "$2" ...: remote-scripts.ts). Refused when the command would be longer than a login shell
 * takes (ConfigError: no retry helps; fewer nested targets under one target do).
 */
function pruneArgs(host: string, path: string, excludes: readonly string[] | undefined): string[] {
  const patterns = excludePatterns(relativeExcludes(path, excludes));
  if (patterns.some((p) => p.includes('\0'))) throw new ConfigError('a nested target path cannot contain a NUL byte');
  const length = Buffer.byteLength(remoteCommand(LIST_SCRIPT, path, ...patterns));
  if (length > MAX_COMMAND_LENGTH) {
    throw new ConfigError(
      `cannot scan ${host}:${path} over SSH leaving out its ${patterns.length} nested targets: the command would be ${length} bytes, over the ${MAX_COMMAND_LENGTH} a login shell takes. Import fewer targets directly inside ${path} (e.g. a target between them), or scan it with the agent on the data host.`,
    );
  }
  return patterns;
}
